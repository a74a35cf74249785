"""Run profiles workers as real processes against a real broker, feed them, read what they publish.

Why subprocesses: ``kill -9`` must kill a worker for real (no atexit, no flush), and two
workers must be two consumer-group members with their own stores and HTTP ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, Producer

from shoppulse.consumers.settings import Settings
from shoppulse.devkit.broker import free_port
from tests.integration.enrich_harness import assign_from_start, http_json

REPO = Path(__file__).resolve().parents[2]


def profile_settings(settings: Settings, **profiles: Any) -> Settings:
    """A unique app id (so a unique changelog topic and group) plus the given profile knobs."""
    updates = {"app_id": f"profiles-{uuid.uuid4().hex[:8]}", "publish_interval_s": 0.2, **profiles}
    settings.profiles = settings.profiles.model_validate(settings.profiles.model_dump() | updates)
    return settings


def produce_signals(settings: Settings, signals: list[dict[str, Any]], transaction_size: int = 0) -> None:
    """Keyed by user_id with the murmur2 partitioner (what faust's router assumes), in the given order.

    Idempotent, like enrich's producer: the exact deduplication relies on each input partition's
    signals arriving in order (docs/events.md), which a plain producer breaks when it retries.
    ``transaction_size`` > 0 writes them in transactions of that many, as an exactly-once
    upstream does (each commit leaves a marker offset in every partition it wrote to).
    """
    options: dict[str, Any] = {"partitioner": "murmur2_random", "linger.ms": 5, "enable.idempotence": True}
    if transaction_size:
        options["transactional.id"] = f"signals-{uuid.uuid4().hex[:8]}"
    producer = Producer(settings.librdkafka(**options))
    if transaction_size:
        producer.init_transactions(30)
    size = transaction_size or max(len(signals), 1)
    for start in range(0, len(signals), size):
        if transaction_size:
            producer.begin_transaction()
        for s in signals[start : start + size]:
            producer.produce(
                settings.topics.user_signals,
                key=s["user_id"].encode("utf-8"),
                value=json.dumps(s, ensure_ascii=False).encode("utf-8"),
            )
        if transaction_size:
            producer.commit_transaction(30)
    assert producer.flush(30) == 0, "signals not delivered"


class Worker:
    """One ``python -m shoppulse.consumers.profiles.cli`` process with its own store and HTTP port."""

    def __init__(
        self,
        settings: Settings,
        tmp: Path,
        name: str,
        store: str = "memory",
        module: str = "shoppulse.consumers.profiles.cli",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stage: str = "profiles",
    ) -> None:
        """``cwd``: run there with the default ``data_dir`` (a new user's empty directory), not a temp store."""
        self.settings = settings
        self.stage = stage  # "profiles" or "insights": which settings group and HTTP port it uses
        self.cwd = cwd
        self.name = name
        self.store = store
        self.module = module  # tests.integration.faust_drop injects faust's record skip
        self.extra_env = env or {}
        self.port = free_port()
        self.data_dir = tmp / f"store-{name}"
        self.log_path = tmp / f"worker-{name}.log"
        self.config = tmp / f"settings-{name}.yaml"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        data = self.settings.model_dump(mode="json")
        data[self.stage].update(store=self.store, data_dir=str(self.data_dir))
        if self.cwd is not None:
            del data[self.stage]["data_dir"]
        data["http"].update({"host": "127.0.0.1", f"{self.stage}_port": self.port})
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        env = {**os.environ, "SHOPPULSE_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not (k.startswith("SHOPPULSE_") and k != "SHOPPULSE_CONFIG")}
        env["SHOPPULSE_CONFIG"] = str(self.config)
        env.update(self.extra_env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--log-level", "INFO"],
            cwd=self.cwd or REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def get(self, path: str) -> tuple[int, Any]:
        return http_json(self.url + path)

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return resp.read().decode("utf-8")

    def ready(self) -> bool:
        with contextlib.suppress(OSError, ValueError):
            return self.get("/readyz")[0] == 200
        return False

    def diagnosis(self) -> str:
        """Readiness and the stage's own metrics, for a failure message."""
        if not self.alive():
            return f"(not running, exit {self.proc.returncode if self.proc else None})"
        try:
            ready = self.get("/readyz")
            with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
                lines = [
                    line
                    for line in resp.read().decode().splitlines()
                    if line.startswith("shoppulse_") and "_created" not in line
                ]
            return f"readyz {ready}\n" + "\n".join(lines)
        except OSError as exc:
            return f"(no answer: {exc})"

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    workers: list[Worker],
    details: Callable[[], object] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None and w.proc.returncode not in (-9,):
                raise AssertionError(f"worker {w.name} exited {w.proc.returncode}:\n{w.log_tail()}")
        time.sleep(0.2)
    tails = "\n".join(f"--- {w.name}\n{w.diagnosis()}\n{w.log_tail()}" for w in workers)
    extra = f"\n{details()}" if details is not None else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}{extra}\n{tails}")


class ProfileReader:
    """Reads ``user-profiles`` from the start; keeps the latest record per user and counts them."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = Consumer(
            settings.librdkafka(
                **{
                    "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                }
            )
        )
        assign_from_start(self.consumer, [settings.topics.user_profiles])
        self.latest: dict[str, dict[str, Any]] = {}
        self.records = 0
        self.partitions_by_user: dict[str, set[int]] = {}
        self.behind: dict[str, tuple[Any, Any]] = {}  # user -> (published version, expected)

    def poll(self, seconds: float = 0.5) -> None:
        for msg in self.consumer.consume(1000, seconds):
            if msg.error() is not None:
                continue
            profile = json.loads(msg.value())
            user = msg.key().decode("utf-8")
            assert profile["user_id"] == user
            self.records += 1
            self.partitions_by_user.setdefault(user, set()).add(msg.partition())
            self.latest[user] = profile

    def close(self) -> None:
        self.consumer.close()
