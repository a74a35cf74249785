"""Clause sampling: short clauses cut from training reviews, added to fine-tuning as reviews of their own.

Why: the sentiment head is asked about single clauses (aspects, ``models/serving/keywords.py``) but only
ever saw whole reviews, and on short inputs it leans negative (docs/model.md). A
clause of a review that has *no contrast word* (但是, 不过, 就是 …) most likely shares the
review's polarity, so it is added with the review's sentiment and category labels.
Reviews with a contrast word are skipped: their clauses are the mixed ones («物流很快，但是质量太差»).
Clauses are split exactly as serving splits them, so training sees what enrich will ask about.

Prefix sampling is its sibling for cut-off text: a review's first 16-48 characters (a random
length) as a row of its own, for clients that send previews or truncate (the first-32-characters
robustness row in docs/model.md measures it).
"""

from __future__ import annotations

import random
import re

from shoppulse.models.evaluation.data_io import Review
from shoppulse.models.serving.keywords import CLAUSE_SPLIT
from shoppulse.models.serving.text import clean_text

CONTRAST = re.compile(r"但是|不过|可是|然而|就是|只是|却|虽然|不然")
MIN_CLAUSE_CHARS = 2
MAX_CLAUSE_CHARS = 32
PREFIX_CHARS = (16, 48)


def review_clauses(text: str) -> list[str]:
    """The clauses serving would look at, 2-32 characters each, in order."""
    parts = (c.strip() for c in CLAUSE_SPLIT.split(clean_text(text)))
    return [c for c in parts if MIN_CLAUSE_CHARS <= len(c) <= MAX_CLAUSE_CHARS]


def sample_clauses(rows: list[Review], fraction: float, seed: int) -> list[Review]:
    """For about ``fraction`` of the reviews without a contrast word, one of their clauses as a new row.

    A review that is a single clause adds nothing (it already is one). Deterministic per seed.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("the clause fraction must be within [0, 1]")
    rng = random.Random(seed)
    out = []
    for row in rows:
        if CONTRAST.search(row.review) or rng.random() >= fraction:
            continue
        clauses = review_clauses(row.review)
        if len(clauses) < 2:
            continue
        out.append(Review(rng.choice(clauses), row.label, row.cat))
    return out


def sample_prefixes(rows: list[Review], fraction: float, seed: int) -> list[Review]:
    """For about ``fraction`` of the reviews longer than the cut, their first 16-48 cleaned characters
    (a random length per review) as a new row with the review's labels. Deterministic per seed."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("the prefix fraction must be within [0, 1]")
    low, high = PREFIX_CHARS
    rng = random.Random(seed * 7919 + 1)
    out = []
    for row in rows:
        if rng.random() >= fraction:
            continue
        text, cut = clean_text(row.review), rng.randint(low, high)
        if len(text) > cut:
            out.append(Review(text[:cut], row.label, row.cat))
    return out
