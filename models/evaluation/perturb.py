"""Perturbations for the robustness report: what real reviews look like after a phone keyboard.

Each function is deterministic for a given seed so the reported numbers can be reproduced.
"""

from __future__ import annotations

import random

EMOJI = ["😀", "😂", "👍", "❤️", "😡", "🙄", "🔥", "💯", "😭", "🎉"]
_FULL_WIDTH_DIGITS = {str(d): chr(0xFF10 + d) for d in range(10)}
_PUNCT = ["！", "？", "。", "!", "?", "~", "…"]


def truncate(text: str, n_chars: int = 32) -> str:
    """The first ``n_chars`` characters: what a notification preview or a cut-off field keeps."""
    return text[:n_chars]


def inject_noise(text: str, rng: random.Random) -> str:
    """Add emoji, turn ASCII digits full-width and append/insert runs of repeated punctuation."""
    chars = [_FULL_WIDTH_DIGITS.get(ch, ch) for ch in text]
    for _ in range(rng.randint(1, 3)):
        chars.insert(rng.randint(0, len(chars)), rng.choice(EMOJI))
    punct = rng.choice(_PUNCT) * rng.randint(3, 8)
    chars.insert(rng.randint(0, len(chars)), punct)
    chars.append(rng.choice(_PUNCT) * rng.randint(2, 6))
    return "".join(chars)


def noisy_copy(texts: list[str], seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    return [inject_noise(text, rng) for text in texts]
