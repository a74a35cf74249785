"""The small interface both embedded brokers implement, and the process plumbing they share."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be prepared or started; the message says what to do."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll until something accepts TCP on host:port; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerError(f"broker process exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise BrokerError(f"nothing listened on {host}:{port} within {timeout_s:.0f}s")


class EmbeddedBroker(ABC):
    """A single-node broker on 127.0.0.1 owned by this process."""

    name: str = "broker"

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @abstractmethod
    def start(self, timeout_s: float = 90.0) -> str:
        """Start and wait until the broker serves metadata; return the bootstrap address."""

    def running(self) -> bool:
        """The broker process is up."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, wait, then SIGKILL: never leave a broker behind."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def wait_ready(self, timeout_s: float) -> None:
        """TCP first, then a real metadata round-trip through librdkafka."""
        wait_for_port("127.0.0.1", self.port, timeout_s, self.proc)
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(f"{self.name} exited with code {self.proc.returncode}; log: {self.log_path}")
            try:
                meta = admin.list_topics(timeout=2)
                if meta.brokers:
                    return
            except Exception as exc:  # librdkafka raises KafkaException while the broker boots
                last = exc
            time.sleep(0.3)
        raise BrokerError(f"{self.name} at {self.bootstrap} never answered metadata: {last}; log: {self.log_path}")

    def _spawn_and_wait(self, argv: list[str], log_path: Path, timeout_s: float) -> str:
        """Start the broker process and wait until it serves metadata; never leave a half-started one."""
        self._spawn(argv, log_path)
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def _spawn(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        with open(log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: stop() kills the JVM and its children
                env={**os.environ, **(env or {})},
            )
        log.info("started %s (pid %s), log %s", self.name, self.proc.pid, log_path)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
