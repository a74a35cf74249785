"""A new shop's situation, made from the shared data: one category's labels held out.

``python -m shoppulse.models.evaluation.holdout_category --data DIR --category 酒店 --out DIR2``
writes three files into ``DIR2``:

- ``os10_train.csv``: the training reviews of every *other* category (labels kept);
- ``os10_dev.csv``: the dev reviews of the held-out category only (what is scored);
- ``unlabeled.txt``: the held-out category's *training* texts, one per line, no labels: the
  shop's own unlabeled reviews for ``shoppulse train --unlabeled``.

So ``shoppulse train --data DIR2 [--unlabeled DIR2/unlabeled.txt]`` and
``python -m shoppulse.models.evaluation.baseline --data DIR2`` are compared on a domain that
neither saw a label of (docs/model.md, "Domain adaptation, measured"). The dev reviews stay out
of the unlabeled file, so the adapted encoder never read the texts it is scored on.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from shoppulse.models.evaluation.data_io import DEV_FILE, TRAIN_FILE, Review, read_reviews

UNLABELED_FILE = "unlabeled.txt"


def split_out(train: list[Review], dev: list[Review], category: str) -> tuple[list[Review], list[Review], list[str]]:
    """(train without ``category``, dev of ``category`` only, ``category``'s train texts)."""
    kept = [r for r in train if r.cat != category]
    scored = [r for r in dev if r.cat == category]
    texts = (r.review.replace("\n", " ").strip() for r in train if r.cat == category)
    return kept, scored, list(dict.fromkeys(t for t in texts if t))  # repeats once, as --unlabeled reads them


def _write_csv(path: Path, rows: list[Review]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cat", "label", "review"])
        writer.writerows((r.cat, r.label, r.review) for r in rows)


def write_holdout(data: Path, category: str, out: Path) -> dict[str, int]:
    """Write the three files; ValueError when the category has no train or no dev reviews."""
    train, dev = read_reviews(data / TRAIN_FILE), read_reviews(data / DEV_FILE)
    kept, scored, unlabeled = split_out(train, dev, category)
    if not scored or not unlabeled:
        known = sorted({r.cat for r in train})
        raise ValueError(f"category {category!r} has no train or no dev reviews (categories: {', '.join(known)})")
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / TRAIN_FILE, kept)
    _write_csv(out / DEV_FILE, scored)
    (out / UNLABELED_FILE).write_text("\n".join(unlabeled) + "\n", encoding="utf-8")
    return {"train_rows": len(kept), "dev_rows": len(scored), "unlabeled_texts": len(unlabeled)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with os10_train.csv and os10_dev.csv")
    parser.add_argument("--category", required=True, help="the category whose labels are held out")
    parser.add_argument("--out", type=Path, required=True, help="folder for the three files")
    args = parser.parse_args(argv)
    try:
        counts = write_holdout(args.data, args.category, args.out)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"holdout_category: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"category": args.category, **counts}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
