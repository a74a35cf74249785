"""Run the enrich stage as a real subprocess and read what it wrote, for the integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from shoppulse.consumers.settings import Settings, to_env
from shoppulse.devkit.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


def assign_from_start(consumer: Consumer, topics: list[str], timeout_s: float = 30) -> None:
    """Read every partition of ``topics`` from offset 0 without joining a group.

    Why not ``subscribe``: a test's reader must not depend on a group coordinator. The failover tests
    kill and freeze brokers, the coordinator moves, and librdkafka can then leave a member's
    partitions unstarted for good (confluentinc/librdkafka#5586): the reader would miss records the
    stages did write, and the test would blame them.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = consumer.list_topics(timeout=10)
        known = {t: metadata.topics.get(t) for t in topics}
        if all(m is not None and m.error is None and m.partitions for m in known.values()):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"no partitions listed for {sorted(t for t, m in known.items() if not m)}")
        time.sleep(0.5)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, m in known.items() for p in m.partitions])


def http_json(url: str, timeout: float = 10) -> tuple[int, Any]:
    """Status and JSON body of a GET, error statuses included (/readyz answers 503 with details)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def start_enrich(
    settings: Settings,
    bundle: Path,
    exactly_once: bool = False,
    log_path: Path | None = None,
    http_port: int | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    """``shoppulse run enrich`` in a child process configured only through env vars."""
    child_env = {**os.environ, **to_env(settings), **env}
    child_env["SHOPPULSE_ENRICH__BUNDLE_DIR"] = str(bundle)
    child_env["SHOPPULSE_HTTP__ENRICH_PORT"] = str(http_port or free_port())
    child_env["SHOPPULSE_ENRICH__EXACTLY_ONCE"] = str(exactly_once)
    child_env.setdefault("SHOPPULSE_ENRICH__INTRA_OP_THREADS", "1")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "shoppulse.consumers.cli", "run", "enrich"],
        cwd=ROOT,
        env=child_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def start_profiles(settings: Settings, log_path: Path, http_port: int) -> subprocess.Popen[bytes]:
    """``shoppulse run profiles`` (memory store) in a child process configured through env vars."""
    child_env = {**os.environ, **to_env(settings)}
    child_env["SHOPPULSE_HTTP__PROFILES_PORT"] = str(http_port)
    return subprocess.Popen(
        [sys.executable, "-m", "shoppulse.consumers.cli", "run", "profiles"],
        cwd=ROOT,
        env=child_env,
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


@dataclass
class Outputs:
    by_topic: dict[str, list[dict]] = field(default_factory=dict)

    def event_ids(self, topic: str) -> Counter[str]:
        return Counter(r["event_id"] for r in self.by_topic.get(topic, []))


def read_all(
    settings: Settings,
    topics: list[str],
    expect: dict[str, int],
    timeout_s: float = 120,
    read_committed: bool = False,
) -> Outputs:
    """Read ``topics`` from the start until each holds at least ``expect[topic]`` distinct records
    (by event_id, or by count for dead-letter), then a little more to catch duplicates."""
    consumer = Consumer(
        settings.librdkafka(
            **{
                "group.id": f"reader-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            }
        )
    )
    assign_from_start(consumer, topics)
    out = Outputs({t: [] for t in topics})
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    out.by_topic[msg.topic()].append(json.loads(msg.value()))
            done = all(
                len({r.get("event_id") or i for i, r in enumerate(out.by_topic[t])}) >= n for t, n in expect.items()
            )
            if done and settle_until is None:
                settle_until = time.monotonic() + 2.0
            if settle_until is not None and time.monotonic() > settle_until:
                break
    finally:
        consumer.close()
    return out


def committed_total(settings: Settings, group: str) -> int:
    """Sum of the group's committed offsets over the input topics; -1 while the broker cannot say
    (a coordinator moving after a broker restart is not a test failure)."""
    consumer = Consumer(settings.librdkafka(**{"group.id": group}))
    parts = [TopicPartition(t, p) for t in settings.topics.inputs() for p in range(settings.kafka.partitions)]
    try:
        committed = consumer.committed(parts, timeout=10)
    except KafkaException:
        return -1
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in committed)


def wait_for(predicate, timeout_s: float, what: str, interval: float = 0.3, procs=(), details=None):
    """Poll ``predicate``; fail at once if one of ``procs`` (the stages under test) died. On a timeout,
    ``details()`` (when given) is added to the message: what was still missing, and where to look."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"the stage exited with {proc.returncode} while waiting for {what}")
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    extra = f"\n{details()}" if details is not None else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}{extra}")


def read_signals(
    settings: Settings, expected: int, timeout_s: float = 120, isolation: str = "read_committed"
) -> list[dict]:
    """Every user-signals record a read_committed reader sees, once enough distinct sources arrived."""
    consumer = Consumer(
        settings.librdkafka(
            **{
                "group.id": f"check-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
                "isolation.level": isolation,
            }
        )
    )
    assign_from_start(consumer, [settings.topics.user_signals])
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            batch = [json.loads(m.value()) for m in consumer.consume(500, 0.5) if m.error() is None]
            out += batch
            if len({s["event_id"] for s in out}) >= expected:
                quiet_until = quiet_until or time.monotonic() + 3.0
                if time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return out


def input_progress(settings: Settings, group: str, event_ids: set[str], timeout_s: float = 30) -> str:
    """Where ``event_ids`` sit in the input topics, and the group's committed and end offsets per
    input partition: tells "enrich had not got there yet" (committed below them) from "enrich
    passed them and nothing came out" (committed past them), when signals are missing."""
    consumer = Consumer(
        settings.librdkafka(**{"group.id": f"locate-{time.monotonic_ns()}", "auto.offset.reset": "earliest"})
    )
    found: dict[str, tuple[str, int, int]] = {}
    assign_from_start(consumer, settings.topics.inputs())
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(found) < len(event_ids):
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    continue
                try:
                    event_id = json.loads(msg.value()).get("event_id")
                except (ValueError, AttributeError):
                    continue
                if event_id in event_ids:
                    found[event_id] = (msg.topic(), msg.partition(), msg.offset())
    finally:
        consumer.close()
    parts = Counter((t, p) for t, p, _ in found.values())
    lowest = {tp: min(o for t, p, o in found.values() if (t, p) == tp) for tp in parts}
    group_consumer = Consumer(settings.librdkafka(**{"group.id": group}))
    try:
        tps = [TopicPartition(t, p) for t in settings.topics.inputs() for p in range(settings.kafka.partitions)]
        committed = {(tp.topic, tp.partition): tp.offset for tp in group_consumer.committed(tps, timeout=10)}
        ends = {(tp.topic, tp.partition): group_consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    except KafkaException as exc:
        return f"located {len(found)}/{len(event_ids)}: {dict(parts)}; offsets unavailable: {exc}"
    finally:
        group_consumer.close()
    lines = [f"located {len(found)}/{len(event_ids)} missing events in the inputs"]
    for tp in sorted(committed):
        note = f", {parts[tp]} missing from offset {lowest[tp]}" if tp in parts else ""
        lines.append(f"  {tp[0]}[{tp[1]}]: committed {committed[tp]}, end {ends.get(tp)}{note}")
    return "\n".join(lines)
