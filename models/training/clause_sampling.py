"""Clause sampling: short clauses cut from training reviews, added to fine-tuning as reviews of their own.

Why: the sentiment head is asked about single clauses (aspects, ``models/serving/keywords.py``) but only
ever saw whole reviews, and on short inputs it leans negative (docs/model.md). A
clause of a review that has *no contrast word* (但是, 不过, 就是 …) most likely shares the
review's polarity, so it is added with the review's sentiment and category labels.
Reviews with a contrast word are skipped: their clauses are the mixed ones («物流很快，但是质量太差»).
Clauses are split exactly as serving splits them, so training sees what enrich will ask about.

Contrast clauses are the other half: a review with exactly one contrast or concession word gives
the two clauses around that word, each labelled by what the word says about it. In a negative
review, before 但是, 不过, 可是, 然而 or 却 comes the praise and after it the complaint (in a
positive review it could be either way round, so those are skipped); after a clause-initial 就是
or 只是 comes a complaint, after praise; a clause with 倒是, 倒也, 好在 or 幸好 is a concession
(praise) after a complaint. Why: these are the clauses a review-level model gets wrong
(「书页有破损，内容倒是完整」 is labelled negative as a whole, so its concession reads negative),
and the word says which side each clause is on. It is a heuristic, so it is measured
(docs/model.md), not assumed.

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

CONTRAST = re.compile(r"但是|不过|可是|然而|就是|只是|却|虽然|不然|倒是|倒也|好在|幸好|幸亏|还好")
# The words that say which side of a two-sided review a clause is on (see the module docstring).
MAIN_POINT = re.compile(r"但是|不过|可是|然而|却")
CONCESSIONS = ("倒是", "倒也", "好在", "幸好")
ASIDE = re.compile(r"(?:^|(?<=[，,。.!！？?；;\s~～]))(?:就是|只是)|倒是|倒也|好在|幸好")
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


def contrast_clauses(rows: list[Review], fraction: float, seed: int) -> list[Review]:
    """For about ``fraction`` of the reviews with exactly one contrast or concession word, the clause
    before it and the clause it marks, each as a new row with the polarity the word implies (see the
    module docstring; the review's category kept). Reviews with more than one such word, or without a
    clause on each side, add nothing. Deterministic per seed."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("the contrast fraction must be within [0, 1]")
    rng = random.Random(seed * 104_729 + 2)
    out = []
    for row in rows:
        if row.label is None or rng.random() >= fraction:
            continue
        text = clean_text(row.review)
        main, aside = list(MAIN_POINT.finditer(text)), list(ASIDE.finditer(text))
        if len(main) + len(aside) != 1 or len(CONTRAST.findall(text)) != 1:
            continue
        marker = (main or aside)[0]
        # The marked clause: after a clause-splitting word (但是 …) the clause it opens; after one inside a
        # clause (却, 倒是 …) that whole clause, the word included, as serving would cut it.
        head = CLAUSE_SPLIT.split(text[: marker.start()])[-1]
        tail = CLAUSE_SPLIT.split(text[marker.end() :])[0]
        splits = CLAUSE_SPLIT.fullmatch(marker.group()) is not None
        marked = tail.strip() if splits else (head + marker.group() + tail).strip()
        before = review_clauses(text[: marker.start() - len(head)])
        if not before or not MIN_CLAUSE_CHARS <= len(marked) <= MAX_CLAUSE_CHARS:
            continue
        if main and row.label != 0:
            continue  # a positive review's 但是 may open its praise or its one complaint: no clue which
        # Negative review + 但是: the praise came first, the complaint follows; 就是/只是: the complaint
        # follows whatever the review's label; a concession (倒是 …) is the praise, after a complaint.
        before_label, marked_label = (0, 1) if marker.group() in CONCESSIONS else (1, 0)
        out.append(Review(before[-1], before_label, row.cat))
        out.append(Review(marked, marked_label, row.cat))
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
