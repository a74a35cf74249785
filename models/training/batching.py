"""Encoding and length-bucketed batching shared by pretraining and fine-tuning.

Reviews are short (median ~36 tokens) with a long tail (p99 ~370), so padding a random batch
to its longest member wastes most of the compute. Batches are drawn from buckets of similar
length (sorted within a shuffled window, then the batches themselves shuffled): nearly no
padding, still random order across steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shoppulse.models.serving.text import clean_text


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Clean, tokenise (with [CLS]/[SEP]) and truncate to ``max_length`` tokens, like serving does."""
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch([clean_text(text) for text in texts])
    return [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]


def encode_with_offsets(tokenizer, texts: Sequence[str], max_length: int):  # type: ignore[no-untyped-def]
    """Like ``encode_texts`` but also returns the cleaned texts and the encodings (offsets for wwm)."""
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    cleaned = [clean_text(text) for text in texts]
    return cleaned, tokenizer.encode_batch(cleaned)


def bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator, window_batches: int = 50
) -> list[np.ndarray]:
    """Index batches of similar length, in random order; every index appears exactly once."""
    order = rng.permutation(len(lengths))
    lengths_arr = np.asarray(lengths)
    window = batch_size * window_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths_arr[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def pad_batch(sequences: Sequence[np.ndarray], pad_id: int, fill: int | None = None) -> np.ndarray:
    """Right-pad 1-D arrays into a 2-D array (``fill`` overrides the pad value, e.g. -1 for word ids)."""
    width = max(len(seq) for seq in sequences)
    out = np.full((len(sequences), width), pad_id if fill is None else fill, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return out
