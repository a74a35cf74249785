"""The texts a benchmark runs on: real reviews from a CSV, or generated ones of real lengths.

Why lengths matter more than words: a BERT's cost grows with tokens per batch (and
attention with their square), so a benchmark on fixed-length or very short texts
says little about production. The generator draws lengths from a log-normal fitted to
the review data (median 36 characters, p90 132, so p99 ≈ 380; characters ≈ tokens for
Chinese) and fills them with single characters of the model's own vocabulary.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from pathlib import Path

MEDIAN_CHARS = 36
P90_CHARS = 132
MAX_CHARS = 400  # the contracts clip far longer texts; the model reads 128 tokens anyway
_Z90 = 1.2815515655446004  # standard normal quantile at 0.90
LENGTH_MU = math.log(MEDIAN_CHARS)
LENGTH_SIGMA = math.log(P90_CHARS / MEDIAN_CHARS) / _Z90
PUNCTUATION = ("，", "。", "！", "？", "~")
TEXT_COLUMNS = ("review", "text")


def review_lengths(count: int, seed: int = 0, max_chars: int = MAX_CHARS) -> list[int]:
    """``count`` review lengths in characters, log-normal like the real data, clipped to 1..max_chars."""
    rng = random.Random(seed)
    return [min(max_chars, max(1, round(rng.lognormvariate(LENGTH_MU, LENGTH_SIGMA)))) for _ in range(count)]


def is_cjk(token: str) -> bool:
    return len(token) == 1 and "\u4e00" <= token <= "\u9fff"


def alphabet_from_vocab(vocab: Sequence[str]) -> list[str]:
    """Single CJK characters of a vocabulary (sorted, so a seed gives the same texts everywhere)."""
    chars = sorted({t for t in vocab if is_cjk(t)})
    if len(chars) < 10:
        raise ValueError(f"the vocabulary has only {len(chars)} single CJK characters; pass real reviews with --data")
    return chars


def generate_reviews(alphabet: Sequence[str], count: int, seed: int = 0) -> list[str]:
    """``count`` texts with review lengths, made of ``alphabet`` with some punctuation."""
    rng = random.Random(seed + 1)
    texts = []
    for length in review_lengths(count, seed):
        texts.append(
            "".join(rng.choice(PUNCTUATION) if rng.random() < 0.08 else rng.choice(alphabet) for _ in range(length))
        )
    return texts


def read_review_texts(path: Path, count: int, seed: int = 0) -> list[str]:
    """A seeded random sample of ``count`` non-empty texts from a reviews CSV (all when it has fewer).

    Sampled rather than the first rows because the CSV is ordered by category, and
    categories differ in typical length (hotel reviews are long, fruit reviews short).
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        column = next((c for c in TEXT_COLUMNS if c in (reader.fieldnames or [])), None)
        if column is None:
            raise ValueError(f"{path}: no {' or '.join(TEXT_COLUMNS)} column (have {reader.fieldnames})")
        texts = [row[column] for row in reader if (row.get(column) or "").strip()]
    if not texts:
        raise ValueError(f"{path}: no non-empty texts")
    if count >= len(texts):
        return texts
    return random.Random(seed).sample(texts, count)


def bundle_alphabet(tokenizer_json: Path) -> list[str]:
    from tokenizers import Tokenizer

    return alphabet_from_vocab(list(Tokenizer.from_file(str(tokenizer_json)).get_vocab()))
