"""The held-out-category split behind the domain-adaptation experiment (docs/model.md)."""

import json
from pathlib import Path

import pytest

from shoppulse.models.evaluation import holdout_category
from shoppulse.models.evaluation.data_io import read_reviews, read_unlabeled
from tests.unit.models.synthetic_reviews import write_dataset


def test_the_category_leaves_train_and_only_it_is_scored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "data", n_train=200, n_dev=60)
    train, dev = read_reviews(data / "os10_train.csv"), read_reviews(data / "os10_dev.csv")
    category = train[0].cat
    assert holdout_category.main(["--data", str(data), "--category", category, "--out", str(tmp_path / "h")]) == 0
    kept, scored = read_reviews(tmp_path / "h" / "os10_train.csv"), read_reviews(tmp_path / "h" / "os10_dev.csv")
    unlabeled = read_unlabeled(tmp_path / "h" / "unlabeled.txt")
    assert category not in {r.cat for r in kept} and len(kept) == sum(r.cat != category for r in train)
    assert {r.cat for r in scored} == {category} and len(scored) == sum(r.cat == category for r in dev)
    assert set(unlabeled) == {r.review for r in train if r.cat == category}  # its train texts, no labels
    assert not set(unlabeled) & {r.review for r in scored}  # never the texts it is scored on
    counts = json.loads(capsys.readouterr().out)
    assert counts == {"category": category, "train_rows": len(kept), "dev_rows": len(scored),
                      "unlabeled_texts": len(set(unlabeled))}


def test_an_unknown_category_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "data", n_train=40, n_dev=20)
    assert holdout_category.main(["--data", str(data), "--category", "不存在", "--out", str(tmp_path / "h")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("holdout_category: category '不存在' has no train or no dev reviews (categories: ")
    assert not (tmp_path / "h").exists()
