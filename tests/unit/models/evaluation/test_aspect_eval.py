"""The aspect evaluation's scoring and loading, and the committed set stays consistent with the lexicon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoppulse.models.evaluation.aspect_eval import Mention, load_mentions, score_mentions
from shoppulse.models.evaluation.evaluate import DEFAULT_ASPECT_SET
from shoppulse.models.serving.keywords import load_aspects


def test_scores_count_polar_mentions_and_report_the_ones_without_a_verdict_apart() -> None:
    mentions = [
        Mention("a", "物流", "物流很快", "positive"),
        Mention("a", "包装", "包装破了", "negative"),
        Mention("b", "物流", "快递慢", "negative"),
        Mention("c", "尺码", "尺码按平时买的", "none"),
    ]
    result = score_mentions(mentions, ["negative", "negative", "negative", "positive"])
    assert (result["n"], result["accuracy"]) == (3, round(2 / 3, 4))
    assert result["per_aspect"] == {"包装": 1.0, "物流": 0.5}
    assert result["errors"] == {"positive->negative": 1}
    assert result["none"] == {"n": 1, "judged": {"positive": 1}}
    assert 0 < result["macro_f1"] < 1


def test_a_label_the_lexicon_does_not_find_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"id": "x", "text": "衣服很合身", "aspects": {"物流": "positive"}}, ensure_ascii=False))
    with pytest.raises(ValueError, match="lexicon"):
        load_mentions(path, load_aspects())


def test_the_committed_set_covers_every_aspect_with_both_polarities() -> None:
    mentions = load_mentions(DEFAULT_ASPECT_SET, load_aspects())
    assert len(mentions) >= 400 and len({m.review_id for m in mentions}) >= 250
    for aspect in load_aspects().triggers:
        golds = {m.gold for m in mentions if m.aspect == aspect}
        assert {"positive", "negative"} <= golds, aspect
