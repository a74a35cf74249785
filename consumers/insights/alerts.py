"""Alerts a person would act on: a negative-review spike and an aspect complaint surge.

Why Wilson bounds rather than a raw ratio: two negative reviews out of two is a share of 1.0
and means nothing. A condition holds only when the *lower* Wilson bound of the current
window's share lies above the *upper* bound of the same row's trailing baseline (the
``baseline_windows`` windows before it), both at ``z``, and the window has at least
``min_reviews`` reviews (``min_complaints`` negative mentions of the aspect for a surge).
The condition is checked after every batch of facts that brought a review to an open window
(up to ~50 ms of input: an alert should come while the burst is on, not an hour later), and
many looks at one window inflate the false alarms of a test; hence the default z = 3.29
(one-sided 0.05% per look, a bound that holds for one look per review, the most there can be)
and two non-overlapping intervals, stricter still than a two-proportion z-test at that level.
A steady stream with the same average share stays quiet
(``tests/unit/consumers/insights/test_alerts.py`` folds 48 hours).

An alert's id names its condition, row and window, so it is raised once per condition and
window, and not again for the windows right after while the condition holds (one incident, one
alert; it is raised anew after a window without it). The row records the ids it raised, in the
same changelog write as the figures, and ``alerts`` is compacted on that id, so a replay after
a crash that re-sends one leaves one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shoppulse.consumers.insights.window import (
    InsightState,
    WindowParams,
    empty_window,
    figures,
    identity,
    top_complaints,
)

ALERT_SCHEMA_VERSION = 1
NEGATIVE_SPIKE = "negative_spike"
ASPECT_SURGE = "aspect_surge"
MAX_ALERTED = 512


@dataclass(frozen=True)
class AlertParams:
    z: float = 3.29  # one-sided 0.05%: the condition is looked at after every batch with a review of the window
    min_reviews: int = 20
    min_complaints: int = 5
    baseline_windows: int = 24
    min_baseline_reviews: int = 30
    min_products: int = 3  # a category-wide surge: complaints about at least this many products

    @classmethod
    def from_settings(cls, insights: Any) -> AlertParams:
        return cls(
            z=insights.alert_z,
            min_reviews=insights.alert_min_reviews,
            min_complaints=insights.alert_min_complaints,
            baseline_windows=insights.alert_baseline_windows,
            min_baseline_reviews=insights.alert_min_baseline_reviews,
            min_products=insights.alert_min_products,
        )


def wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial share; (0, 1) with no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Baseline:
    """What an alert compares to: the trailing windows' reviews and negatives (overall and per aspect)."""

    reviews: int
    negative: int
    aspect_negative: dict[str, int]


def baseline(state: InsightState, start: int, params: WindowParams, alert: AlertParams) -> Baseline:
    """The trailing windows before ``start``, summed: only the counts a test needs (this runs per review)."""
    begin = start - alert.baseline_windows * params.window_ms
    reviews = negative = 0
    aspect_negative: dict[str, int] = {}
    for s, w in state.windows.items():
        if begin <= s < start:
            reviews += w["reviews"]
            negative += w["negative"]
            for aspect, (_, neg) in w["aspects"].items():
                aspect_negative[aspect] = aspect_negative.get(aspect, 0) + neg
    return Baseline(reviews, negative, aspect_negative)


def detect(state: InsightState, start: int, params: WindowParams, alert: AlertParams) -> list[dict[str, Any]]:
    """New alerts for window ``start`` of this row (those not raised before), recorded in the row."""
    window = state.windows.get(start, empty_window())
    if window["reviews"] < alert.min_reviews:
        return []
    base = baseline(state, start, params, alert)
    if base.reviews < alert.min_baseline_reviews:
        return []
    holding: list[tuple[str, str | None, float, float]] = []  # kind, aspect, lower bound, baseline's upper
    category = state.key.startswith("c:")
    low, _ = wilson(window["negative"], window["reviews"], alert.z)
    _, base_high = wilson(base.negative, base.reviews, alert.z)
    if low > base_high and not category:
        holding.append((NEGATIVE_SPIKE, None, low, base_high))
    for aspect, (_, neg) in sorted(window["aspects"].items()):
        if neg < alert.min_complaints or (category and not _category_wide(window, aspect, neg, alert)):
            continue
        low, _ = wilson(neg, window["reviews"], alert.z)
        _, base_high = wilson(base.aspect_negative.get(aspect, 0), base.reviews, alert.z)
        if low > base_high:
            holding.append((ASPECT_SURGE, aspect, low, base_high))
    new = [c for c in holding if alert_id(c[0], state.key, c[1], start) not in state.alerted]
    state.alerted.extend(alert_id(kind, state.key, aspect, start) for kind, aspect, _, _ in new)
    del state.alerted[:-MAX_ALERTED]
    # An incident that goes on into the next window was already announced: it is recorded (so the
    # chain continues) but not raised again. After a window without it, it is raised anew.
    previous = start - params.window_ms
    return [
        _alert(state, start, kind, aspect, window, base, low, base_high, params)
        for kind, aspect, low, base_high in new
        if alert_id(kind, state.key, aspect, previous) not in state.alerted
    ]


def _category_wide(window: dict[str, Any], aspect: str, complaints: int, alert: AlertParams) -> bool:
    """Complaints about several products, none of them half: a category problem, not one product's."""
    by_product = window.get("complainers", {}).get(aspect, {})
    return len(by_product) >= alert.min_products and max(by_product.values()) * 2 <= complaints


def alert_id(kind: str, key: str, aspect: str | None, start: int) -> str:
    return f"{kind}/{key}/{aspect or '-'}/{start}"


def _alert(
    state: InsightState,
    start: int,
    kind: str,
    aspect: str | None,
    window: dict[str, Any],
    base: Baseline,
    low: float,
    base_high: float,
    params: WindowParams,
) -> dict[str, Any]:
    now = figures(window)
    if aspect is None:
        observed = {"reviews": window["reviews"], "negative": window["negative"], "share": now["negative_share"]}
        before = {"reviews": base.reviews, "negative": base.negative}
    else:
        neg = window["aspects"][aspect][1]
        observed = {"reviews": window["reviews"], "negative": neg, "share": round(neg / window["reviews"], 6)}
        before = {"reviews": base.reviews, "negative": base.aspect_negative.get(aspect, 0)}
    before["share"] = round(before["negative"] / before["reviews"], 6) if before["reviews"] else None
    observed["lower_bound"] = round(low, 6)
    before["upper_bound"] = round(base_high, 6)
    record: dict[str, Any] = {
        "schema_version": ALERT_SCHEMA_VERSION,
        "alert_id": alert_id(kind, state.key, aspect, start),
        "kind": kind,
        **identity(state.key),
        "aspect": aspect,
        "window": {"start": start, "end": start + params.window_ms},
        "observed": observed,
        "baseline": before,
        "top_complaint_aspects": top_complaints(window),
        "negative_keywords": [k["keyword"] for k in now["negative_keywords"]],
        "examples": now["negative_examples"],
        "products": _top_products(window, aspect),
        "raised_at": state.watermark,
    }
    return record


def _top_products(window: dict[str, Any], aspect: str | None, k: int = 5) -> list[str]:
    """On a category alert, the products with the most complaints about the aspect (empty otherwise)."""
    by_product = window.get("complainers", {}).get(aspect or "", {})
    return [p for p, _ in sorted(by_product.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
