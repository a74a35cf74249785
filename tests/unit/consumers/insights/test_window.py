"""The windowed fold: exact counts and money, replays ignored, late facts counted apart, bounds."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.insights.window import (
    MAX_INPUT_PARTITIONS,
    MAX_KEYWORDS,
    Fact,
    FactRefused,
    FoldBatch,
    InsightState,
    WindowParams,
    apply_fact,
    fold,
    render_rolling,
    render_window,
)

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR
PARAMS = WindowParams(window_ms=HOUR, retention_ms=48 * HOUR, grace_ms=10 * 60_000, rolling_ms=24 * HOUR)


def review(offset: int, ts: int, negative: bool, aspects: dict[str, str] | None = None, **kw) -> Fact:
    return Fact(
        key="p:p1",
        kind="review",
        ts=ts,
        event_id=f"r{offset}",
        source=RecordCoordinates("review-insights", kw.pop("partition", 0), offset),
        negative=negative,
        rating=kw.pop("rating", 1 if negative else 5),
        aspects=aspects or {},
        keywords=kw.pop("keywords", ("慢",) if negative else ()),
    )


def order(offset: int, ts: int, units: int, revenue: str, item: int = 0) -> Fact:
    return Fact(
        key="p:p1",
        kind="order",
        ts=ts,
        event_id=f"o{offset}",
        source=RecordCoordinates("user-signals", 1, offset),
        item=item,
        units=units,
        revenue=Decimal(revenue),
        currency="CNY",
    )


def test_counts_money_and_shares_of_one_window() -> None:
    facts = [
        review(0, T0 + 1, True, {"物流": "negative"}),
        review(1, T0 + 2, False, {"物流": "positive", "质量": "positive"}),
        order(0, T0 + 3, 2, "0.10"),
        order(1, T0 + 4, 1, "0.20"),
        Fact(key="p:p1", kind="view", ts=T0 + 5, event_id="v", source=RecordCoordinates("user-signals", 1, 2)),
        Fact(key="p:p1", kind="view", ts=T0 + 6, event_id="v2", source=RecordCoordinates("user-signals", 1, 3)),
        Fact(key="p:p1", kind="add_to_cart", ts=T0 + 7, event_id="c", source=RecordCoordinates("user-signals", 1, 4)),
    ]
    state, late = fold(facts, "p:p1", PARAMS)
    record = render_window(state, T0, PARAMS)
    assert late == 0
    assert record["product_id"] == "p1" and record["scope"] == "product"
    assert (record["reviews"], record["negative_reviews"], record["negative_share"]) == (2, 1, 0.5)
    assert record["mean_rating"] == 3.0
    assert record["aspects"] == {"物流": {"positive": 1, "negative": 1}, "质量": {"positive": 1, "negative": 0}}
    assert record["top_complaint_aspects"] == ["物流"]
    assert record["negative_keywords"] == [{"keyword": "慢", "count": 1}]
    assert record["negative_examples"] == ["r0"]
    assert (record["orders"], record["units"], record["revenue"]) == (
        2,
        3,
        {"CNY": "0.30"},
    )  # exact: not 0.30000000000000004
    assert (record["views"], record["add_to_carts"], record["conversion"]) == (2, 1, 1.0)
    assert record["window"] == {"start": T0, "end": T0 + HOUR, "closed": False}


def test_a_replay_from_any_earlier_offset_changes_nothing() -> None:
    facts = [review(i, T0 + i * 1000, i % 3 == 0) for i in range(30)]
    once, _ = fold(facts, "p:p1", PARAMS)
    replayed, _ = fold(facts[:20] + facts[7:] + facts[25:], "p:p1", PARAMS)
    assert json.dumps(replayed.to_row(), sort_keys=True) == json.dumps(once.to_row(), sort_keys=True)


def test_partitions_interleave_in_any_order_to_the_same_figures() -> None:
    rng = random.Random(5)
    streams = [
        [review(i, T0 + rng.randrange(HOUR), rng.random() < 0.3, partition=p) for i in range(40)] for p in range(3)
    ]
    reference, _ = fold([f for s in streams for f in s], "p:p1", PARAMS)
    for _ in range(5):  # a random merge that keeps each partition's own order
        cursors, merged = [0, 0, 0], []
        while len(merged) < 120:
            p = rng.choice([i for i in range(3) if cursors[i] < 40])
            merged.append(streams[p][cursors[p]])
            cursors[p] += 1
        state, _ = fold(merged, "p:p1", PARAMS)
        assert render_window(state, T0, PARAMS) == render_window(reference, T0, PARAMS)


def test_a_fact_inside_the_grace_period_counts_and_one_after_it_is_late() -> None:
    state = InsightState(key="p:p1")
    assert apply_fact(state, review(0, T0 + HOUR + 5 * 60_000, False), PARAMS) == "applied"  # next window
    assert apply_fact(state, review(1, T0 + 10, True), PARAMS) == "applied"  # 5 min after the end: in grace
    assert apply_fact(state, review(2, T0 + HOUR + 11 * 60_000, False), PARAMS) == "applied"
    assert apply_fact(state, review(3, T0 + 20, True), PARAMS) == "late"  # 11 min after: closed
    assert apply_fact(state, review(3, T0 + 20, True), PARAMS) == "duplicate"  # its replay is known
    assert render_window(state, T0, PARAMS)["reviews"] == 1
    assert render_window(state, T0, PARAMS)["window"]["closed"] is True


def test_windows_past_the_retention_are_dropped_with_their_alert_ids() -> None:
    state = InsightState(key="p:p1", alerted=[f"negative_spike/p:p1/-/{T0}"])
    apply_fact(state, review(0, T0, False), PARAMS)
    apply_fact(state, review(1, T0 + 49 * HOUR, False), PARAMS)
    assert sorted(state.windows) == [T0 + 49 * HOUR]
    assert state.alerted == []
    assert apply_fact(state, review(2, T0 + 1, False), PARAMS) == "late"


def test_the_rolling_figures_sum_the_last_24_windows() -> None:
    facts = [order(i, T0 + i * HOUR, 1, "1.5") for i in range(30)]
    state, _ = fold(facts, "p:p1", PARAMS)
    rolling = render_rolling(state, PARAMS)
    assert rolling["window"] == {"start": T0 + 6 * HOUR, "end": T0 + 30 * HOUR, "rolling": True}
    assert (rolling["orders"], rolling["revenue"]) == (24, {"CNY": "36.0"})


def test_keywords_stay_bounded_and_keep_the_frequent_ones() -> None:
    facts = []
    for i in range(400):
        word = "破损" if i % 4 == 0 else f"词{i}"
        facts.append(review(i, T0 + i, True, keywords=(word,)))
    state, _ = fold(facts, "p:p1", PARAMS)
    window = state.windows[T0]
    assert len(window["keywords"]) == MAX_KEYWORDS
    assert render_window(state, T0, PARAMS)["negative_keywords"][0]["keyword"] == "破损"


def test_a_row_refuses_more_input_partitions_than_its_bound() -> None:
    state = InsightState(key="p:p1")
    for p in range(MAX_INPUT_PARTITIONS):
        apply_fact(state, review(0, T0, False, partition=p), PARAMS)
    with pytest.raises(FactRefused):
        apply_fact(state, review(0, T0, False, partition=MAX_INPUT_PARTITIONS), PARAMS)


def test_a_row_survives_its_changelog_form() -> None:
    state, _ = fold([review(0, T0, True, {"物流": "negative"}), order(1, T0, 1, "9.99")], "c:手机", PARAMS)
    back = InsightState.from_row(json.loads(json.dumps(state.to_row())))
    assert back.to_row() == state.to_row()
    record = render_window(back, T0, PARAMS)
    assert record["category"] == "手机" and record["gmv"] == {"CNY": "9.99"}


def test_a_partition_that_runs_behind_is_not_late() -> None:
    """Partition 0 is an hour ahead (a backlog elsewhere): partition 1's on-time facts still count."""
    state = InsightState(key="p:p1")
    for i in range(10):
        assert apply_fact(state, review(i, T0 + 2 * HOUR + i, False, partition=0), PARAMS) == "applied"
    for i in range(10):
        assert apply_fact(state, review(i, T0 + i, True, partition=1), PARAMS) == "applied"
    assert render_window(state, T0, PARAMS)["reviews"] == 10
    assert render_window(state, T0, PARAMS)["window"]["closed"] is True  # the row's clock passed it


def test_a_batch_folds_to_the_same_row_loading_and_writing_it_once() -> None:
    """Batches of any size give the row that folding fact by fact gives, replays and late facts included."""
    rng = random.Random(3)
    reviews = [review(i, T0 + i * 60_000 + rng.randrange(-HOUR, HOUR), rng.random() < 0.3) for i in range(400)]
    orders = [order(i, T0 + i * 90_000, 1, "1.5") for i in range(200)]
    facts = []  # two input partitions interleaved, each in its own order
    while reviews or orders:
        facts.append((reviews if reviews and (not orders or rng.random() < 0.6) else orders).pop(0))
    stream = facts + facts[100:250]  # a replay
    expected, late = fold(stream, "p:p1", PARAMS)
    assert late > 0  # the stream has late facts: they must be treated alike
    for size in (1, 7, 600):
        stored: dict[str, InsightState] = {}
        loads = 0

        def load(key: str, stored: dict[str, InsightState] = stored) -> InsightState | None:
            nonlocal loads
            loads += 1
            row = stored.get(key)
            return InsightState.from_row(json.loads(json.dumps(row.to_row()))) if row else None

        batches = 0
        for i in range(0, len(stream), size):
            batch = FoldBatch(load, PARAMS)
            for fact in stream[i : i + size]:
                batch.apply(fact.key, [fact], partition=4)
            change = batch.rows["p:p1"]
            stored["p:p1"] = change.state
            batches += 1
            assert batch.results["late"] == len(batch.late) and batch.results["applied"] == len(batch.applied)
        assert loads == batches
        assert stored["p:p1"].to_row() == expected.to_row()
    batch = FoldBatch(lambda key: None, PARAMS)
    batch.apply("p:p1", [facts[0], facts[0]], partition=1)
    assert batch.results == {"applied": 1, "duplicate": 1} or batch.results == {"late": 1, "duplicate": 1}
