"""Whole-word masking for Chinese, as in Chinese BERT-wwm: jieba decides what a word is.

The tokenizer splits Chinese into single characters, so plain MLM masks 银 in 银行 and the
model can recover it from the neighbouring character alone. Whole-word masking masks every
token of a jieba word together, forcing the model to use the wider context.

``word_ids`` is computed once per text (jieba is the slow part) and stored beside the token
ids; ``mask_whole_words`` then masks a batch cheaply with numpy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

IGNORE_INDEX = -100


def word_ids_for(text: str, offsets: Sequence[tuple[int, int]], special_mask: Sequence[int]) -> list[int]:
    """Map each token to the index of the jieba word it starts in; special tokens get -1.

    ``offsets`` are character offsets of the tokens in ``text`` (from the tokenizer), so a
    word piece (``##ing``) and every CJK character of a word share that word's index.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)  # its DEBUG banner would land in every training log
    char_to_word = np.full(len(text) + 1, -1, dtype=np.int64)
    for index, (_word, start, end) in enumerate(jieba.tokenize(text)):
        char_to_word[start:end] = index
    out: list[int] = []
    for (start, end), special in zip(offsets, special_mask, strict=True):
        if special or end <= start:
            out.append(-1)
        else:
            out.append(int(char_to_word[min(start, len(text) - 1)]))
    return out


def mask_whole_words(
    input_ids: np.ndarray,
    word_ids: np.ndarray,
    rng: np.random.Generator,
    mask_token_id: int,
    vocab_size: int,
    first_normal_id: int,
    mask_prob: float = 0.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask whole words in a padded batch; return ``(masked_ids, labels)``.

    ``word_ids`` has the shape of ``input_ids`` and holds -1 for special and padding tokens.
    Words are picked in random order until about ``mask_prob`` of each row's real tokens are
    covered; picked tokens become [MASK] 80% of the time, a random token 10%, unchanged 10%.
    ``labels`` holds the original id at picked positions and ``IGNORE_INDEX`` elsewhere.
    """
    masked = input_ids.copy()
    labels = np.full_like(input_ids, IGNORE_INDEX)
    for row in range(input_ids.shape[0]):
        words = word_ids[row]
        real = words >= 0
        n_real = int(real.sum())
        if n_real == 0:
            continue
        budget = max(1, round(n_real * mask_prob))
        unique_words = np.unique(words[real])
        rng.shuffle(unique_words)
        chosen = np.zeros_like(real)
        covered = 0
        for word in unique_words:
            positions = words == word
            size = int(positions.sum())
            if covered + size > budget and covered > 0:
                continue  # too long for the remaining budget; a shorter word may still fit
            chosen |= positions
            covered += size
            if covered >= budget:
                break
        labels[row, chosen] = input_ids[row, chosen]
        draw = rng.random(chosen.shape)
        to_mask = chosen & (draw < 0.8)
        to_random = chosen & (draw >= 0.8) & (draw < 0.9)
        masked[row, to_mask] = mask_token_id
        masked[row, to_random] = rng.integers(first_normal_id, vocab_size, size=int(to_random.sum()))
    return masked, labels
