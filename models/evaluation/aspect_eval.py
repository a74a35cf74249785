"""Aspect-sentiment evaluation: each aspect mention of a labelled review set, classified as serving does.

The set is JSON lines (``models/data/eval/aspects.jsonl``: hand-written short reviews, never
trained on): ``{"id", "category", "text", "aspects": {aspect: "positive"|"negative"|"none"}}``.
Every review goes through the serving path: ``AspectLexicon.find`` picks the first clause that
mentions each aspect (masked, cut), and the bundle's sentiment head classifies that clause on its
own, as enrich does. Accuracy and macro-F1 are over the mentions with a verdict; mentions
labelled ``none`` (the clause names the aspect without judging it) are counted apart: the
contract says such a clause should carry no aspect sentiment (docs/events.md), so what the model
says for them is reported as the share it judged anyway.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

POLARITIES = ("negative", "positive")
LABELS = (*POLARITIES, "none")


@dataclass(frozen=True)
class Mention:
    review_id: str
    aspect: str
    clause: str
    gold: str  # positive, negative or none


def load_mentions(path: Path, lexicon: Any) -> list[Mention]:
    """The aspect mentions of a JSON-lines set, as the lexicon finds them; ValueError on a bad line."""
    mentions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            review = json.loads(line)
            labels = review["aspects"]
            text = review["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a review with text and aspects ({exc})") from None
        if any(label not in LABELS for label in labels.values()):
            raise ValueError(f"{path}:{number}: an aspect label must be one of {', '.join(LABELS)}")
        found = {m.aspect: m.clause for m in lexicon.find(text)}
        if set(found) != set(labels):
            raise ValueError(
                f"{path}:{number}: labelled aspects {sorted(labels)} differ from the lexicon's {sorted(found)}"
            )
        mentions += [Mention(str(review.get("id", number)), a, found[a], labels[a]) for a in sorted(labels)]
    if not mentions:
        raise ValueError(f"{path}: no aspect mentions")
    return mentions


def score_mentions(mentions: list[Mention], predicted: list[str]) -> dict[str, Any]:
    """Overall and per-aspect accuracy and macro-F1 over polar mentions; how ``none`` mentions came out."""
    from shoppulse.models.evaluation.evaluate import scores

    index = {label: i for i, label in enumerate(POLARITIES)}
    polar = [(m, p) for m, p in zip(mentions, predicted, strict=True) if m.gold != "none"]
    gold = np.asarray([index[m.gold] for m, _ in polar], dtype=np.int64)
    guess = np.asarray([index[p] for _, p in polar], dtype=np.int64)
    result: dict[str, Any] = {"n": len(polar), **scores(guess, gold)}
    per_aspect: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    errors: Counter[str] = Counter()
    for m, p in polar:
        per_aspect[m.aspect][0] += p == m.gold
        per_aspect[m.aspect][1] += 1
        if p != m.gold:
            errors[f"{m.gold}->{p}"] += 1
    result["per_aspect"] = {a: round(ok / n, 4) for a, (ok, n) in sorted(per_aspect.items())}
    result["errors"] = dict(errors)
    none = [p for m, p in zip(mentions, predicted, strict=True) if m.gold == "none"]
    result["none"] = {"n": len(none), "judged": dict(Counter(none))}
    return result
