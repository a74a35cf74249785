import json
from collections import Counter

import pytest

from shoppulse.consumers.contracts import ContractError, parse_event
from shoppulse.devkit.simulator import Simulator
from shoppulse.models.serving.taxonomy import default_taxonomy

START = 1_780_000_000_000
NOW = START + 365 * 86400 * 1000


def _values(seed: int, n: int, **kw: object) -> list[bytes]:
    return [e.value for e in Simulator(seed=seed, users=100, start_ms=START, **kw).events(n)]  # type: ignore[arg-type]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    assert _values(3, 3000) == _values(3, 3000)
    assert _values(3, 3000) != _values(4, 3000)


def test_every_generated_event_is_valid_and_truth_matches() -> None:
    sim = Simulator(seed=5, users=200, start_ms=START)
    events = list(sim.events(5000))
    kinds = Counter(e.kind for e in events)
    assert set(kinds) == {"review", "click", "order"}
    for e in events:
        parse_event(e.kind, e.value, now=NOW)  # type: ignore[arg-type]
    assert dict(kinds) == sim.truth.counts
    assert len(sim.truth.valid_event_ids) == len(set(sim.truth.valid_event_ids)) == 5000
    reviews = [json.loads(e.value) for e in events if e.kind == "review"]
    assert set(sim.truth.reviews) == {r["event_id"] for r in reviews}
    assert {t["category"] for t in sim.truth.reviews.values()} <= set(default_taxonomy().categories)
    labels = Counter(t["label"] for t in sim.truth.reviews.values())
    assert labels[0] > 0 and labels[1] > labels[0]  # shoppers are mostly happy, not all


def test_sessions_look_like_a_shop() -> None:
    sim = Simulator(seed=1, users=300, start_ms=START)
    events = [json.loads(e.value) | {"kind": e.kind} for e in sim.events(20_000)]
    actions = Counter(e.get("action") for e in events if e["kind"] == "click")
    # the funnel narrows: views > clicks > carts
    assert actions["view"] > actions["click"] > actions["add_to_cart"] > 0
    products = Counter(e["product_id"] for e in events if e.get("action") == "view")
    top_share = sum(c for _, c in products.most_common(40)) / sum(products.values())
    assert top_share > 0.3  # Zipf-like popularity: 10% of 400 products get a large share of views
    buyers = Counter(e["user_id"] for e in events if e["kind"] == "order")
    assert max(buyers.values()) >= 3  # repeat buyers exist
    ts = [e["ts"] for e in events if e["kind"] != "review"]
    assert ts == sorted(ts)  # the session clock only moves forward


def test_bad_fraction_mixes_in_malformed_events_with_known_reasons() -> None:
    sim = Simulator(seed=9, users=50, start_ms=START, bad_fraction=0.2)
    events = list(sim.events(2000))
    bad = [e for e in events if e.bad_reason]
    assert 250 < len(bad) < 550
    for e in bad:
        try:
            parse_event(e.kind, e.value, now=NOW)  # type: ignore[arg-type]
        except ContractError as err:
            assert err.reason == e.bad_reason
        else:
            raise AssertionError(f"a malformed {e.kind} event was accepted: {e.value[:80]!r}")
    assert len(sim.truth.valid_event_ids) == len(events) - len(bad)
    assert {b["reason"] for b in sim.truth.bad} >= {"bad_json", "not_utf8", "missing_field", "too_large"}


def test_live_mode_stamps_wall_clock() -> None:
    sim = Simulator(seed=1, users=10, clock=lambda: 1_800_000_000.0)
    first = json.loads(next(iter(sim.events(1))).value)
    assert first["ts"] == 1_800_000_000_000


def test_planted_personal_data_is_listed_and_masking_knows_every_form() -> None:
    from shoppulse.models.serving.text import mask_pii

    sim = Simulator(seed=5, users=30, start_ms=1_790_000_000_000, pii_fraction=0.5)
    values = b"".join(e.value for e in sim.events(2000)).decode("utf-8")
    planted = sim.truth.personal_data
    assert len(planted) > 20
    assert all(datum in values for datum in planted)
    assert [d for d in planted if mask_pii(f"联系{d}好") == f"联系{d}好"] == []


def test_no_personal_data_is_planted_by_default_and_the_stream_is_unchanged() -> None:
    plain = [e.value for e in Simulator(seed=5, users=30, start_ms=1_790_000_000_000).events(300)]
    zero = Simulator(seed=5, users=30, start_ms=1_790_000_000_000, pii_fraction=0.0)
    assert [e.value for e in zero.events(300)] == plain
    assert zero.truth.personal_data == []


def test_an_incident_turns_one_products_reviews_into_complaints_about_its_aspect() -> None:
    import json

    from shoppulse.devkit.simulator.incident import Incident

    incident = Incident.parse("物流@3600+1800")
    sim = Simulator(seed=7, users=200, start_ms=1_790_000_000_000, incident=incident)
    reviews = [json.loads(e.value) for e in sim.events(3000) if e.kind == "review"]
    mine = [r for r in reviews if r["product_id"] == sim.incident_product.product_id]
    start = mine[0]["ts"]
    burst = [r for r in mine if 3_600_000 <= r["ts"] - start < 5_400_000]
    before = [r for r in mine if r["ts"] - start < 3_600_000]
    negative = {r["event_id"] for r in mine if sim.truth.reviews[r["event_id"]]["label"] == 0}
    assert len(burst) > 5 * len(before) / 2  # ten times the rate, for half the time
    assert 0.8 < sum(r["event_id"] in negative for r in burst) / len(burst) <= 1.0
    assert sum(r["event_id"] in negative for r in before) / len(before) < 0.3
    assert all(any(w in r["text"] for w in ("物流", "快递", "发货", "配送")) for r in mine)
    assert all(sim.truth.reviews[r["event_id"]]["incident"] for r in burst)


@pytest.mark.parametrize("spec", ["天气@60", "物流@soon", "物流@-5", "物流@60+0"])
def test_a_bad_incident_spec_is_refused_with_the_expected_form(spec: str) -> None:
    from shoppulse.devkit.simulator.incident import Incident

    with pytest.raises(ValueError, match="ASPECT"):
        Incident.parse(spec)
