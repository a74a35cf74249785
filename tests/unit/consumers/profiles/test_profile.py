"""The fold against the reference formulas: order, duplicates, late events, the dedup window."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.profiles.profile import FoldParams, ProfileState, apply_signal, average, fold, render
from shoppulse.consumers.records import Signal, SignalError
from tests.unit.consumers.profiles.streams import (
    disorder,
    make_signals,
    on_own_partitions,
    profile_mismatches,
    reference_profiles,
)

PARAMS = FoldParams(half_life_days=7.0, top_k=3, recent_products=5, dedup_window=64)


def _fold_all(raw: list[dict], params: FoldParams = PARAMS) -> dict[str, ProfileState]:
    states: dict[str, ProfileState] = {}
    for item in raw:
        signal = Signal.from_json(item)
        state = states.setdefault(signal.user_id, ProfileState(user_id=signal.user_id))
        apply_signal(state, signal, params, now_ms=0)
    return states


def _check_against_reference(states: dict[str, ProfileState], raw: list[dict], params: FoldParams) -> None:
    expected = reference_profiles(raw, params.half_life_days, params.top_k, params.recent_products)
    assert set(states) == set(expected)
    for user, state in states.items():
        assert profile_mismatches(render(state, params), expected[user]) == [], user


def test_fold_equals_reference_for_shuffled_and_duplicated_streams() -> None:
    raw = make_signals(seed=3, users=12, n=600)
    for seed in (1, 2, 3):
        messy = disorder(raw, seed=seed, duplicate_fraction=0.3)
        assert len(messy) > len(raw)
        _check_against_reference(_fold_all(messy), raw, PARAMS)


def test_arrival_order_does_not_change_the_state_beyond_rounding() -> None:
    raw = on_own_partitions(make_signals(seed=5, users=1, n=200))
    in_time_order = sorted(raw, key=lambda s: s["ts"])
    reversed_order = list(reversed(in_time_order))
    a = render(_fold_all(in_time_order)["u000000"], PARAMS)
    b = render(_fold_all(reversed_order)["u000000"], PARAMS)
    for tag, score in a["interests"].items():
        assert b["interests"][tag] == pytest.approx(score, rel=1e-12)
    assert (a["orders"], a["recent_products"], a["version"]) == (
        b["orders"],
        b["recent_products"],
        b["version"],
    )


def test_late_event_is_decayed_from_its_own_time() -> None:
    day = 86_400_000
    t0 = 1_780_000_000_000
    base = make_signals(seed=1, users=1, n=1)[0]
    now = {**base, "event_id": "new", "ts": t0 + 10 * day, "weight": 1.0, "tags": {"图书": 1.0}}
    late = {**base, "event_id": "old", "ts": t0 + 3 * day, "weight": 4.0, "tags": {"图书": 1.0}}
    pair = on_own_partitions([now, late])
    profile = render(_fold_all(pair)["u000000"], PARAMS)
    assert profile["as_of"] == t0 + 10 * day
    assert profile["interests"]["图书"] == pytest.approx(1.0 + 4.0 * 2 ** (-7 / 7), rel=1e-12)
    later = render(_fold_all(pair)["u000000"], PARAMS, as_of=t0 + 17 * day)
    assert later["interests"]["图书"] == pytest.approx(profile["interests"]["图书"] / 2, rel=1e-12)


def test_as_of_before_the_latest_signal_is_refused() -> None:
    state = _fold_all(make_signals(seed=2, users=1, n=3))["u000000"]
    assert state.as_of is not None
    with pytest.raises(ValueError, match="before the profile's latest signal"):
        render(state, PARAMS, as_of=state.as_of - 1)


def test_a_replay_is_ignored_however_late_it_comes() -> None:
    """The 512-event window once let a late replay through (a user's 232 orders became 432)."""
    params = FoldParams(dedup_window=3)
    raw = make_signals(seed=4, users=1, n=50)
    state = ProfileState(user_id="u000000")
    signals = [Signal.from_json(s) for s in raw]
    for signal in signals:
        assert apply_signal(state, signal, params)
    assert len(state.seen) == 3
    for signal in signals:  # everything again, long after the event_id window forgot it
        assert not apply_signal(state, signal, params)
    assert state.version == 50


def test_a_replay_is_recognised_after_the_row_went_through_the_changelog() -> None:
    raw = make_signals(seed=4, users=1, n=20)
    state = _fold_all(raw)["u000000"]
    restored = ProfileState.from_row(json.loads(json.dumps(state.to_row())))
    assert not any(apply_signal(restored, Signal.from_json(s), PARAMS) for s in raw)
    assert restored.version == 20


def test_a_repeated_event_id_at_a_new_offset_is_ignored_inside_the_window() -> None:
    """A shop that sends one event twice makes two input records: the event_id window catches it."""
    params = FoldParams(dedup_window=3)
    first, other = make_signals(seed=4, users=1, n=2)
    again = {**first, "source": {**first["source"], "offset": 10_000}}
    state = ProfileState(user_id="u000000")
    assert apply_signal(state, Signal.from_json(first), params)
    assert not apply_signal(state, Signal.from_json(again), params)
    assert apply_signal(state, Signal.from_json(other), params)
    assert state.version == 2


def test_offset_marks_are_kept_per_input_partition() -> None:
    base = make_signals(seed=4, users=1, n=1)[0]
    a = {**base, "event_id": "a", "source": {"topic": "clicks", "partition": 1, "offset": 500}}
    b = {**base, "event_id": "b", "source": {"topic": "clicks", "partition": 2, "offset": 7}}
    c = {**base, "event_id": "c", "source": {"topic": "orders", "partition": 1, "offset": 8}}
    state = _fold_all([a, b, c])["u000000"]
    assert state.applied == {"clicks:1": 500, "clicks:2": 7, "orders:1": 8}
    assert state.version == 3


def test_row_round_trips_through_json_and_continues_the_fold() -> None:
    raw = make_signals(seed=8, users=1, n=80)
    half = len(raw) // 2
    state = _fold_all(raw[:half])["u000000"]
    restored = ProfileState.from_row(json.loads(json.dumps(state.to_row())))
    for item in raw[half:]:
        apply_signal(restored, Signal.from_json(item), PARAMS, now_ms=0)
    whole = fold((Signal.from_json(s) for s in raw), "u000000", PARAMS)
    assert render(restored, PARAMS) == render(whole, PARAMS)


def test_recent_products_keeps_the_latest_distinct_products_whatever_the_order() -> None:
    raw = on_own_partitions(make_signals(seed=11, users=1, n=150))
    params = FoldParams(recent_products=4)
    expected = None
    for seed in range(5):
        order = list(raw)
        random.Random(seed).shuffle(order)
        got = render(_fold_all(order, params)["u000000"], params)["recent_products"]
        assert len(got) == 4
        assert len({p["product_id"] for p in got}) == 4
        assert expected is None or got == expected
        expected = got
    ref = reference_profiles(raw, 7.0, 5, 4)["u000000"]["recent_products"]
    assert expected == ref


def test_order_totals_are_exact_per_currency() -> None:
    base = make_signals(seed=1, users=1, n=1)[0]
    amounts = ["0.10", "0.20", "2999.00", "1.05"]
    raw = [
        {**base, "event_id": f"o{i}", "kind": "order", "action": "order", "amount": a, "currency": "CNY"}
        for i, a in enumerate(amounts)
    ]
    raw.append({**base, "event_id": "usd", "kind": "order", "action": "order", "amount": "5", "currency": "USD"})
    orders = render(_fold_all(on_own_partitions(raw))["u000000"], PARAMS)["orders"]
    assert orders["count"] == 5
    assert orders["totals"] == {"CNY": "3000.35", "USD": "5"}
    assert orders["average_order_value"] == {"CNY": "750.09", "USD": "5"}


def test_average_rounds_half_even_to_the_totals_precision() -> None:
    assert average(Decimal("0.10"), 4) == Decimal("0.02")  # 0.025 -> 0.02
    assert average(Decimal("0.30"), 4) == Decimal("0.08")  # 0.075 -> 0.08
    assert average(Decimal("10"), 3) == Decimal("3")


def test_sentiment_is_counted_per_dominant_tag_and_per_aspect() -> None:
    base = make_signals(seed=1, users=1, n=1)[0]
    review = {
        **base,
        "kind": "review",
        "action": "review",
        "tags": {"数码": 0.7, "图书": 0.3},
        "sentiment": {"label": "negative", "probability": 0.8},
        "aspects": {"物流": "positive", "质量": "negative"},
    }
    raw = [
        {**review, "event_id": "r1"},
        {**review, "event_id": "r2", "sentiment": {"label": "positive", "probability": 0.6}, "aspects": {}},
    ]
    sentiment = render(_fold_all(on_own_partitions(raw))["u000000"], PARAMS)["sentiment"]
    assert sentiment["overall"] == {"positive": 1, "negative": 1, "reviews": 2, "mean_probability": 0.7}
    assert set(sentiment["by_tag"]) == {"数码"}
    assert sentiment["by_aspect"]["物流"] == {
        "positive": 1,
        "negative": 0,
        "reviews": 1,
        "mean_probability": 0.8,
    }


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"event_id": None}, "missing_field"),
        ({"ts": "yesterday"}, "wrong_type"),
        ({"weight": -1}, "bad_value"),
        ({"tags": {"数码": float("nan")}}, "bad_value"),
        ({"amount": "12.3x", "currency": "CNY"}, "bad_value"),
        ({"amount": "12.30", "currency": None}, "missing_field"),
        ({"sentiment": {"label": "positive", "probability": 1.5}}, "bad_value"),
        # values that crashed the fold or poisoned a profile before they were bounded (fuzzing, 2026-11-30)
        ({"tags": {"数码": 1e308}}, "bad_value"),  # the decayed score overflowed to inf: not JSON
        ({"amount": -1e308, "currency": "CNY"}, "bad_value"),  # Decimal arithmetic raised InvalidOperation
        ({"amount": "1e13", "currency": "CNY"}, "bad_value"),
        ({"weight": 1e300}, "bad_value"),
        ({"ts": 10**30}, "bad_value"),
        ({"tags": {f"t{i}": 0.01 for i in range(65)}}, "bad_value"),
        # the edges found by the red team: each crashed the agent, skipped silently, or bloated a profile
        ({"weight": 10**400}, "bad_value"),  # OverflowError
        ({"ts": 0}, "bad_value"),
        ({"sentiment": {"label": "😀", "probability": 0.9}}, "bad_value"),
        ({"aspects": {"物流": "great"}}, "bad_value"),
        ({"tags": {"t" * 2000: 1.0}}, "bad_value"),
        ({"product_ids": [f"p{i}" for i in range(20_000)]}, "bad_value"),
        ({"product_ids": ["p" * 200]}, "bad_value"),
        ({"user_id": "u" * 200}, "bad_value"),
        ({"action": "x" * 2000}, "bad_value"),
        ({"kind": "poke"}, "bad_value"),
        ({"amount": "1E-999999999", "currency": "CNY"}, "bad_value"),
        ({"amount": "12.30", "currency": "ＣＮＹ"}, "bad_value"),
        ({"source": None}, "missing_field"),
        ({"source": {"topic": "clicks", "partition": -1, "offset": 3}}, "bad_value"),
        ({"source": {"topic": "clicks", "partition": 0, "offset": "3"}}, "bad_value"),
        # every other way a field can be wrong, so that each check is proven to run
        ({"event_id": ""}, "wrong_type"),
        ({"user_id": 5}, "wrong_type"),
        ({"ts": True}, "wrong_type"),
        ({"ts": 946_684_799_999}, "bad_value"),
        ({"kind": None}, "missing_field"),
        ({"weight": "1"}, "wrong_type"),
        ({"weight": True}, "wrong_type"),
        ({"tags": ["数码"]}, "wrong_type"),
        ({"tags": {"": 1.0}}, "bad_value"),
        ({"tags": {"数码": -0.1}}, "bad_value"),
        ({"tags": {"数码": 1.01}}, "bad_value"),
        ({"product_ids": "p1"}, "wrong_type"),
        ({"product_ids": [1]}, "wrong_type"),
        ({"product_ids": [""]}, "bad_value"),
        ({"product_ids": [], "product_id": 5}, "wrong_type"),
        ({"sentiment": "positive"}, "wrong_type"),
        ({"sentiment": {"probability": 0.5}}, "missing_field"),
        ({"sentiment": {"label": "positive", "probability": -0.01}}, "bad_value"),
        ({"aspects": ["物流"]}, "wrong_type"),
        ({"aspects": {f"a{i}": "positive" for i in range(33)}}, "bad_value"),
        ({"aspects": {"": "positive"}}, "bad_value"),
        ({"aspects": {"a" * 65: "positive"}}, "bad_value"),
        ({"amount": "-0.01", "currency": "CNY"}, "bad_value"),
        ({"amount": "1000000000000.0001", "currency": "CNY"}, "bad_value"),
        ({"amount": "1", "currency": "CN"}, "bad_value"),
        ({"amount": "1", "currency": 156}, "bad_value"),
        ({"source": "clicks:0"}, "wrong_type"),
        ({"source": {"topic": "", "partition": 0, "offset": 3}}, "bad_value"),
        ({"source": {"topic": "t" * 250, "partition": 0, "offset": 3}}, "bad_value"),
        ({"source": {"topic": 5, "partition": 0, "offset": 3}}, "bad_value"),
        ({"source": {"topic": "clicks", "partition": True, "offset": 3}}, "bad_value"),
        ({"source": {"topic": "clicks", "partition": 0, "offset": 2**63}}, "bad_value"),
    ],
)
def test_bad_signals_are_refused_with_a_reason(patch: dict, reason: str) -> None:
    raw = {**make_signals(seed=1, users=1, n=1)[0], **patch}
    with pytest.raises(SignalError) as info:
        Signal.from_json(raw)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "patch",
    [
        {"tags": {"数码": 0.0, "图书": 1.0}},
        {"ts": 946_684_800_000},
        {"ts": 253_402_300_799_999},
        {"weight": 0},
        {"weight": 1000},
        {"sentiment": {"label": "negative", "probability": 0.0}},
        {"sentiment": {"label": "positive", "probability": 1.0}},
        {"aspects": {f"a{i}": "positive" for i in range(32)}},
        {"aspects": {"a" * 64: "negative"}},
        {"tags": {"t" * 64: 1.0}},
        {"amount": "0", "currency": "CNY"},
        {"amount": "1000000000000", "currency": "CNY"},
        {"amount": "0.0001", "currency": "USD"},
        {"product_ids": ["p" * 128] * 1000},
        {"source": {"topic": "t" * 249, "partition": 0, "offset": 2**63 - 1}},
        {"source": {"topic": "t", "partition": 0, "offset": 0}},
    ],
)
def test_signals_at_the_edge_of_every_bound_are_accepted(patch: dict) -> None:
    raw = {**make_signals(seed=1, users=1, n=1)[0], **patch}
    signal = Signal.from_json(raw)
    assert signal.event_id == raw["event_id"] and signal.user_id == raw["user_id"] and signal.ts == raw["ts"]
    assert signal.kind == raw["kind"] and signal.action == raw["action"]
    assert signal.source == RecordCoordinates(**raw["source"])


def test_a_row_round_trips_whole_and_a_small_window_still_stops_every_replay() -> None:
    params = FoldParams(dedup_window=2)
    raw = make_signals(seed=9, users=1, n=30)
    state = ProfileState(user_id="u000000")
    for item in raw:
        apply_signal(state, Signal.from_json(item), params, now_ms=123)
    state.partition = 4
    restored = ProfileState.from_row(json.loads(json.dumps(state.to_row())))
    assert restored == state
    assert not any(apply_signal(restored, Signal.from_json(item), params) for item in raw)  # the marks did it


def test_a_row_written_before_exact_deduplication_still_loads() -> None:
    state = _fold_all(make_signals(seed=9, users=1, n=3))["u000000"]
    row = json.loads(json.dumps(state.to_row()))
    del row["applied"], row["updated_at"], row["partition"]
    old = ProfileState.from_row(row)
    assert (old.applied, old.updated_at, old.partition) == ({}, None, None)


def test_dominant_tag_ignores_zero_weights_and_breaks_ties_by_name() -> None:
    from shoppulse.consumers.profiles.profile import dominant_tag, event_digest

    assert dominant_tag({"数码": 0.0}) is None
    assert dominant_tag({"b": 0.5, "a": 0.5, "c": 0.0}) == "a"
    signal = Signal.from_json(make_signals(seed=1, users=1, n=1)[0])
    assert len(event_digest(signal)) == 16  # 64 bits: what bounds the row's size
