"""A profile is bounded by construction: the largest one any signals can build fits a Kafka record.

A profile once grew without bound (every catalog category became a tag) until its publish failed
with MessageSizeTooLargeError and the worker stopped; one signal with 20,000 product ids stopped it
for 30 s (a scan per product dropped).
"""

from __future__ import annotations

import json
import time

from shoppulse.consumers.contracts import dumps
from shoppulse.consumers.profiles.profile import (
    MAX_CURRENCIES,
    MAX_INPUT_PARTITIONS,
    FoldParams,
    ProfileState,
    apply_signal,
    render,
)
from shoppulse.consumers.records import MAX_ASPECTS, MAX_TAG_CHARS, MAX_TAGS, Signal, SignalError
from shoppulse.consumers.settings import ProfileSettings

BROKER_DEFAULT_LIMIT = 1_048_588  # message.max.bytes
T0 = 1_780_000_000_000


def _widest_params() -> FoldParams:
    """Every knob at the largest value the settings allow."""
    fields = ProfileSettings.model_fields

    def top(name: str) -> int:
        return next(m.le for m in fields[name].metadata if getattr(m, "le", None) is not None)

    return FoldParams(
        top_k=top("top_k"),
        recent_products=top("recent_products"),
        dedup_window=top("dedup_window"),
        max_interests=top("max_interests"),
        interest_floor=0.0,
    )


def _signal(i: int, partition: int, **extra: object) -> Signal:
    name = "兴" * (MAX_TAG_CHARS - 8)
    data = {
        "event_id": f"{i:08d}".rjust(128, "事"),
        "user_id": "用" * 128,
        "ts": T0 + i,
        "kind": "review",
        "action": "review",
        "weight": 1.0,
        "tags": {f"{name}{i:04d}{j:04d}": 1 / MAX_TAGS for j in range(MAX_TAGS)},
        "product_ids": [f"{i:06d}{j:04d}".ljust(128, "品") for j in range(1000 if i < 2 else 1)],
        "sentiment": {"label": "negative", "probability": 0.9},
        "aspects": {f"{'面' * (MAX_TAG_CHARS - 8)}{i:04d}{j:04d}": "negative" for j in range(MAX_ASPECTS)},
        "source": {"topic": "t" * 249, "partition": partition, "offset": i},
        **extra,
    }
    return Signal.from_json(data)


def test_the_largest_profile_and_row_fit_a_kafka_record() -> None:
    params = _widest_params()
    state = ProfileState(user_id="用" * 128)
    for i in range(params.dedup_window):
        currency = f"C{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}"
        signal = _signal(i, i % MAX_INPUT_PARTITIONS, amount="999999999999.9999", currency=currency)
        assert apply_signal(state, signal, params, now_ms=T0)
    assert len(state.interests) == params.max_interests
    assert len(state.recent) == params.recent_products
    assert len(state.seen) == params.dedup_window
    assert len(state.orders["totals"]) == MAX_CURRENCIES
    row = json.dumps(state.to_row()).encode()  # ASCII-escaped, as faust's JSON codec writes the changelog
    profile = dumps(render(state, params))
    assert len(row) < BROKER_DEFAULT_LIMIT * 0.9, len(row)
    assert len(profile) < BROKER_DEFAULT_LIMIT * 0.9, len(profile)
    try:
        apply_signal(state, _signal(10**6, MAX_INPUT_PARTITIONS + 1), params)
    except SignalError as err:
        assert err.reason == "bad_value"
    else:
        raise AssertionError("a signal from one input partition too many was applied")


def test_interests_are_pruned_to_the_strongest_and_forget_what_decayed_away() -> None:
    params = FoldParams(max_interests=3, interest_floor=0.01, half_life_days=1.0)
    state = ProfileState(user_id="u")
    base = {"event_id": "e", "user_id": "u", "kind": "click", "action": "view", "weight": 1.0}
    for i, (tag, weight) in enumerate([("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4)]):
        source = {"topic": "c", "partition": 0, "offset": i}
        signal = {**base, "event_id": f"e{i}", "ts": T0, "tags": {tag: weight}, "source": source}
        apply_signal(state, Signal.from_json(signal), params)
    assert set(state.interests) == {"b", "c", "d"}  # the weakest went
    source = {"topic": "c", "partition": 0, "offset": 9}
    later = {**base, "event_id": "late", "ts": T0 + 10 * 86_400_000, "tags": {"e": 1.0}, "source": source}
    apply_signal(state, Signal.from_json(later), params)
    assert set(state.interests) == {"e"}  # 10 half-lives later the others are below 0.01


def test_many_product_ids_cost_about_linear_time() -> None:
    """A ratio on one machine, not a time budget: 10x the ids must cost far less than 100x."""
    params = FoldParams(recent_products=20)

    def cost(n: int) -> float:
        best = float("inf")
        for attempt in range(3):
            state = ProfileState(user_id="u")
            data = {
                "event_id": f"e{attempt}", "user_id": "u", "ts": T0, "kind": "order", "action": "order", "weight": 6.0,
                "product_ids": [f"p{i}" for i in range(n)], "source": {"topic": "o", "partition": 0, "offset": 1},
            }
            signal = Signal.from_json(data)
            started = time.perf_counter()
            apply_signal(state, signal, params)
            best = min(best, time.perf_counter() - started)
        return best

    assert cost(1000) / max(cost(100), 1e-6) < 40
