"""docs/events.md: every contract has a JSON example, and each example is what the code reads or writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shoppulse.consumers.contracts import parse_event
from shoppulse.consumers.profiles.profile import FoldParams, ProfileState, apply_signal, render
from shoppulse.consumers.records import Signal

EVENTS_MD = Path(__file__).resolve().parents[3] / "docs" / "events.md"
TOPICS = (
    "reviews",
    "clicks",
    "orders",
    "review-insights",
    "user-signals",
    "dead-letter",
    "user-profiles",
    "product-insights",
    "alerts",
)


def _examples() -> dict[str, dict]:
    """The first JSON block under each ``### `topic``` heading."""
    text = EVENTS_MD.read_text(encoding="utf-8")
    sections = re.split(r"^### `([a-z-]+)`.*$", text, flags=re.M)
    found: dict[str, dict] = {}
    for topic, body in zip(sections[1::2], sections[2::2], strict=True):
        block = re.search(r"```json\n(.*?)\n```", body, re.S)
        assert block, f"docs/events.md: `{topic}` has no JSON example"
        found[topic] = json.loads(block.group(1))
    return found


def test_every_contract_has_a_parsable_example() -> None:
    assert set(_examples()) == set(TOPICS)


@pytest.mark.parametrize("topic", ["reviews", "clicks", "orders"])
def test_input_examples_are_valid_events(topic: str) -> None:
    raw = json.dumps(_examples()[topic], ensure_ascii=False).encode("utf-8")
    event = parse_event(topic.rstrip("s"), raw, now=1_780_000_000_000)  # type: ignore[arg-type]
    assert event.event_id == _examples()[topic]["event_id"]


def test_the_user_signals_example_is_a_signal_the_profiles_stage_reads() -> None:
    signal = Signal.from_json(_examples()["user-signals"])
    assert signal.event_id == "c-7-00000018"


def test_the_user_profiles_example_has_the_fields_the_stage_renders() -> None:
    params = FoldParams(half_life_days=7.0, top_k=3, recent_products=5)
    state = ProfileState(user_id="u000002")
    assert apply_signal(state, Signal.from_json(_examples()["user-signals"]), params)
    rendered, documented = render(state, params), _examples()["user-profiles"]

    assert set(rendered) == set(documented)
    assert set(rendered["sentiment"]) == set(documented["sentiment"])
    assert set(rendered["orders"]) == set(documented["orders"])
    assert set(rendered["sentiment"]["overall"]) == set(documented["sentiment"]["overall"])
    assert set(rendered["recent_products"][0]) == set(documented["recent_products"][0])
    assert documented["schema_version"] == rendered["schema_version"]


def test_the_user_profiles_example_has_the_typed_records_fields_in_wire_order() -> None:
    from dataclasses import fields

    from shoppulse.consumers.records import UserProfile

    params = FoldParams(half_life_days=7.0, top_k=3, recent_products=5)
    state = ProfileState(user_id="u000002")
    assert apply_signal(state, Signal.from_json(_examples()["user-signals"]), params)
    documented = _examples()["user-profiles"]
    assert list(documented) == list(render(state, params)) == [f.name for f in fields(UserProfile)]


def test_the_insights_and_alert_examples_have_the_fields_stage_3_writes() -> None:
    import random

    from shoppulse.consumers.coordinates import RecordCoordinates
    from shoppulse.consumers.insights.alerts import AlertParams, detect
    from shoppulse.consumers.insights.window import Fact, InsightState, WindowParams, apply_fact, render_window

    params, state, rng, raised = WindowParams(), InsightState(key="p:p2"), random.Random(0), []
    for i in range(26 * 40):
        ts = 1_790_000_000_000 + i * 90_000
        negative = rng.random() < (0.9 if i >= 25 * 40 else 0.1)
        aspects = {"物流": "negative" if negative else "positive"}
        fact = Fact("p:p2", "review", ts, f"r{i}", RecordCoordinates("r", 0, i), negative=negative, aspects=aspects)
        apply_fact(state, fact, params)
        raised += detect(state, params.start_of(ts), params, AlertParams())
    window = render_window(state, max(state.windows), params)
    assert set(_examples()["product-insights"]) == set(window)
    assert raised and set(_examples()["alerts"]) == set(raised[0])


def _sample_records() -> tuple[Any, Any]:
    """One ``ReviewInsight`` and one ``UserSignal`` as the enricher builds them."""
    from shoppulse.consumers.coordinates import RecordCoordinates
    from shoppulse.consumers.records import AspectVerdict, Interest, ReviewInsight, UserSignal, Verdict

    verdict = Verdict("positive", 0.97, 0.97)
    insight = ReviewInsight(
        event_id="r", user_id="u", product_id=None, order_id=None, rating=None, ts=1, sentiment=verdict,
        interest=Interest("平板", 0.9, {"平板": 0.9}, {"数码": 1.0}), keywords=[],
        aspects=[AspectVerdict("性能", "电池很耐用", verdict)], text_chars=5, clipped=[], model={},
        source=RecordCoordinates("reviews", 0, 42), processed_at=2,
    )  # fmt: skip
    signal = UserSignal(
        kind="click", event_id="c", user_id="u", ts=1, action="view", weight=1.0, tags={}, model={},
        source=RecordCoordinates("clicks", 2, 17),
    )  # fmt: skip
    return insight, signal


def test_the_stage_1_output_examples_have_the_typed_records_fields_in_wire_order() -> None:
    from dataclasses import fields

    from shoppulse.consumers.records import AspectVerdict, Interest, ReviewInsight, UserSignal, Verdict, to_wire

    insight, signal = _examples()["review-insights"], _examples()["user-signals"]
    wire_insight, wire_signal = (to_wire(record) for record in _sample_records())
    assert list(insight) == list(wire_insight)
    assert list(signal) == list(wire_signal)
    assert {f.name for f in fields(ReviewInsight)} == set(wire_insight)  # nothing left off the wire
    assert {f.name for f in fields(UserSignal)} == set(wire_signal)
    assert list(insight["sentiment"]) == [f.name for f in fields(Verdict)]
    assert list(insight["interest"]) == [f.name for f in fields(Interest)]
    assert list(insight["aspects"][0]) == [f.name for f in fields(AspectVerdict)]
    assert list(insight["source"]) == ["topic", "partition", "offset"]


def test_what_the_enricher_writes_has_the_documented_keys() -> None:
    from shoppulse.consumers.records import to_wire

    wire_insight, wire_signal = (to_wire(record) for record in _sample_records())
    assert list(wire_insight) == list(_examples()["review-insights"])
    assert wire_insight["aspects"][0]["sentiment"] == {"label": "positive", "probability": 0.97, "p_positive": 0.97}
    assert list(wire_signal) == list(_examples()["user-signals"])
    assert wire_signal["source"] == _examples()["user-signals"]["source"]
    json.dumps([wire_insight, wire_signal], ensure_ascii=False)  # plain JSON values only


def test_the_dead_letter_example_has_the_typed_envelopes_fields_in_wire_order() -> None:
    from dataclasses import fields

    from shoppulse.consumers.coordinates import RecordCoordinates
    from shoppulse.consumers.deadletter import dead_letter_record
    from shoppulse.consumers.records import DeadLetter

    example = _examples()["dead-letter"]
    written = dead_letter_record(
        stage="profiles", raw=b"{", key=b"u1", source=RecordCoordinates("user-signals", 0, 1), reason="bad_json",
        message="not JSON",
    ).to_wire()  # fmt: skip
    assert list(example) == list(written) == [f.name for f in fields(DeadLetter)]
    assert list(example["source"]) == list(written["source"]) == ["topic", "partition", "offset"]
