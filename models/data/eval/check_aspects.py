"""Check a hand-written aspect-sentiment set: the evaluation set ``aspects.jsonl`` next to this script
(the default) or the tuning set ``aspects_tune.jsonl`` (a disjoint set for fitting thresholds).

Each line is ``{"id", "category", "text", "aspects"}``; ``aspects`` maps every aspect that
``load_aspects().find(text)`` reports to the verdict of the first clause mentioning it:
"positive", "negative" or "none" (mentioned, no verdict). The script checks the shape of every
line, that ids are unique, that categories and labels are known, and that the labeled aspects
are exactly the aspects the lexicon finds; then it prints counts and checks the size and balance
targets of the set. It exits 1, listing the offending lines, when any check fails.

Run from the repository root: ``.venv/bin/python models/data/eval/check_aspects.py [FILE]``. The
size targets and the id prefix default to the evaluation set's; the tuning set is smaller and its
ids start with "t"::

    .venv/bin/python models/data/eval/check_aspects.py models/data/eval/aspects_tune.jsonl \
        --id-prefix t --min-reviews 220 --min-mentions 330 --min-per-aspect 18
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_FILE = Path(__file__).resolve().parent / "aspects.jsonl"

CATEGORIES = frozenset({"书籍", "平板", "手机", "水果", "洗发水", "热水器", "蒙牛", "衣服", "计算机", "酒店"})
LABELS = ("positive", "negative", "none")
KEYS = frozenset({"id", "category", "text", "aspects"})
ID_PREFIX = "a"  # ids are the prefix and four digits: a0001 (evaluation set), t0001 (tuning set)

# Size and balance targets of the evaluation set (the defaults of the command-line options).
MIN_REVIEWS = 280
MIN_MENTIONS = 460
MIN_PER_ASPECT = 25
POSITIVE_SHARE = (0.40, 0.60)  # positive / (positive + negative), overall and per aspect
NONE_SHARE = (0.07, 0.11)  # "none" mentions / all mentions: about 8-10 %

CONTRAST = re.compile(r"但是|不过|可是|就是")
NEGATION = re.compile(r"不(?!过)|没")  # 不过 is a contrast word, not a negation


def check_line(
    lineno: int, raw: str, known_aspects: set[str], seen_ids: set[str], id_pattern: re.Pattern[str]
) -> list[str]:
    """Shape, id, category and label problems of one line (empty when it is fine)."""
    try:
        obj: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        return [f"line {lineno}: not JSON ({exc})"]
    if not isinstance(obj, dict) or set(obj) != KEYS:
        return [f"line {lineno}: expected an object with keys {sorted(KEYS)}"]
    errors: list[str] = []
    rid, category, text, aspects = obj["id"], obj["category"], obj["text"], obj["aspects"]
    if not isinstance(rid, str) or not id_pattern.fullmatch(rid):
        errors.append(f"line {lineno}: bad id {rid!r}")
    elif rid in seen_ids:
        errors.append(f"line {lineno}: duplicate id {rid}")
    else:
        seen_ids.add(rid)
    if category not in CATEGORIES:
        errors.append(f"line {lineno}: unknown category {category!r}")
    if not isinstance(text, str) or not text.strip():
        errors.append(f"line {lineno}: empty or non-string text")
    if not isinstance(aspects, dict) or not aspects:
        errors.append(f"line {lineno}: aspects must be a non-empty object")
        return errors
    for aspect, label in aspects.items():
        if aspect not in known_aspects:
            errors.append(f"line {lineno}: unknown aspect {aspect!r}")
        if label not in LABELS:
            errors.append(f"line {lineno}: unknown label {label!r} for {aspect}")
    return errors


def share_problem(name: str, value: float, bounds: tuple[float, float]) -> str | None:
    low, high = bounds
    return None if low <= value <= high else f"{name} is {value:.2f}, outside [{low:.2f}, {high:.2f}]"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check a hand-written aspect-sentiment set.")
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_FILE, help="JSON-lines set (default: the evaluation set)"
    )
    parser.add_argument("--id-prefix", default=ID_PREFIX, help="letter every id starts with (default: %(default)s)")
    parser.add_argument("--min-reviews", type=int, default=MIN_REVIEWS, help="default: %(default)s")
    parser.add_argument("--min-mentions", type=int, default=MIN_MENTIONS, help="default: %(default)s")
    parser.add_argument("--min-per-aspect", type=int, default=MIN_PER_ASPECT, help="default: %(default)s")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z]", args.id_prefix):
        parser.error("--id-prefix must be one lowercase letter")
    for name in ("min_reviews", "min_mentions", "min_per_aspect"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str]) -> int:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # the lexicon of this checkout, not of an installed copy
    from shoppulse.models.serving.keywords import load_aspects

    args = parse_args(argv[1:])
    path: Path = args.path
    id_pattern = re.compile(re.escape(args.id_prefix) + r"\d{4}")
    lexicon = load_aspects()
    aspect_names = list(lexicon.triggers)
    known = set(aspect_names)

    errors: list[str] = []
    seen_ids: set[str] = set()
    counts: Counter[tuple[str, str]] = Counter()
    reviews = multi = contrast = negation = 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            errors.append(f"line {lineno}: blank line")
            continue
        problems = check_line(lineno, raw, known, seen_ids, id_pattern)
        if problems:
            errors.extend(f"{p}\n    {raw}" for p in problems)
            continue
        obj = json.loads(raw)
        text: str = obj["text"]
        labeled: dict[str, str] = obj["aspects"]
        found = {m.aspect: m.clause for m in lexicon.find(text)}
        if set(found) != set(labeled):
            missing = sorted(set(found) - set(labeled))
            extra = sorted(set(labeled) - set(found))
            detail = "; ".join(
                [f"found but not labeled: {a} in {found[a]!r}" for a in missing]
                + [f"labeled but not found: {a}" for a in extra]
            )
            errors.append(f"line {lineno} ({obj['id']}): {detail}\n    {raw}")
        reviews += 1
        multi += len(labeled) >= 2
        contrast += bool(CONTRAST.search(text))
        negation += bool(NEGATION.search(text))
        for aspect, label in labeled.items():
            counts[aspect, label] += 1

    mentions = sum(counts.values())
    print(f"{'aspect':<6}" + "".join(f"{label:>10}" for label in LABELS) + f"{'total':>8}{'pos share':>11}")
    for aspect in aspect_names:
        pos, neg, none = (counts[aspect, label] for label in LABELS)
        share = pos / (pos + neg) if pos + neg else 0.0
        print(f"{aspect:<6}{pos:>10}{neg:>10}{none:>10}{pos + neg + none:>8}{share:>11.2f}")
    totals = [sum(counts[a, label] for a in aspect_names) for label in LABELS]
    pos_total, neg_total, none_total = totals
    overall_share = pos_total / (pos_total + neg_total) if pos_total + neg_total else 0.0
    none_share = none_total / mentions if mentions else 0.0
    print(f"{'all':<6}" + "".join(f"{t:>10}" for t in totals) + f"{mentions:>8}{overall_share:>11.2f}")
    print(f"reviews: {reviews}")
    print(f"mentions: {mentions} (none: {none_total}, {none_share:.1%})")
    print(f"reviews with 2+ aspects: {multi} ({multi / max(reviews, 1):.0%})")
    print(f"reviews with 但是/不过/可是/就是: {contrast}")
    print(f"reviews with a negation (不, 没): {negation}")

    targets = [
        None if reviews >= args.min_reviews else f"{reviews} reviews, fewer than {args.min_reviews}",
        None if mentions >= args.min_mentions else f"{mentions} mentions, fewer than {args.min_mentions}",
        share_problem("overall positive share", overall_share, POSITIVE_SHARE),
        share_problem("none share", none_share, NONE_SHARE),
    ]
    for aspect in aspect_names:
        pos, neg, none = (counts[aspect, label] for label in LABELS)
        if pos + neg + none < args.min_per_aspect:
            targets.append(f"{aspect}: {pos + neg + none} mentions, fewer than {args.min_per_aspect}")
        if pos + neg:
            targets.append(share_problem(f"{aspect} positive share", pos / (pos + neg), POSITIVE_SHARE))
    errors.extend(f"target: {t}" for t in targets if t)

    if errors:
        print(f"\n{len(errors)} problem(s) in {path}:", file=sys.stderr)
        for error in errors:
            print(error, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
