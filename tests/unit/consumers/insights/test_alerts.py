"""Alerts: a real spike fires once per window, noise and small numbers never do."""

from __future__ import annotations

import random

import pytest

from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.insights.alerts import ASPECT_SURGE, NEGATIVE_SPIKE, AlertParams, detect, wilson
from shoppulse.consumers.insights.window import Fact, InsightState, WindowParams, apply_fact

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR
PARAMS = WindowParams()
ALERTS = AlertParams()


def _review(i: int, ts: int, negative: bool, aspect: str | None = None) -> Fact:
    aspects = {aspect: "negative" if negative else "positive"} if aspect else {}
    return Fact(
        key="p:p1",
        kind="review",
        ts=ts,
        event_id=f"r{i}",
        source=RecordCoordinates("r", 0, i),
        negative=negative,
        aspects=aspects,
        keywords=("慢",) if negative else (),
    )


def _stream(
    state: InsightState, hours: int, per_hour: int, share: float, rng: random.Random, start: int = 0
) -> list[dict]:
    raised = []
    offset = max((m[0] for m in state.applied.values()), default=-1) + 1
    for h in range(start, start + hours):
        for j in range(per_hour):
            fact = _review(offset, T0 + h * HOUR + j * (HOUR // per_hour), rng.random() < share, "物流")
            offset += 1
            apply_fact(state, fact, PARAMS)
            raised += detect(state, PARAMS.start_of(fact.ts), PARAMS, ALERTS)
    return raised


def test_wilson_bounds_are_wide_for_few_trials_and_narrow_for_many() -> None:
    low2, high2 = wilson(2, 2, 1.96)
    low200, high200 = wilson(200, 400, 1.96)
    assert low2 < 0.35 and high2 == 1.0
    assert 0.45 < low200 < 0.5 < high200 < 0.55
    assert wilson(0, 0, 1.96) == (0.0, 1.0)


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
def test_a_steady_stream_raises_nothing(share: float) -> None:
    for seed in range(5):  # 5 × 48 windows, checked after every review
        rng = random.Random(seed)
        assert _stream(InsightState(key="p:p1"), hours=48, per_hour=30, share=share, rng=rng) == []


def test_a_burst_of_logistics_complaints_raises_one_spike_and_one_surge() -> None:
    rng = random.Random(2)
    state = InsightState(key="p:p1")
    assert _stream(state, hours=24, per_hour=20, share=0.15, rng=rng) == []
    raised = _stream(state, hours=1, per_hour=40, share=0.9, rng=rng, start=24)
    kinds = sorted((a["kind"], a["aspect"]) for a in raised)
    assert kinds == [(ASPECT_SURGE, "物流"), (NEGATIVE_SPIKE, None)]
    spike = next(a for a in raised if a["kind"] == NEGATIVE_SPIKE)
    assert spike["product_id"] == "p1" and spike["window"]["start"] == T0 + 24 * HOUR
    assert spike["observed"]["lower_bound"] > spike["baseline"]["upper_bound"]
    assert spike["top_complaint_aspects"] == ["物流"] and spike["negative_keywords"] == ["慢"]
    assert 0 < len(spike["examples"]) <= 5
    assert spike["alert_id"] in state.alerted


def test_two_negative_reviews_page_nobody() -> None:
    rng = random.Random(3)
    state = InsightState(key="p:p1")
    _stream(state, hours=24, per_hour=5, share=0.1, rng=rng)
    raised = []
    for i in range(2):
        fact = _review(10_000 + i, T0 + 24 * HOUR + i, True)
        apply_fact(state, fact, PARAMS)
        raised += detect(state, T0 + 24 * HOUR, PARAMS, ALERTS)
    assert raised == []


def test_a_new_product_without_a_baseline_raises_nothing() -> None:
    rng = random.Random(4)
    assert _stream(InsightState(key="p:p1"), hours=1, per_hour=50, share=1.0, rng=rng) == []


def test_an_incident_lasting_three_windows_is_announced_once_and_again_after_a_quiet_window() -> None:
    rng = random.Random(6)
    state = InsightState(key="p:p1")
    _stream(state, hours=24, per_hour=20, share=0.1, rng=rng)
    raised = _stream(state, hours=3, per_hour=40, share=0.95, rng=rng, start=24)
    assert sorted(a["kind"] for a in raised) == [ASPECT_SURGE, NEGATIVE_SPIKE]
    assert {a["window"]["start"] for a in raised} == {T0 + 24 * HOUR}
    assert _stream(state, hours=1, per_hour=40, share=0.1, rng=rng, start=27) == []
    again = _stream(state, hours=1, per_hour=40, share=0.95, rng=rng, start=28)
    assert {a["window"]["start"] for a in again} == {T0 + 28 * HOUR} and len(again) == 2


def _category_stream(
    state: InsightState, hour: int, per_hour: int, share: float, products: list[str], rng: random.Random
) -> list[dict]:
    raised = []
    offset = max((m[0] for m in state.applied.values()), default=-1) + 1
    for j in range(per_hour):
        negative = rng.random() < share
        fact = Fact(
            key="c:手机",
            kind="review",
            ts=T0 + hour * HOUR + j * (HOUR // per_hour),
            event_id=f"r{offset}",
            source=RecordCoordinates("r", 0, offset),
            negative=negative,
            aspects={"物流": "negative" if negative else "positive"},
            product_id=rng.choice(products),
        )
        offset += 1
        apply_fact(state, fact, PARAMS)
        raised += detect(state, PARAMS.start_of(fact.ts), PARAMS, ALERTS)
    return raised


def test_a_category_surges_only_when_its_complaints_span_several_products() -> None:
    rng = random.Random(8)
    many = [f"p{i}" for i in range(10)]
    spread = InsightState(key="c:手机")
    for h in range(24):
        assert _category_stream(spread, h, 20, 0.1, many, rng) == []
    raised = _category_stream(spread, 24, 40, 0.9, many, rng)  # a shipping failure across the category
    assert [(a["kind"], a["scope"], a["category"], a["aspect"]) for a in raised] == [
        (ASPECT_SURGE, "category", "手机", "物流")
    ]
    assert len(raised[0]["products"]) == 5
    one = InsightState(key="c:手机")
    for h in range(24):
        _category_stream(one, h, 20, 0.1, many, rng)
    assert _category_stream(one, 24, 40, 0.9, ["p3"], rng) == []  # one product's incident: its own alert
