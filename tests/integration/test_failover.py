"""A three-node Kafka cluster loses the leader of a busy partition mid-stream and gets it back.

Enrich (both delivery modes) and profiles run against it the whole time: nothing may be lost,
nothing applied twice, and the published profiles must equal a reference folded straight from
what is in ``user-signals`` (read_committed, one signal per input record).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from shoppulse.devkit.broker.kafka import KafkaCluster
from shoppulse.devkit.simulator import Simulator
from shoppulse.devkit.simulator.produce import produce_stream
from tests.conftest import isolated_settings
from tests.integration.enrich_harness import input_progress, read_signals, start_enrich, stop, wait_for
from tests.integration.profiles_harness import ProfileReader, Worker, profile_settings
from tests.unit.consumers.profiles.streams import profile_mismatches, reference_profiles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = 1_790_000_000_000
HALF_LIFE, TOP_K, RECENT = 7.0, 3, 5


class Restarting:
    """Enrich, restarted when it exits 1, as Kubernetes restarts the pod: an exactly-once enrich whose
    librdkafka call stalls exits on purpose (docs/reliability.md, "Broker failover"), and the
    restart goes on from the last committed transaction. Each run logs to its own file."""

    def __init__(self, start: Callable[[Path], subprocess.Popen[bytes]], logs: Path) -> None:
        self.start, self.logs, self.restarts = start, logs, 0
        self.proc = start(self.log(0))
        self._done = threading.Event()
        self._watch = threading.Thread(target=self._restart_on_exit, daemon=True)
        self._watch.start()

    def log(self, run: int) -> Path:
        return self.logs / f"enrich-{run}.log"

    def _restart_on_exit(self) -> None:
        while not self._done.wait(0.5):
            if self.proc.poll() == 1:
                self.restarts += 1
                self.proc = self.start(self.log(self.restarts))

    def log_tails(self) -> str:
        return "\n".join(self.log(run).read_text(errors="replace")[-3000:] for run in range(self.restarts + 1))

    def stop(self) -> int:
        self._done.set()
        self._watch.join()
        return stop(self.proc)


def _leader_of(bootstrap: str, topic: str, partition: int) -> int:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic=topic, timeout=10)
    return metadata.topics[topic].partitions[partition].leader


@pytest.mark.parametrize(
    "exactly_once",
    [False, True],
    ids=["at-least-once", "exactly-once"],
)
def test_leader_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    kafka_cluster: KafkaCluster, tiny_bundle: Path, tmp_path: Path, exactly_once: bool
) -> None:
    settings = isolated_settings(
        kafka_cluster.bootstrap,
        kafka={"replication_factor": 3},
        enrich={"group_id": f"g-{uuid.uuid4().hex[:6]}", "transactional_id": f"t-{uuid.uuid4().hex[:6]}"},
    )
    settings = profile_settings(settings, half_life_days=HALF_LIFE, top_k=TOP_K, recent_products=RECENT)
    sim = Simulator(seed=31, users=40, start_ms=START)
    events = 2400
    enrich = Restarting(
        lambda log: start_enrich(settings, tiny_bundle, exactly_once=exactly_once, log_path=log), tmp_path
    )
    worker = Worker(settings, tmp_path, "p").start()
    reader = ProfileReader(settings)
    producer = threading.Thread(target=produce_stream, args=(settings, sim, events, 150.0), daemon=True)
    killed_at = back_at = 0.0
    try:
        wait_for(worker.ready, 90, "profiles worker ready")
        producer.start()
        time.sleep(5)  # a third of the stream is in: the partition is busy
        victim = _leader_of(kafka_cluster.bootstrap, settings.topics.user_signals, 0)
        kafka_cluster.kill(victim - 1)
        killed_at = time.monotonic()
        time.sleep(8)
        assert enrich.restarts == 0 and enrich.proc.poll() is None, "enrich died with the leader"
        kafka_cluster.restart(victim - 1)
        back_at = time.monotonic()
        producer.join(120)
        assert not producer.is_alive(), "the producer did not finish"
        valid = Counter(sim.truth.valid_event_ids)
        signals = read_signals(settings, len(valid))
        # A replayed input gives a second signal for the same source; the first is the one stage 2 applies
        # (a copy may differ in the last digits: INT8 scales are per batch).
        by_source: dict[tuple[str, int, int], dict] = {}
        for s in signals:
            by_source.setdefault((s["source"]["topic"], s["source"]["partition"], s["source"]["offset"]), s)
        found = Counter(s["event_id"] for s in by_source.values())
        missing = sorted(set(valid) - set(found))
        where = ""
        if missing:  # say where they went: written but not committed (aborted or hanging), or never written
            uncommitted = read_signals(settings, len(valid), timeout_s=20, isolation="read_uncommitted")
            sources = {s["event_id"]: s["source"] for s in uncommitted}
            read_back = [sources.get(m) for m in missing[:20]]
            where = f"{len(missing)} missing; their sources read uncommitted: {read_back}\n"
            where += input_progress(settings, settings.enrich.group_id, set(missing))
            where += f"\nenrich restarts: {enrich.restarts}\n" + enrich.log_tails()
        assert found == valid, where  # nothing lost, one per input record
        if exactly_once:
            assert len(signals) == len(by_source), "a read_committed reader saw a signal twice"
        expected = reference_profiles(list(by_source.values()), HALF_LIFE, TOP_K, RECENT)

        def all_published() -> bool:
            reader.poll(0.5)
            return all(reader.latest.get(u, {}).get("version") == e["version"] for u, e in expected.items())

        def behind() -> str:
            lagging = {
                u: (reader.latest.get(u, {}).get("version"), e["version"])
                for u, e in expected.items()
                if reader.latest.get(u, {}).get("version") != e["version"]
            }
            return f"behind (published, expected): {dict(list(lagging.items())[:10])}\n{worker.log_tail()}"

        wait_for(all_published, 120, "every profile at its reference version", procs=[enrich.proc], details=behind)
        problems = {u: profile_mismatches(reader.latest[u], e) for u, e in expected.items()}
        assert {u: p for u, p in problems.items() if p} == {}
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()
        print(f"enrich restarts: {enrich.restarts}")
        assert enrich.stop() == 0, enrich.log_tails()
        if not all(kafka_cluster.nodes[i].running() for i in range(3)):
            for i, node in enumerate(kafka_cluster.nodes):
                if not node.running():
                    kafka_cluster.restart(i)
    print(f"leader {victim} down for {back_at - killed_at:.1f}s; {len(signals)} signals read")


def _group_coordinator(bootstrap: str, group: str, offsets_partitions: int = 10) -> int:
    """The node that coordinates ``group``: the leader of its ``__consumer_offsets`` partition, which
    Kafka picks as ``abs(group.hashCode()) % offsets.topic.num.partitions`` (10 on the dev kit's
    brokers). The admin API's ConsumerGroupDescribe answers NOT_COORDINATOR for a classic group."""
    java_hash = 0
    for unit in group.encode("utf-16-be").hex(" ", 2).split():  # String.hashCode over UTF-16 units
        java_hash = (31 * java_hash + int(unit, 16)) & 0xFFFFFFFF
    partition = (java_hash & 0x7FFFFFFF) % offsets_partitions
    return _leader_of(bootstrap, "__consumer_offsets", partition)


def test_a_frozen_group_coordinator_loses_nothing_and_writes_nothing_twice(
    kafka_cluster: KafkaCluster, tiny_bundle: Path, tmp_path: Path
) -> None:
    """Exactly-once enrich while the broker coordinating its group hangs for 50 s with its connections
    open (SIGSTOP, as in a long GC pause): a killed broker closes its sockets, a frozen one answers
    nothing until the clients' own timeouts. The stage may stall in ``send_offsets_to_transaction``
    (librdkafka #5456, #5511); its watchdog then exits 1 and the restart goes on from the last
    committed transaction. Either way every valid input comes out once for a read_committed reader."""
    settings = isolated_settings(
        kafka_cluster.bootstrap,
        kafka={"replication_factor": 3},
        enrich={"group_id": f"g-{uuid.uuid4().hex[:6]}", "transactional_id": f"t-{uuid.uuid4().hex[:6]}"},
    )
    sim = Simulator(seed=37, users=40, start_ms=START)
    events = 2400
    enrich = Restarting(lambda log: start_enrich(settings, tiny_bundle, exactly_once=True, log_path=log), tmp_path)
    producer = threading.Thread(target=produce_stream, args=(settings, sim, events, 150.0), daemon=True)
    frozen: int | None = None
    try:
        producer.start()
        wait_for(lambda: "assigned ['" in enrich.log(0).read_text(), 90, "enrich assigned", procs=[enrich.proc])
        time.sleep(3)  # transactions are committing
        frozen = _group_coordinator(kafka_cluster.bootstrap, settings.enrich.group_id) - 1
        kafka_cluster.freeze(frozen)
        time.sleep(50)  # past the stage's 30 s call timeout and its watchdog's 15 s grace
        kafka_cluster.freeze(frozen, False)
        frozen = None
        producer.join(120)
        assert not producer.is_alive(), "the producer did not finish"
        valid = Counter(sim.truth.valid_event_ids)
        signals = read_signals(settings, len(valid), timeout_s=180)
        sources = Counter((s["source"]["topic"], s["source"]["partition"], s["source"]["offset"]) for s in signals)
        found = Counter(s["event_id"] for s in signals)
        missing = sorted(set(valid) - set(found))
        where = ""
        if missing:
            where = f"{len(missing)} missing\n" + input_progress(settings, settings.enrich.group_id, set(missing))
            where += f"\nenrich restarts: {enrich.restarts}\n" + enrich.log_tails()
        assert not missing, where
        assert max(sources.values()) == 1, f"a read_committed reader saw a signal twice\n{enrich.log_tails()}"
        assert found == valid
    finally:
        if frozen is not None:
            kafka_cluster.freeze(frozen, False)
        print(f"enrich restarts: {enrich.restarts}")
        assert enrich.stop() == 0, enrich.log_tails()
