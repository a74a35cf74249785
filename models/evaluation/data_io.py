"""Reading the review CSVs (``cat,label,review``) in one place, so training, the baseline and
``evaluate`` agree on encoding, column names and what counts as a usable row.

The shared files start with a byte-order mark, hence ``utf-8-sig``. Rows with an empty
review are skipped (there is nothing to classify); a missing ``cat`` or ``label`` column is
allowed, because ``evaluate`` accepts ``label,review`` or ``cat,review`` files.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

TRAIN_FILE = "os10_train.csv"
DEV_FILE = "os10_dev.csv"


@dataclass(frozen=True)
class Review:
    review: str
    label: int | None = None  # sentiment: 0 negative, 1 positive
    cat: str | None = None  # fine product category


def read_reviews(path: str | Path) -> list[Review]:
    """Read a CSV with a ``review`` column and optional ``label`` / ``cat`` columns."""
    rows: list[Review] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        if "review" not in fields:
            raise ValueError(f"{path}: needs a 'review' column, found {sorted(fields)}")
        for row in reader:
            text = (row.get("review") or "").strip()
            if not text:
                continue
            label_raw = (row.get("label") or "").strip()
            cat = (row.get("cat") or "").strip() or None
            rows.append(Review(review=text, label=_label(label_raw, path) if label_raw else None, cat=cat))
    return rows


def read_unlabeled(path: str | Path, column: str = "review") -> list[str]:
    """Unlabeled texts for domain adaptation: a CSV's ``column`` (a ``.csv`` file), else one text per
    line. Empty texts are skipped, repeats kept once; a file with no text is an error."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            if column not in (reader.fieldnames or []):
                raise ValueError(f"{path}: needs a {column!r} column, found {sorted(reader.fieldnames or [])}")
            texts = [(row.get(column) or "").strip() for row in reader]
        else:
            texts = [line.strip() for line in handle]
    unique = list(dict.fromkeys(t for t in texts if t))
    if not unique:
        raise ValueError(f"{path}: no text in it")
    return unique


_LABEL_NAMES = {"negative": 0, "neg": 0, "positive": 1, "pos": 1}


def _label(raw: str, path: str | Path) -> int:
    """0/1 as the shared files write it; also 0.0/1.0 (spreadsheet exports) and negative/positive."""
    name = raw.lower()
    if name in _LABEL_NAMES:
        return _LABEL_NAMES[name]
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{path}: sentiment label {raw!r} is not 0/1 or negative/positive") from None
    if value not in (0.0, 1.0):
        raise ValueError(f"{path}: sentiment label {raw!r} is not 0/1 or negative/positive")
    return int(value)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_fraction(text: str) -> float:
    """A position in [0, 1) that depends only on the text: a split that survives reshuffles and reruns."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big") / 2**64
