"""Scaling out and back in under a live stream: enrich 1 → 3 → 1 processes, profiles 1 → 2 → 1 workers.

Nothing may be lost or applied twice across the four rebalances, and the published profiles must
equal a reference folded from ``user-signals``. Each rebalance's duration (from the process
change until every partition is owned again, by the processes expected) is printed; they are
figures for docs/operations.md, not assertions.
"""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from shoppulse.devkit.broker import EmbeddedBroker, free_port
from shoppulse.devkit.simulator import Simulator
from shoppulse.devkit.simulator.produce import produce_stream
from tests.conftest import isolated_settings
from tests.integration.enrich_harness import http_json, read_signals, start_enrich, stop, wait_for
from tests.integration.profiles_harness import ProfileReader, Worker, profile_settings
from tests.integration.test_failover import HALF_LIFE, RECENT, TOP_K
from tests.unit.consumers.profiles.streams import profile_mismatches, reference_profiles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 6


def _enrich_assigned(port: int) -> int:
    try:
        return int(http_json(f"http://127.0.0.1:{port}/readyz", timeout=2)[1].get("assigned_partitions") or 0)
    except (OSError, ValueError, AttributeError):
        return 0


def _profiles_assigned(worker: Worker) -> int:
    try:
        return len(worker.get("/readyz")[1].get("assigned_partitions") or [])
    except (OSError, ValueError, AttributeError):
        return 0


def test_scale_out_and_in_during_a_stream_loses_nothing(
    kafka_broker: EmbeddedBroker, tiny_bundle: Path, tmp_path: Path
) -> None:
    settings = isolated_settings(
        kafka_broker.bootstrap, partitions=PARTITIONS, enrich={"group_id": f"g-{uuid.uuid4().hex[:6]}"}
    )
    settings = profile_settings(settings, half_life_days=HALF_LIFE, top_k=TOP_K, recent_products=RECENT)
    inputs = 3 * PARTITIONS
    sim = Simulator(seed=37, users=60, start_ms=1_790_000_000_000)
    ports = [free_port() for _ in range(3)]
    enrich = [start_enrich(settings, tiny_bundle, log_path=tmp_path / "enrich-0.log", http_port=ports[0])]
    workers = [Worker(settings, tmp_path, "p0").start()]
    reader = ProfileReader(settings)
    producer = threading.Thread(target=produce_stream, args=(settings, sim, 3600, 100.0), daemon=True)
    took: dict[str, float] = {}

    def rebalance(name: str, enrich_ports: list[int], live_workers: list[Worker], started: float) -> None:
        def settled() -> bool:
            e = [_enrich_assigned(p) for p in enrich_ports]
            w = [_profiles_assigned(x) for x in live_workers]
            return sum(e) == inputs and all(e) and sum(w) == PARTITIONS and all(w)

        wait_for(settled, 120, f"{name}: every partition owned by the expected processes", interval=0.2)
        took[name] = round(time.monotonic() - started, 1)

    try:
        wait_for(workers[0].ready, 90, "profiles worker ready")
        rebalance("start", ports[:1], workers, time.monotonic())
        producer.start()
        time.sleep(4)
        change = time.monotonic()
        enrich += [
            start_enrich(settings, tiny_bundle, log_path=tmp_path / f"enrich-{i}.log", http_port=ports[i])
            for i in (1, 2)
        ]
        workers.append(Worker(settings, tmp_path, "p1").start())
        rebalance("out: enrich 1->3, profiles 1->2", ports, workers, change)
        time.sleep(8)
        change = time.monotonic()  # the leavers drain, commit and leave the group (SIGTERM)
        for proc in enrich[1:]:
            assert stop(proc) == 0
        assert workers[1].stop() == 0, workers[1].log_tail()
        rebalance("in: enrich 3->1, profiles 2->1", ports[:1], workers[:1], change)
        producer.join(120)
        assert not producer.is_alive()
        valid = Counter(sim.truth.valid_event_ids)
        by_source: dict[tuple[str, int, int], dict] = {}
        for s in read_signals(settings, len(valid)):
            by_source.setdefault((s["source"]["topic"], s["source"]["partition"], s["source"]["offset"]), s)
        assert Counter(s["event_id"] for s in by_source.values()) == valid
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
            with urllib.request.urlopen(workers[0].url + "/metrics", timeout=5) as response:
                metric_lines = [
                    line
                    for line in response.read().decode().splitlines()
                    if line.startswith(("shoppulse_consumer_lag", "shoppulse_offset_holes", "shoppulse_signals_"))
                ]
            ready = workers[0].get("/readyz")
            metrics_text = "\n".join(metric_lines)
            return (
                f"behind (published, expected): {dict(list(lagging.items())[:10])}\n"
                f"worker /readyz: {ready}\n{metrics_text}\n{workers[0].log_tail()}"
            )

        wait_for(all_published, 120, "every profile at its reference version", procs=enrich[:1], details=behind)
        problems = {u: profile_mismatches(reader.latest[u], e) for u, e in expected.items()}
        assert {u: p for u, p in problems.items() if p} == {}
    finally:
        reader.close()
        for worker in workers:
            worker.stop()
        for proc in enrich:
            stop(proc)
    print(f"rebalance seconds: {took}")
