"""Stage 1 when the broker is absent at start and when it goes away mid-run and comes back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shoppulse.devkit.broker import free_port
from shoppulse.devkit.broker.kafka import KafkaBroker
from shoppulse.devkit.simulator import Simulator
from shoppulse.devkit.simulator.produce import produce_stream
from tests.conftest import isolated_settings
from tests.integration.enrich_harness import committed_total, http_json, read_all, start_enrich, stop, wait_for


def _ready(port: int) -> bool:
    try:
        return http_json(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200
    except OSError:
        return False

pytestmark = pytest.mark.integration


def test_enrich_waits_for_a_missing_broker_and_survives_a_restart(kafka_broker, tiny_bundle: Path, tmp_path: Path):
    # kafka_broker is not used directly: it guarantees the Kafka backend is available (and fails in CI if not).
    port = free_port()
    data = tmp_path / "kafka"
    log = tmp_path / "enrich.log"
    own = KafkaBroker(port=port, data_dir=data)
    # Settings point at a port where nothing listens yet: the stage must wait, not crash-loop.
    own.start()
    settings = isolated_settings(own.bootstrap, enrich={"group_id": f"outage-{time.monotonic_ns()}"})
    own.stop()
    http_port = free_port()
    proc = start_enrich(settings, tiny_bundle, log_path=log, http_port=http_port)
    try:
        wait_for(lambda: "not reachable" in log.read_text(), 60, "a clear retry log line", procs=[proc])
        own = KafkaBroker(port=port, data_dir=data)
        own.start()
        sim = Simulator(seed=66, users=30, start_ms=1_790_000_000_000)
        produce_stream(settings, sim, 400)
        wait_for(lambda: committed_total(settings, settings.enrich.group_id) == 400, 120, "first half", procs=[proc])
        own.stop()  # mid-run outage
        wait_for(lambda: not _ready(http_port), 60, "readiness reports the outage", procs=[proc])
        assert proc.poll() is None, "the stage must survive an outage"
        own = KafkaBroker(port=port, data_dir=data)
        own.start()
        # with no input at all (red team: readiness stayed 503 until the next record arrived)
        wait_for(lambda: _ready(http_port), 60, "ready again with the broker back", procs=[proc])
        produce_stream(settings, sim, 400)
        wait_for(lambda: committed_total(settings, settings.enrich.group_id) == 800, 180, "recovery", procs=[proc])
        out = read_all(settings, [settings.topics.user_signals], {settings.topics.user_signals: 800})
        assert set(out.event_ids(settings.topics.user_signals)) == set(sim.truth.valid_event_ids)
    finally:
        stop(proc)
        own.stop()
