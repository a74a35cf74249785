"""Reading review CSVs: BOM, optional columns, label spellings, empty reviews."""

from pathlib import Path

import pytest

from shoppulse.models.evaluation.data_io import read_reviews, stable_fraction


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8-sig")
    return path


def test_bom_optional_columns_and_empty_reviews(tmp_path: Path) -> None:
    rows = read_reviews(_write(tmp_path / "a.csv", 'cat,label,review\n书籍,1,好书\n酒店,0,\n水果,0,"烂了,退"\n'))
    assert [(r.cat, r.label, r.review) for r in rows] == [("书籍", 1, "好书"), ("水果", 0, "烂了,退")]
    only_cat = read_reviews(_write(tmp_path / "b.csv", "review,cat\n不错,衣服\n"))
    assert only_cat[0].label is None and only_cat[0].cat == "衣服"


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("0", 0), ("1.0", 1), ("positive", 1), ("Negative", 0)])
def test_label_spellings(tmp_path: Path, raw: str, expected: int) -> None:
    assert read_reviews(_write(tmp_path / "c.csv", f"label,review\n{raw},好\n"))[0].label == expected


def test_bad_label_and_missing_review_column_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label"):
        read_reviews(_write(tmp_path / "d.csv", "label,review\n2,好\n"))
    with pytest.raises(ValueError, match="review"):
        read_reviews(_write(tmp_path / "e.csv", "label,text\n1,好\n"))


def test_stable_fraction_depends_only_on_the_text() -> None:
    assert stable_fraction("好评") == stable_fraction("好评")
    values = [stable_fraction(f"评论{i}") for i in range(2000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.03 < sum(v < 0.05 for v in values) / len(values) < 0.07  # a 5% holdout is about 5%
