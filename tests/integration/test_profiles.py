"""Stage 2 on real Kafka: reference fold, crash recovery, two workers, disorder and duplicates."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from shoppulse.consumers.settings import Settings
from shoppulse.devkit.broker import EmbeddedBroker
from tests.conftest import isolated_settings
from tests.integration.profiles_harness import (
    ProfileReader,
    Worker,
    produce_signals,
    profile_settings,
    wait_for,
)
from tests.otlp_collector import otlp_collector
from tests.unit.consumers.profiles.streams import (
    disorder,
    make_signals,
    profile_mismatches,
    reference_profiles,
)

pytestmark = pytest.mark.integration

HALF_LIFE, TOP_K, RECENT = 7.0, 3, 5


def _read_all(settings: Settings, topic: str, expected: int, timeout_s: float = 30) -> list[dict]:
    consumer = Consumer(
        settings.librdkafka(**{"group.id": f"read-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out += [json.loads(m.value()) for m in consumer.consume(100, 0.5) if m.error() is None]
    finally:
        consumer.close()
    return out


def _fold_settings(kafka_broker: EmbeddedBroker) -> Settings:
    """Fresh topics on the shared broker, with the fold parameters the reference uses."""
    return profile_settings(
        isolated_settings(kafka_broker.bootstrap), half_life_days=HALF_LIFE, top_k=TOP_K, recent_products=RECENT
    )


def _expected(signals: list[dict]) -> dict[str, dict]:
    return reference_profiles(signals, HALF_LIFE, TOP_K, RECENT)


def _all_published(reader: ProfileReader, expected: dict[str, dict]) -> bool:
    reader.poll(0.3)
    behind = {
        u: (reader.latest.get(u, {}).get("version"), e["version"])
        for u, e in expected.items()
        if reader.latest.get(u, {}).get("version") != e["version"]
    }
    reader.behind = behind
    return not behind


def _mismatches(reader: ProfileReader, expected: dict[str, dict]) -> dict[str, list[str]]:
    problems = {u: profile_mismatches(reader.latest[u], e) for u, e in expected.items()}
    return {u: p for u, p in problems.items() if p}


def test_published_profiles_equal_the_reference_fold(kafka_broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = _fold_settings(kafka_broker)
    clean = make_signals(seed=21, users=25, n=400)
    stream = disorder(clean, seed=5, duplicate_fraction=0.25)
    expected = _expected(clean)
    collector_context = otlp_collector()  # tracing on for this worker: a span per record, flushed at stop
    collector = collector_context.__enter__()
    worker = Worker(settings, tmp_path, "a", env={"SHOPPULSE_TRACING__OTLP_ENDPOINT": collector.url}).start()
    reader = ProfileReader(settings)
    try:
        produce_signals(settings, stream)
        bad = Producer(settings.librdkafka())
        bad.produce(settings.topics.user_signals, key=b"u000001", value=b"{not json")
        bad.produce(settings.topics.user_signals, key=b"u000002", value=json.dumps(clean[0]).encode())
        assert bad.flush(10) == 0
        wait_for(lambda: _all_published(reader, expected), 90, "every profile published", [worker])
        assert _mismatches(reader, expected) == {}
        dead = _read_all(settings, settings.topics.dead_letter, 2)
        assert sorted(d["reason"] for d in dead) == ["bad_json", "key_mismatch"]
        assert all(d["stage"] == "profiles" for d in dead)
        # coalescing: far fewer publishes than signals, and each user's profile on its signals' partition
        assert len(expected) <= reader.records < len(stream)
        assert all(len(parts) == 1 for parts in reader.partitions_by_user.values())
        status, body = worker.get("/readyz")
        assert status == 200 and body["partitioner_mismatches"] == 0
        # A restart with nothing new to read: no lag, nothing re-read or sought (lag used to count from
        # "nothing handled yet", so a quiet restarted worker reported whole partitions as lag).
        assert worker.stop() == 0, worker.log_tail()
        worker = Worker(settings, tmp_path, "a").start()
        wait_for(worker.ready, 60, "restarted worker ready", [worker])
        wait_for(
            lambda: _caught_up(worker, settings.kafka.partitions),
            30,
            "a lag of 0 on every partition",
            [worker],
            details=lambda: str(_lag_series(worker)),
        )
        assert _metric(worker, "shoppulse_offset_holes_total") == 0
        assert _metric(worker, "shoppulse_profiles_updated_total") == 0
        spans = [span for span in collector.spans if span["name"] == "profiles.signal"]
        # one per record handed to the agent (a record faust skipped is re-read inside the next one's span)
        assert 0.9 * (len(stream) + 2) <= len(spans) <= len(stream) + 2
        assert {span["resource"]["shoppulse.stage"] for span in spans} == {"profiles"}
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()
        collector_context.__exit__(None, None, None)


def test_transaction_markers_in_the_input_are_holes_read_back_empty(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """An exactly-once upstream leaves a commit marker after each transaction: a hole with no record."""
    settings = _fold_settings(kafka_broker)
    clean = make_signals(seed=55, users=12, n=240)
    expected = _expected(clean)
    worker = Worker(settings, tmp_path, "a").start()
    reader = ProfileReader(settings)
    try:
        wait_for(worker.ready, 60, "worker ready", [worker])
        produce_signals(settings, clean, transaction_size=40)
        wait_for(lambda: _all_published(reader, expected), 90, "every profile published", [worker])
        assert _mismatches(reader, expected) == {}
        holes = {
            outcome: _metric(worker, "shoppulse_offset_holes_total", f'outcome="{outcome}"')
            for outcome in ("empty", "recovered", "failed")
        }
        # 6 transactions, each followed by a marker on every partition it wrote to; a partition's last
        # marker has no later record to reveal it, so the gauge timer reads that tail and finds it empty.
        assert holes["empty"] >= 3 and holes["recovered"] == 0 and holes["failed"] == 0, holes
        assert _metric(worker, "shoppulse_signals_reread_total") == 0
        wait_for(
            lambda: _caught_up(worker, settings.kafka.partitions),
            60,
            "trailing markers settled: no lag left",
            [worker],
            details=lambda: str(_lag_series(worker)),
        )
        assert _metric(worker, "shoppulse_offset_holes_total", 'outcome="redelivered"') == 0
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()


def _produce_aborted(settings: Settings, signals: list[dict]) -> None:
    """Signals written in a transaction that is then aborted: a read_committed reader never sees them."""
    producer = Producer(
        settings.librdkafka(**{"partitioner": "murmur2_random", "transactional.id": f"ghost-{uuid.uuid4().hex[:8]}"})
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for s in signals:
        producer.produce(settings.topics.user_signals, key=s["user_id"].encode(), value=json.dumps(s).encode())
    producer.flush(30)
    producer.abort_transaction(30)


def _committed(settings: Settings) -> dict[int, int]:
    """The profiles group's committed offset of every ``user-signals`` partition (-1: none)."""
    from confluent_kafka import TopicPartition

    consumer = Consumer(settings.librdkafka(**{"group.id": settings.profiles.app_id}))
    try:
        topic = settings.topics.user_signals
        found = consumer.committed([TopicPartition(topic, p) for p in range(settings.kafka.partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_aborted_transactions_and_late_replays_are_never_folded_and_commits_pass_markers(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Exact deduplication and read_committed (red team: with exactly-once enrich, a restart re-applied
    6,562 signals; the committed offsets stayed ~19,000 behind; replays past the 512-event window
    were applied twice). The event_id window is 4 here, so only the offset marks can catch the replay."""
    settings = _fold_settings(kafka_broker)
    settings = profile_settings(settings, dedup_window=4)
    clean = make_signals(seed=61, users=8, n=240)
    ghosts = [
        {**s, "event_id": f"ghost-{i}", "source": {**s["source"], "offset": 10**6 + i}}
        for i, s in enumerate(make_signals(seed=62, users=8, n=40))
    ]
    expected = _expected(clean)
    worker = Worker(settings, tmp_path, "a").start()
    reader = ProfileReader(settings)
    try:
        wait_for(worker.ready, 60, "worker ready", [worker])
        produce_signals(settings, clean[:120], transaction_size=20)
        _produce_aborted(settings, ghosts)
        produce_signals(settings, clean[120:], transaction_size=20)
        _wait_for_reference(reader, expected, worker, "profiles of the committed signals", 90)
        produce_signals(settings, clean)  # the whole stream again, as a replay long after the window
        ends = _end_offsets(settings)
        wait_for(
            lambda: _committed(settings) == ends,
            60,
            "the group committed every partition to its end (past every marker)",
            [worker],
            details=lambda: f"committed {_committed(settings)} ends {ends}",
        )
        reader.poll(1.0)
        assert _mismatches(reader, expected) == {}
        assert _metric(worker, "shoppulse_signals_duplicate_total") >= len(clean)  # every replayed one
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()


PII = ("13812345678", "zhang.san@example.com", "110101199003071234")


def _read_with_keys(settings: Settings, topic: str, expected: int, timeout_s: float = 60) -> list[tuple[bytes, dict]]:
    consumer = Consumer(
        settings.librdkafka(**{"group.id": f"read-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    out: list[tuple[bytes, dict]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out += [(m.key() or b"", json.loads(m.value())) for m in consumer.consume(100, 0.5) if m.error() is None]
    finally:
        consumer.close()
    return out


def _check_profile_record_headers(settings: Settings, expected: dict[str, dict], started_ms: int) -> None:
    """A profile record's Kafka timestamp is its event time (as_of), never ahead of the clock (the broker
    refuses records over an hour ahead), and it says what it is."""
    consumer = Consumer(
        settings.librdkafka(**{"group.id": f"read-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([settings.topics.user_profiles])
    latest: dict[str, object] = {}
    deadline = time.monotonic() + 30
    try:
        while len(latest) < len(expected) and time.monotonic() < deadline:
            for m in consumer.consume(100, 0.5):
                if m.error() is None:
                    latest[m.key().decode()] = m
    finally:
        consumer.close()
    assert set(latest) == set(expected)
    for user, msg in latest.items():
        headers = dict(msg.headers())  # type: ignore[attr-defined]
        assert headers["content-type"] == b"application/json" and headers["schema-version"] == b"1"
        kind, ts = msg.timestamp()  # type: ignore[attr-defined]
        as_of = expected[user]["as_of"]
        assert kind == 1 and (ts == as_of if as_of <= started_ms else started_ms <= ts <= time.time() * 1000), user


def test_poison_signals_are_dead_lettered_masked_and_the_worker_goes_on(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Red team: these crashed the agent (faust then skipped them silently), stopped it for 30 s, or grew a
    profile past Kafka's limit; the profiles dead letters carried personal data unmasked. The worker
    also runs from an empty directory, where `shoppulse run profiles` crashed (no .cache/). A signal two
    hours ahead of the clock made a profile the broker refused (INVALID_TIMESTAMP), never published."""
    settings = _fold_settings(kafka_broker)
    good = make_signals(seed=71, users=4, n=40)
    started_ms = int(time.time() * 1000)
    # Two hours ahead: within the contract's day of clock skew, beyond the broker's hour for timestamps.
    good.append({**good[0], "user_id": "u-future", "event_id": "c-future", "ts": started_ms + 2 * 3600_000})
    base = {**good[0], "user_id": "u-poison", "weight": 2.0}
    body = json.dumps(base)

    def enc(**changes: object) -> bytes:
        return json.dumps({**base, **changes}).encode()

    poison: list[tuple[bytes, bytes, str]] = [
        (b"u-poison", enc(tags={"长" * 2000 + str(i): 0.01 for i in range(64)}), "bad_value"),
        (b"u-poison", body.replace('"weight": 2.0', '"weight": 1' + "0" * 400).encode(), "bad_value"),
        (b"u-poison", b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "bad_json"),
        (b"u-poison", b'{"ts": ' + b"1" * 5000 + b"}", "bad_json"),
        (b"u-poison", enc(product_ids=[f"p{i}" for i in range(20_000)]), "bad_value"),
        (PII[0].encode(), enc(user_id=PII[0], event_id=None, note=PII[1]), "missing_field"),
        (PII[2].encode(), enc(user_id=PII[1]), "key_mismatch"),
    ]
    assert '"weight": 2.0' in body
    empty = tmp_path / "new-user"
    empty.mkdir()
    worker = Worker(settings, tmp_path, "p", cwd=empty).start()
    reader = ProfileReader(settings)
    try:
        wait_for(worker.ready, 60, "worker ready (started in an empty directory)", [worker])
        producer = Producer(settings.librdkafka(**{"partitioner": "murmur2_random"}))
        for key, value, _ in poison:
            producer.produce(settings.topics.user_signals, value, key)
        assert producer.flush(30) == 0
        produce_signals(settings, good)
        _wait_for_reference(reader, _expected(good), worker, "profiles of the good signals", 90)
        dead = _read_with_keys(settings, settings.topics.dead_letter, len(poison))
        assert worker.get("/healthz")[0] == 200
        _check_profile_record_headers(settings, _expected(good), started_ms)
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()
    assert (empty / ".cache" / "profiles").is_dir()
    assert sorted(r["reason"] for _, r in dead) == sorted(reason for _, _, reason in poison)
    for key, record in dead:
        assert record["stage"] == "profiles" and len(json.dumps(record)) < 400_000
        readable = json.dumps({k: v for k, v in record.items() if k != "value_base64"}, ensure_ascii=False)
        for secret in PII:
            assert secret not in readable and secret.encode() not in key, (secret, readable[:300])


def _wait_for_reference(
    reader: ProfileReader, expected: dict[str, dict], worker: Worker, what: str, timeout_s: float
) -> None:
    """Until every user's latest published profile has the reference version, then compare them all."""
    wait_for(
        lambda: _all_published(reader, expected),
        timeout_s,
        what,
        [worker],
        details=lambda: f"behind (published, expected): {reader.behind}",
    )
    assert _mismatches(reader, expected) == {}


def _end_offsets(settings: Settings) -> dict[int, int]:
    """High watermark of every ``user-signals`` partition."""
    from confluent_kafka import TopicPartition

    consumer = Consumer(settings.librdkafka(**{"group.id": f"ends-{uuid.uuid4().hex[:6]}"}))
    try:
        topic = settings.topics.user_signals
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(settings.kafka.partitions)
        }
    finally:
        consumer.close()


def test_records_faust_skips_mid_partition_and_at_its_end_are_applied(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """faust made to skip two records as 0.15.3 sometimes does (tests/integration/faust_drop.py).

    The one in the middle of a partition is revealed by the next record and re-read from the
    broker; the one at the end of a partition has no next record, so the gauge timer finds the
    still tail and seeks the stream back to re-deliver it. Both must end up applied.
    """
    settings = _fold_settings(kafka_broker)
    clean = make_signals(seed=77, users=20, n=300)
    expected = _expected(clean)
    produce_signals(settings, clean)
    ends = _end_offsets(settings)
    assert ends[0] > 0 and ends[1] > 2, ends
    topic = settings.topics.user_signals
    drop = f"{topic}:0:{ends[0] - 1},{topic}:1:{ends[1] // 2}"
    worker = Worker(
        settings, tmp_path, "skips", module="tests.integration.faust_drop", env={"SHOPPULSE_TEST_DROP": drop}
    ).start()
    reader = ProfileReader(settings)
    try:
        _wait_for_reference(reader, expected, worker, "every profile although faust skipped two records", 90)
        assert worker.log_tail(10**7).count("test drop:") == 2  # the skips really happened
        holes = {
            outcome: _metric(worker, "shoppulse_offset_holes_total", f'outcome="{outcome}"')
            for outcome in ("recovered", "redelivered", "failed")
        }
        assert holes == {"recovered": 1, "redelivered": 1, "failed": 0}, holes
        assert _metric(worker, "shoppulse_signals_reread_total") == 1
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()


def _lag_series(worker: Worker) -> dict[str, float]:
    """The profiles stage's ``shoppulse_consumer_lag`` samples, by partition."""
    import re
    import urllib.request

    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode("utf-8")
    found = re.findall(r"^shoppulse_consumer_lag\{([^}]*)\} (\S+)$", text, re.M)
    return {
        re.search(r'partition="(\d+)"', labels).group(1): float(value)  # type: ignore[union-attr]
        for labels, value in found
        if 'stage="profiles"' in labels
    }


def _caught_up(worker: Worker, partitions: int) -> bool:
    """Every partition has a lag figure (set every 5 s by the gauge timer) and it is 0."""
    lags = _lag_series(worker)
    return len(lags) == partitions and set(lags.values()) == {0.0}


def _metric(worker: Worker, name: str, label: str = "") -> float:
    """Sum of the worker's ``name`` samples of stage profiles (and ``label``, e.g. ``outcome="empty"``)."""
    import urllib.request

    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode("utf-8")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and 'stage="profiles"' in line and label in line
    )


@pytest.mark.parametrize(
    ("store", "wipe"),
    [("memory", True), ("rocksdb", True), ("rocksdb", False)],
    ids=["memory", "rocksdb-wiped", "rocksdb-kept"],
)
def test_kill_9_mid_stream_recovers_the_reference_without_double_applying(
    kafka_broker: EmbeddedBroker, tmp_path: Path, store: str, wipe: bool
) -> None:
    settings = _fold_settings(kafka_broker)
    clean = make_signals(seed=33, users=30, n=900)
    stream = disorder(clean, seed=9, duplicate_fraction=0.0)  # no duplicates: any seen below are replays
    expected = _expected(clean)
    first = Worker(settings, tmp_path, "first", store=store).start()
    reader = ProfileReader(settings)
    try:
        wait_for(first.ready, 60, "first worker ready", [first])
        produce_signals(settings, stream[:600])

        # Kill once the worker has applied some signals, read from its own /metrics at once: waiting for
        # published profiles went through the reader's group join, which under load could outlast faust's
        # 2.8 s commit interval, leaving nothing to replay.
        wait_for(
            lambda: _metric(first, "shoppulse_profiles_updated_total") >= 50, 60, "the first signals applied", [first]
        )
        first.kill9()
        if wipe:
            shutil.rmtree(first.data_dir, ignore_errors=True)
        produce_signals(settings, stream[600:])
        second = Worker(settings, tmp_path, "first", store=store).start()  # same name: same store path
        try:
            # Strict: faust-streaming 0.15.3 can skip a record right after a restart (docs/profiles.md);
            # the stage re-reads skips in the middle of a partition and has the stream re-deliver a skipped
            # last record, so every profile must come out equal to the reference.
            _wait_for_reference(reader, expected, second, "every profile after restart", 120)
            for user in list(expected)[:5]:
                status, body = second.get(f"/profiles/{user}?as_of={expected[user]['as_of']}")
                assert status == 200
                assert profile_mismatches(body, expected[user]) == []
            replays = _metric(second, "shoppulse_signals_duplicate_total")
            reread = _metric(second, "shoppulse_signals_reread_total")
            redelivered = _metric(second, "shoppulse_offset_holes_total", 'outcome="redelivered"')
            print(
                f"[{store}, wipe={wipe}] signals replayed and ignored after kill -9: {replays:.0f}; "
                f"skipped by faust and re-read: {reread:.0f}; skipped tails re-delivered: {redelivered:.0f}"
            )
            assert replays > 0, "the kill came after the last commit: the test did not exercise replays"
        finally:
            assert second.stop() == 0, second.log_tail()
    finally:
        reader.close()


def _assigned(worker: Worker) -> set[int]:
    """Partitions the worker owns once it is ready (empty while starting or rebalancing)."""
    try:
        status, body = worker.get("/readyz")
    except OSError:
        return set()
    return set(body.get("assigned_partitions", [])) if status == 200 else set()


def _get_with_headers(worker: Worker, path: str) -> tuple[int, dict, dict]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(worker.url + path, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_two_workers_split_partitions_and_route_lookups_to_the_owner(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = _fold_settings(kafka_broker)
    clean = make_signals(seed=44, users=24, n=500)
    expected = _expected(clean)
    a = Worker(settings, tmp_path, "a").start()
    b = Worker(settings, tmp_path, "b").start()
    workers = [a, b]
    reader = ProfileReader(settings)
    try:

        def split() -> bool:
            pa, pb = _assigned(a), _assigned(b)
            return bool(pa) and bool(pb) and not (pa & pb) and pa | pb == {0, 1, 2}

        wait_for(split, 90, "partitions split between two workers", workers)
        produce_signals(settings, disorder(clean, seed=2, duplicate_fraction=0.2))
        wait_for(lambda: _all_published(reader, expected), 90, "every profile published", workers)
        assert _mismatches(reader, expected) == {}
        wait_for(split, 30, "a stable split", workers)
        owner_of_partition = {p: w.url for w in workers for p in _assigned(w)}
        routed = 0
        for user, exp in expected.items():
            (partition,) = reader.partitions_by_user[user]
            owner = owner_of_partition[partition]
            for asked in workers:
                status, headers, body = _get_with_headers(asked, f"/profiles/{user}?as_of={exp['as_of']}")
                assert status == 200, body
                assert profile_mismatches(body, exp) == [], (user, asked.name)
                assert headers["X-Served-By"].rstrip("/") == owner
                if asked.url != owner:
                    routed += 1
                    assert headers["X-Routed-By"].rstrip("/") == asked.url
        assert routed == len(expected)  # each user was asked once of the worker that does not own it

        # now (default as_of) decays further, never grows; errors are JSON
        user, exp = next(iter(expected.items()))
        status, _, body = _get_with_headers(a, f"/profiles/{user}")
        assert status == 200 and body["as_of"] >= exp["as_of"]
        assert all(body["interests"][t] <= s * (1 + 1e-9) for t, s in exp["interests"].items())
        for w in workers:
            status, _, body = _get_with_headers(w, "/profiles/nobody-here")
            assert (status, body["error"]) == (404, "unknown user")
            status, _, body = _get_with_headers(w, f"/profiles/{user}?as_of=yesterday")
            assert status == 400 and "as_of" in body["error"]
            status, _, body = _get_with_headers(w, f"/profiles/{user}?as_of={exp['as_of'] - 1}")
            assert status == 400 and "before" in body["error"]
        status, _, _ = _get_with_headers(a, "/healthz")
        assert status == 200
    finally:
        reader.close()
        for w in workers:
            assert w.stop() == 0, w.log_tail()


def test_disordered_and_duplicated_stream_publishes_the_same_profiles_as_the_clean_one(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    clean = make_signals(seed=55, users=20, n=300)
    messy = disorder(clean, seed=8, duplicate_fraction=0.5)
    runs = []
    # clean: one record per signal in input order, as enrich writes them (event time is still out of order)
    for name, stream in (("clean", clean), ("messy", messy)):
        settings = _fold_settings(kafka_broker)
        runs.append((settings, Worker(settings, tmp_path, name).start(), stream))
    readers = [ProfileReader(settings) for settings, _, _ in runs]
    expected_versions = {u: e["version"] for u, e in _expected(clean).items()}
    try:
        for settings, _, stream in runs:
            produce_signals(settings, stream)
        for reader, (_, worker, _) in zip(readers, runs, strict=True):
            wait_for(
                lambda r=reader: _all_published(r, {u: {"version": v} for u, v in expected_versions.items()}),
                90,
                f"{worker.name} profiles",
                [worker],
            )
        clean_profiles, messy_profiles = readers[0].latest, readers[1].latest
        assert set(clean_profiles) == set(messy_profiles) == set(expected_versions)
        for user, profile in clean_profiles.items():
            reference = {**profile, "top_tags": [t["tag"] for t in profile["top_tags"]]}
            assert profile_mismatches(messy_profiles[user], reference) == [], user
    finally:
        for reader in readers:
            reader.close()
        for _, worker, _ in runs:
            assert worker.stop() == 0, worker.log_tail()
