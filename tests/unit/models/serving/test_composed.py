"""Heads from several bundles served as one predictor (a user's sentiment model + the default interest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoppulse.consumers.enrich.cli import load_predictor
from shoppulse.consumers.enrich.enricher import Enricher
from shoppulse.consumers.settings import load_settings
from shoppulse.models.serving.bundle import DEFAULT_BUNDLE, BundleError, load_bundle
from shoppulse.models.serving.composed import ComposedPredictor, head_sources
from shoppulse.models.serving.inference import Predictor
from shoppulse.models.serving.keywords import load_aspects
from shoppulse.models.serving.taxonomy import default_taxonomy

TEXTS = ["物流很快，质量很好", "手机屏幕坏了，客服不理人", "衣服很合身"]


@pytest.fixture(scope="module")
def composed(sentiment_only_bundle: Path, interest_only_bundle: Path) -> ComposedPredictor:
    return ComposedPredictor(
        [
            (Predictor.from_dir(sentiment_only_bundle, intra_op_threads=1), ["sentiment"]),
            (Predictor.from_dir(interest_only_bundle, intra_op_threads=1), ["interest"]),
        ]
    )


def test_each_head_comes_from_its_own_bundle_unchanged(
    composed: ComposedPredictor, sentiment_only_bundle: Path, interest_only_bundle: Path
) -> None:
    probs = composed.predict(TEXTS)
    alone_sentiment = Predictor.from_dir(sentiment_only_bundle, intra_op_threads=1).predict(TEXTS)["sentiment"]
    alone_interest = Predictor.from_dir(interest_only_bundle, intra_op_threads=1).predict(TEXTS)["interest"]
    assert set(probs) == {"sentiment", "interest"}
    np.testing.assert_array_equal(probs["sentiment"], alone_sentiment)
    np.testing.assert_array_equal(probs["interest"], alone_interest)
    empty = composed.predict_encoded_async(composed.encode([])).result()
    assert {head: values.shape[0] for head, values in empty.items()} == {"sentiment": 0, "interest": 0}


def test_the_bundle_view_merges_names_heads_and_takes_the_sentiment_bundles_clause_threshold(
    composed: ComposedPredictor, sentiment_only_bundle: Path
) -> None:
    view = composed.bundle
    assert (view.name, view.version) == ("tiny-sentiment+tiny-interest", "1+1")
    assert list(view.heads) == ["sentiment", "interest"] and len(view.heads["interest"]) == 10
    assert view.clause_threshold == load_bundle(sentiment_only_bundle).clause_threshold


def test_a_head_served_twice_or_missing_is_refused(sentiment_only_bundle: Path, tiny_bundle: Path) -> None:
    both = Predictor.from_dir(tiny_bundle, intra_op_threads=1)
    sentiment = Predictor.from_dir(sentiment_only_bundle, intra_op_threads=1)
    with pytest.raises(BundleError, match="would come from both"):
        ComposedPredictor([(both, ["sentiment", "interest"]), (sentiment, ["sentiment"])])
    with pytest.raises(BundleError, match="has no 'interest' head"):
        ComposedPredictor([(sentiment, ["interest"])])


def test_which_bundle_serves_which_head(
    tiny_bundle: Path, sentiment_only_bundle: Path, interest_only_bundle: Path
) -> None:
    both, sentiment, interest = (load_bundle(p) for p in (tiny_bundle, sentiment_only_bundle, interest_only_bundle))
    default = load_bundle(DEFAULT_BUNDLE)

    def plan(*args: object) -> list[tuple[str, list[str]]]:
        return [(b.name, heads) for b, heads in head_sources(*args)]  # type: ignore[arg-type]

    assert plan(both, None, default) == [("tiny-test", ["sentiment", "interest"])]
    assert plan(sentiment, None, default) == [("tiny-sentiment", ["sentiment"]), (default.name, ["interest"])]
    assert plan(sentiment, None, None) == [("tiny-sentiment", ["sentiment"])]
    assert plan(both, interest, default) == [("tiny-test", ["sentiment"]), ("tiny-interest", ["interest"])]
    assert plan(interest, None, default) == [("tiny-interest", ["interest"])]
    with pytest.raises(BundleError, match="has no interest head"):
        head_sources(both, sentiment, None)


def test_the_stage_keeps_the_default_interest_tagging_beside_a_sentiment_only_bundle(
    sentiment_only_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPPULSE_ENRICH__INTRA_OP_THREADS", "1")
    monkeypatch.setenv("SHOPPULSE_ENRICH__BUNDLE_DIR", str(sentiment_only_bundle))
    predictor = load_predictor(load_settings())
    assert isinstance(predictor, ComposedPredictor)
    assert [(p.bundle.path, heads) for p, heads in predictor.parts] == [
        (sentiment_only_bundle.resolve(), ["sentiment"]),
        (DEFAULT_BUNDLE.resolve(), ["interest"]),
    ]
    monkeypatch.setenv("SHOPPULSE_ENRICH__DEFAULT_INTEREST", "false")
    alone = load_predictor(load_settings())
    assert isinstance(alone, Predictor) and list(alone.bundle.heads) == ["sentiment"]


def test_an_enricher_on_two_bundles_writes_both_verdicts_and_names_both_models(composed: ComposedPredictor) -> None:
    from shoppulse.consumers.coordinates import RecordCoordinates
    from shoppulse.consumers.records import to_wire
    from tests.unit.consumers.enrich.test_enricher import click, review  # the enricher tests' events

    enricher = Enricher(composed, default_taxonomy(), load_aspects(), title_cache_size=100)
    batch = [
        (review("r1", "物流很快，质量很好"), RecordCoordinates("reviews", 0, 1)),
        (click("c1", "华为手机 全新"), RecordCoordinates("clicks", 0, 1)),
    ]
    review_out, click_out = enricher.enrich(batch)
    assert to_wire(review_out.insight)["model"]["name"] == "tiny-sentiment+tiny-interest"
    assert to_wire(review_out.insight)["sentiment"]["label"] in {"negative", "positive"}
    assert to_wire(review_out.insight)["interest"]["category"] in default_taxonomy().categories
    assert to_wire(click_out.signal)["tags"], "a click's title is tagged by the interest bundle"
