"""Clause sampling: clauses as serving cuts them, only from reviews without a contrast word, deterministic."""

from __future__ import annotations

import pytest

from shoppulse.models.evaluation.data_io import Review
from shoppulse.models.training.clause_sampling import review_clauses, sample_clauses, sample_prefixes


def test_clauses_are_cut_as_serving_cuts_them_and_kept_short() -> None:
    assert review_clauses("衣服很合身，颜色也好看！物流快") == ["衣服很合身", "颜色也好看", "物流快"]
    assert review_clauses("好" + "，" + "很" * 40) == []  # one character, forty characters: neither is a clause


def test_mixed_reviews_and_single_clauses_add_nothing_and_labels_follow_the_review() -> None:
    rows = [
        Review("物流很快，但是质量太差", 0, "衣服"),  # contrast: its clauses disagree
        Review("质量太差了", 0, "衣服"),  # already a single clause
        Review("屏幕清晰，电池耐用，运行流畅", 1, "手机"),
    ]
    sampled = sample_clauses(rows, 1.0, seed=1)
    assert len(sampled) == 1
    assert sampled[0].review in {"屏幕清晰", "电池耐用", "运行流畅"}
    assert (sampled[0].label, sampled[0].cat) == (1, "手机")


def test_the_fraction_and_the_seed_decide_what_is_sampled() -> None:
    rows = [Review(f"东西不错{i}，物流很快，包装完好", 1, "水果") for i in range(1000)]
    assert sample_clauses(rows, 0.0, seed=1) == []
    some = sample_clauses(rows, 0.3, seed=1)
    assert 250 <= len(some) <= 350
    assert some == sample_clauses(rows, 0.3, seed=1) != sample_clauses(rows, 0.3, seed=2)
    with pytest.raises(ValueError):
        sample_clauses(rows, 1.5, seed=1)


def test_prefixes_are_cut_16_to_48_cleaned_characters_and_keep_the_labels() -> None:
    rows = [Review(f"第{i}次买了，ＡＢＣ质量很好，" + "非常满意" * 20, 1, "衣服") for i in range(200)]
    rows.append(Review("短评很好", 0, "水果"))  # shorter than any cut: never a prefix of itself
    prefixes = sample_prefixes(rows, 1.0, seed=3)
    assert len(prefixes) == 200
    lengths = {len(p.review) for p in prefixes}
    assert min(lengths) >= 16 and max(lengths) <= 48 and len(lengths) > 10  # random cuts, not one length
    assert all(p.review.startswith(f"第{i}次买了,abc质量很好") for i, p in enumerate(prefixes))  # cleaned text
    assert {(p.label, p.cat) for p in prefixes} == {(1, "衣服")}


def test_the_prefix_fraction_and_seed_decide_what_is_sampled() -> None:
    rows = [Review(f"东西不错{i}，" + "物流很快" * 12, 1, "水果") for i in range(1000)]
    assert sample_prefixes(rows, 0.0, seed=1) == []
    some = sample_prefixes(rows, 0.3, seed=1)
    assert 250 <= len(some) <= 350
    assert some == sample_prefixes(rows, 0.3, seed=1) != sample_prefixes(rows, 0.3, seed=2)
    with pytest.raises(ValueError):
        sample_prefixes(rows, -0.1, seed=1)


def test_contrast_clauses_are_labelled_by_the_word_between_them() -> None:
    from shoppulse.models.training.clause_sampling import contrast_clauses

    rows = [
        Review("书页有破损，内容倒是完整", 0, "书籍"),  # a concession: praise after a complaint
        Review("好吃到停不下来，就是配送慢", 1, "水果"),  # 就是 opens the one complaint
        Review("品质没话说，但是送货太随意", 0, "平板"),  # a negative review's 但是: praise, then complaint
        Review("外观好看，质量却很差", 0, "手机"),  # 却 inside its clause: the whole clause is kept
    ]
    assert [(r.review, r.label, r.cat) for r in contrast_clauses(rows, 1.0, seed=0)] == [
        ("书页有破损", 0, "书籍"),
        ("内容倒是完整", 1, "书籍"),
        ("好吃到停不下来", 1, "水果"),
        ("就是配送慢", 0, "水果"),
        ("品质没话说", 1, "平板"),
        ("送货太随意", 0, "平板"),
        ("外观好看", 1, "手机"),
        ("质量却很差", 0, "手机"),
    ]


def test_contrast_clauses_skip_what_the_word_does_not_decide() -> None:
    from shoppulse.models.training.clause_sampling import contrast_clauses

    rows = [
        Review("价格有点贵，不过内容确实干货多", 1, "书籍"),  # a positive review's 不过: either way round
        Review("质量就是好，很满意", 1, "手机"),  # 就是 for emphasis, not opening a clause
        Review("外观好看，但是质量差，不过便宜", 0, "手机"),  # two contrast words
        Review("内容倒是完整", 0, "书籍"),  # nothing before the concession
    ]
    assert contrast_clauses(rows, 1.0, seed=0) == []
    with pytest.raises(ValueError):
        contrast_clauses(rows, 1.5, seed=0)


@pytest.mark.parametrize("flag", ["--clause-fraction", "--contrast-fraction", "--prefix-fraction"])
def test_a_share_outside_zero_to_one_is_refused_when_the_command_is_read(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from shoppulse.models.training.train import add_arguments

    parser = argparse.ArgumentParser(prog="shoppulse train")
    add_arguments(parser)
    assert parser.parse_args(["--data", "d", "--out", "o", flag, "0.5"]).__dict__[flag[2:].replace("-", "_")] == 0.5
    for bad in ("1.5", "-0.1", "lots"):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(["--data", "d", "--out", "o", flag, bad])
        assert stopped.value.code == 2 and flag in capsys.readouterr().err
