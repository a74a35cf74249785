"""The enricher on a real (tiny) bundle: record shapes, tags, the title cache, and masking."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from shoppulse.consumers.contracts import Event, OrderItem
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.deadletter import dead_letter_record
from shoppulse.consumers.enrich.enricher import Enricher, TitleCache
from shoppulse.consumers.records import Verdict, to_wire
from shoppulse.models.serving.inference import Predictor
from shoppulse.models.serving.keywords import keywords, load_aspects
from shoppulse.models.serving.taxonomy import default_taxonomy

TS = 1_780_000_000_000
PII_TEXT = (
    "快递员电话13812345678态度很差，邮箱zhang.san@example.com，身份证110101199003071234，卡号6222 0212 3456 7890 123"
)


@pytest.fixture(scope="module")
def enricher(tiny_bundle: Path) -> Enricher:
    return Enricher(Predictor.from_dir(tiny_bundle), default_taxonomy(), load_aspects(), title_cache_size=100)


def review(event_id: str, text: str) -> Event:
    return Event(kind="review", event_id=event_id, user_id="u1", ts_ms=TS, product_id="p1", text=text)


def click(event_id: str, title: str | None = None, category: str | None = None) -> Event:
    return Event(
        kind="click",
        event_id=event_id,
        user_id="u1",
        ts_ms=TS,
        product_id="p1",
        action="view",
        title=title,
        category=category,
    )


def test_review_yields_an_insight_and_a_signal(enricher: Enricher) -> None:
    [out] = enricher.enrich([(review("r1", "物流很快，但是质量很差，价格也贵"), RecordCoordinates("reviews", 0, 5))])
    assert out.insight is not None
    assert to_wire(out.insight)["event_id"] == to_wire(out.signal)["event_id"] == "r1"
    assert to_wire(out.insight)["sentiment"]["label"] in {"positive", "negative"}
    assert 0.5 <= to_wire(out.insight)["sentiment"]["probability"] <= 1.0
    assert {a["aspect"] for a in to_wire(out.insight)["aspects"]} == {"物流", "质量", "价格"}
    assert to_wire(out.insight)["source"] == {"topic": "reviews", "partition": 0, "offset": 5}
    assert to_wire(out.insight)["model"]["name"] == "tiny-test"
    assert abs(sum(to_wire(out.signal)["tags"].values()) - 1.0) < 1e-3
    assert to_wire(out.signal)["weight"] == 3.0 and to_wire(out.signal)["action"] == "review"


def test_personal_data_never_reaches_an_output(enricher: Enricher) -> None:
    [out] = enricher.enrich([(review("r2", PII_TEXT), RecordCoordinates("reviews", 0, 6))])
    wire = json.dumps(to_wire([out.insight, out.signal]), ensure_ascii=False)
    for secret in ("13812345678", "zhang.san", "example.com", "110101199003071234", "6222", "7890"):
        assert secret not in wire
    assert "[PHONE]" in wire  # the aspect clause about the courier is carried, masked
    assert not any(ch.isdigit() for kw in keywords(PII_TEXT, 10) for ch in kw)


def test_dead_letter_preview_is_masked_but_raw_bytes_are_kept_for_replay() -> None:
    raw = json.dumps({"text": PII_TEXT}, ensure_ascii=False).encode()
    record = dead_letter_record(
        stage="enrich",
        raw=raw,
        key=b"u1",
        source=RecordCoordinates("reviews", 1, 9),
        reason="missing_field",
        message="is required",
    ).to_wire()
    assert "13812345678" not in record["value_preview"]
    assert record["value_bytes"] == len(raw) and record["value_truncated"] is False
    assert record["source"] == {"topic": "reviews", "partition": 1, "offset": 9}


def test_titles_are_cached_and_category_only_clicks_use_the_taxonomy(enricher: Enricher) -> None:
    cache = enricher.cache
    hits_before, misses_before = cache.hits, cache.misses
    batch = [(click(f"c{i}", title="华为平板电脑 新款"), RecordCoordinates("clicks", 0, i)) for i in range(3)]
    outs = enricher.enrich(batch)
    assert cache.hits - hits_before == 2  # one miss (one inference), then a counted hit per repeat
    assert cache.misses == misses_before + 1
    assert to_wire(outs[0].signal)["tags"] == to_wire(outs[2].signal)["tags"]
    [cat_only] = enricher.enrich([(click("c9", category="洗发水"), RecordCoordinates("clicks", 0, 9))])
    assert to_wire(cat_only.signal)["tags"] == {"个护": 1.0}


def test_a_category_the_taxonomy_does_not_know_is_no_tag(enricher: Enricher) -> None:
    """A free-text catalog category once became a tag: personal data in profiles, and unbounded interests."""
    outs = enricher.enrich(
        [
            (click("c20", category="张三13812345678的店"), RecordCoordinates("clicks", 0, 20)),
            (click("c21", category="数码"), RecordCoordinates("clicks", 0, 21)),  # a tag name itself is known
        ]
    )
    assert to_wire(outs[0].signal)["tags"] == {}
    assert "13812345678" not in json.dumps(to_wire(outs[0].signal), ensure_ascii=False)
    assert to_wire(outs[1].signal)["tags"] == {"数码": 1.0}


def test_order_tags_are_weighted_by_amount(enricher: Enricher) -> None:
    order = Event(
        kind="order",
        event_id="o1",
        user_id="u1",
        ts_ms=TS,
        order_id="x",
        items=(
            OrderItem("p1", Decimal("300"), 3, category="热水器"),
            OrderItem("p2", Decimal("50.00"), 2, category="蒙牛"),
        ),
        total=Decimal("1000.00"),
        currency="CNY",
    )
    [out] = enricher.enrich([(order, RecordCoordinates("orders", 0, 1))])
    assert to_wire(out.signal)["tags"] == {"家电": 0.9, "乳品": 0.1}
    assert to_wire(out.signal)["amount"] == "1000.00" and to_wire(out.signal)["product_ids"] == ["p1", "p2"]
    # per line, for stage 3's per-product revenue: exact price × quantity
    assert to_wire(out.signal)["items"] == [
        {"product_id": "p1", "category": "热水器", "quantity": 3, "amount": "900"},
        {"product_id": "p2", "category": "蒙牛", "quantity": 2, "amount": "100.00"},
    ]


def test_title_cache_is_a_bounded_lru() -> None:
    import numpy as np

    cache = TitleCache(2)
    cache.put("a", np.zeros(1))
    cache.put("b", np.zeros(1))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", np.zeros(1))
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") is not None


def test_a_zero_title_cache_still_tags_titles_from_the_model(tiny_bundle: Path) -> None:
    no_cache = Enricher(Predictor.from_dir(tiny_bundle), default_taxonomy(), load_aspects(), title_cache_size=0)
    # the category would say 个护; the title goes through the model, whose tags are the taxonomy's
    first_click = (click("c1", title="华为平板电脑 新款", category="洗发水"), RecordCoordinates("clicks", 0, 1))
    [out] = no_cache.enrich([first_click])
    with_cache = Enricher(Predictor.from_dir(tiny_bundle), default_taxonomy(), load_aspects(), title_cache_size=10)
    [same] = with_cache.enrich([first_click])
    assert to_wire(out.signal)["tags"] == to_wire(same.signal)["tags"] and len(no_cache.cache) == 0


def test_keywords_keep_dictionary_words_whole_and_drop_stop_words() -> None:
    found = keywords("这款平板电脑性价比很高，但是物流一般，游戏本也不错", 10)
    assert {"平板电脑", "性价比", "游戏本"} <= set(found)  # userdict.txt words, not 平板/电脑 or 游戏/本
    assert not {"一般", "不错", "但是", "这款"} & set(found)  # stopwords.txt


def test_each_aspect_carries_the_sentiment_of_its_own_clause(enricher: Enricher) -> None:
    text = "物流很快，质量很差"
    [out] = enricher.enrich([(review("r3", text), RecordCoordinates("reviews", 0, 7))])
    assert out.insight is not None
    by_aspect = {a["aspect"]: a for a in to_wire(out.insight)["aspects"]}
    assert by_aspect["物流"]["clause"] == "物流很快" and by_aspect["质量"]["clause"] == "质量很差"
    # each clause classified on its own: the same verdict as the clause sent alone as a review
    for aspect, clause in (("物流", "物流很快"), ("质量", "质量很差")):
        [alone] = enricher.enrich([(review(f"r-{aspect}", clause), RecordCoordinates("reviews", 0, 8))])
        assert alone.insight is not None
        mine, theirs = by_aspect[aspect]["sentiment"], to_wire(alone.insight)["sentiment"]
        assert mine["label"] == theirs["label"]
        assert mine["probability"] == pytest.approx(theirs["probability"], abs=1e-3)  # INT8: per-batch scales
    assert to_wire(out.signal)["aspects"] == {k: v["sentiment"]["label"] for k, v in by_aspect.items()}
    assert to_wire(out.signal)["sentiment"] == to_wire(out.insight)["sentiment"]


def test_a_clause_is_decided_by_the_bundles_clause_threshold_and_a_review_by_argmax(enricher: Enricher) -> None:
    probs = {"sentiment": np.array([[0.7, 0.3]])}  # negative, positive; p_positive 0.3
    enricher._positive = 1
    assert enricher._sentiment(probs, 0).label == "negative"
    clause = enricher._sentiment(probs, 0, clause_threshold=0.25)
    assert clause == Verdict(label="positive", probability=0.3, p_positive=0.3)
    assert enricher._sentiment(probs, 0, clause_threshold=0.35).label == "negative"
