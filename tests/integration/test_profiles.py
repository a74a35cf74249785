"""Stage 2 on real Kafka: reference fold, crash recovery, two workers, disorder and duplicates."""

from __future__ import annotations

import shutil
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


def _metric(worker: Worker, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode("utf-8")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and 'stage="profiles"' in line
    )


@pytest.mark.parametrize(
    ("store", "wipe"),
    [("memory", True), ("rocksdb", True), ("rocksdb", False)],
    ids=["memory", "rocksdb-wiped", "rocksdb-kept"],
)
def test_kill_9_mid_stream_recovers_the_reference_without_double_applying(
    kafka_broker: EmbeddedBroker, tmp_path: Path, store: str, wipe: bool
) -> None:
    settings = profile_settings(
        isolated_settings(kafka_broker.bootstrap),
        half_life_days=HALF_LIFE,
        top_k=TOP_K,
        recent_products=RECENT,
    )
    clean = make_signals(seed=33, users=30, n=900)
    stream = disorder(clean, seed=9, duplicate_fraction=0.0)  # no duplicates: any seen below are replays
    expected = _expected(clean)
    first = Worker(settings, tmp_path, "first", store=store).start()
    reader = ProfileReader(settings)
    try:
        wait_for(first.ready, 60, "first worker ready", [first])
        produce_signals(settings, stream[:600])

        def some_published() -> bool:
            reader.poll(0.1)
            return len(reader.latest) >= 5

        wait_for(some_published, 60, "the first profiles", [first])
        first.kill9()
        if wipe:
            shutil.rmtree(first.data_dir, ignore_errors=True)
        produce_signals(settings, stream[600:])
        second = Worker(settings, tmp_path, "first", store=store).start()  # same name: same store path
        try:
            wait_for(lambda: _all_published(reader, expected), 120, "every profile after restart", [second])
            assert _mismatches(reader, expected) == {}
            for user in list(expected)[:5]:
                status, body = second.get(f"/profiles/{user}?as_of={expected[user]['as_of']}")
                assert status == 200
                assert profile_mismatches(body, expected[user]) == []
            replays = _metric(second, "shoppulse_signals_duplicate_total")
            print(f"[{store}, wipe={wipe}] signals replayed and ignored after kill -9: {replays:.0f}")
            assert replays > 0, "the kill came after the last commit: the test did not exercise replays"
        finally:
            assert second.stop() == 0, second.log_tail()
    finally:
        reader.close()
