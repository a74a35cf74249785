"""Stage 2 on real Kafka: reference fold, crash recovery, two workers, disorder and duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker
from tests.conftest import isolated_settings
from tests.integration.profiles_harness import (
    ProfileReader,
    Worker,
    produce_signals,
    profile_settings,
    wait_for,
)
from tests.unit.consumers.profiles.streams import (
    disorder,
    make_signals,
    profile_mismatches,
    reference_profiles,
)

pytestmark = pytest.mark.integration

HALF_LIFE, TOP_K, RECENT = 7.0, 3, 5


def _expected(signals: list[dict]) -> dict[str, dict]:
    return reference_profiles(signals, HALF_LIFE, TOP_K, RECENT)


def _all_published(reader: ProfileReader, expected: dict[str, dict]) -> bool:
    reader.poll(0.3)
    return all(reader.latest.get(u, {}).get("version") == e["version"] for u, e in expected.items())


def _mismatches(reader: ProfileReader, expected: dict[str, dict]) -> dict[str, list[str]]:
    problems = {u: profile_mismatches(reader.latest[u], e) for u, e in expected.items()}
    return {u: p for u, p in problems.items() if p}


def test_published_profiles_equal_the_reference_fold(kafka_broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = profile_settings(
        isolated_settings(kafka_broker.bootstrap),
        half_life_days=HALF_LIFE,
        top_k=TOP_K,
        recent_products=RECENT,
    )
    clean = make_signals(seed=21, users=25, n=400)
    stream = disorder(clean, seed=5, duplicate_fraction=0.25)
    expected = _expected(clean)
    worker = Worker(settings, tmp_path, "a").start()
    reader = ProfileReader(settings)
    try:
        produce_signals(settings, stream)
        wait_for(lambda: _all_published(reader, expected), 90, "every profile published", [worker])
        assert _mismatches(reader, expected) == {}
        # coalescing: far fewer publishes than signals, and each user's profile on its signals' partition
        assert len(expected) <= reader.records < len(stream)
        assert all(len(parts) == 1 for parts in reader.partitions_by_user.values())
        status, body = worker.get("/readyz")
        assert status == 200 and body["partitioner_mismatches"] == 0
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()
