"""The fold against the reference formulas: order, duplicates, late events, the dedup window."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from consumers.profiles.profile import (
    FoldParams,
    ProfileState,
    Signal,
    SignalError,
    apply_signal,
    average,
    fold,
    render,
)
from tests.unit.consumers.profiles.streams import (
    disorder,
    make_signals,
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
    raw = make_signals(seed=5, users=1, n=200)
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
    base = make_signals(seed=1, users=1, n=1)[0]
    now = {**base, "event_id": "new", "ts": 10 * day, "weight": 1.0, "tags": {"图书": 1.0}}
    late = {**base, "event_id": "old", "ts": 3 * day, "weight": 4.0, "tags": {"图书": 1.0}}
    profile = render(_fold_all([now, late])["u000000"], PARAMS)
    assert profile["as_of"] == 10 * day
    assert profile["interests"]["图书"] == pytest.approx(1.0 + 4.0 * 2 ** (-7 / 7), rel=1e-12)
    later = render(_fold_all([now, late])["u000000"], PARAMS, as_of=17 * day)
    assert later["interests"]["图书"] == pytest.approx(profile["interests"]["图书"] / 2, rel=1e-12)


def test_as_of_before_the_latest_signal_is_refused() -> None:
    state = _fold_all(make_signals(seed=2, users=1, n=3))["u000000"]
    assert state.as_of is not None
    with pytest.raises(ValueError, match="before the profile's latest signal"):
        render(state, PARAMS, as_of=state.as_of - 1)


def test_duplicate_is_ignored_inside_the_window_and_reapplied_beyond_it() -> None:
    params = FoldParams(dedup_window=3)
    raw = make_signals(seed=4, users=1, n=5)
    state = ProfileState(user_id="u000000")
    signals = [Signal.from_json(s) for s in raw]
    for signal in signals[:3]:
        assert apply_signal(state, signal, params)
    assert not apply_signal(state, signals[0], params)  # still remembered
    assert state.version == 3
    assert apply_signal(state, signals[3], params)  # pushes signals[0] out of the window
    assert state.seen == [s.event_id for s in signals[1:4]]
    assert apply_signal(state, signals[0], params)  # older than the window: applied again (documented)
    assert state.version == 5


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
    raw = make_signals(seed=11, users=1, n=150)
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
    orders = render(_fold_all(raw)["u000000"], PARAMS)["orders"]
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
    sentiment = render(_fold_all(raw)["u000000"], PARAMS)["sentiment"]
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
    ],
)
def test_bad_signals_are_refused_with_a_reason(patch: dict, reason: str) -> None:
    raw = {**make_signals(seed=1, users=1, n=1)[0], **patch}
    with pytest.raises(SignalError) as info:
        Signal.from_json(raw)
    assert info.value.reason == reason
