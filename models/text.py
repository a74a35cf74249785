"""Text cleaning shared by training and serving, so both see the same characters.

Kept deliberately conservative: the model is trained on the output of ``clean_text``
and served on it too, so any change here means retraining. Personal-data masking
is separate (``mask_pii``): it is applied to whatever an output carries.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_URL = re.compile(r"(?:https?://|www\.)[^\s\u4e00-\u9fff，。！？、]+", re.IGNORECASE)
# Runs of the same punctuation or symbol (！！！！, ～～～, ......) collapse to at most two.
_REPEAT_PUNCT = re.compile(r"([^\w\s])\1{2,}")
_SPACES = re.compile(r"\s+")
# Control and format characters (zero-width joiners, BOM, ...) except ordinary whitespace.
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


# Characters that are never control/format characters: the bulk of every review. Anything else is
# looked at one by one (its Unicode category decides), so the common case stays in the regex engine.
_MAYBE_CONTROL = re.compile(r"[^\x20-\x7e\u3001-\u303f\u4e00-\u9fff\uff01-\uffbe]")


def _blank_if_control(match: re.Match[str]) -> str:
    ch = match.group()
    return ch if ch in "\t\n\r " or unicodedata.category(ch) not in _CONTROL_CATEGORIES else " "


def _strip_controls(text: str) -> str:
    return _MAYBE_CONTROL.sub(_blank_if_control, text)


# Full-width ASCII (U+FF01-FF5E) to ASCII, and the ideographic space to a space.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def to_half_width(text: str) -> str:
    """Full-width ASCII (ＡＢＣ１２３！) → half-width; CJK punctuation such as ，。 stays."""
    return text.translate(_HALF_WIDTH)


@functools.lru_cache(maxsize=8192)
def clean_text(text: str) -> str:
    """Normalise a review for the model: width, controls, URLs, repeated punctuation, spaces, case.

    Cached: the enrich stage cleans one review several times (aspect clauses, tokenization,
    keywords), and the function is pure.
    """
    text = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    text = to_half_width(text)
    text = _strip_controls(text)
    text = _URL.sub(" ", text)
    text = _REPEAT_PUNCT.sub(r"\1\1", text)
    text = _SPACES.sub(" ", text).strip()
    return text.lower()


# --- personal data -----------------------------------------------------------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Mainland ID card: 17 digits + digit or X. Bank cards: 13-19 digits (optionally grouped by 4).
_ID_CARD = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_BANK_CARD = re.compile(r"(?<!\d)(?:\d{4}[ -]?){3,4}\d{1,4}(?!\d)")
# Mobile numbers: 1[3-9]x, 11 digits, optional +86 and separators.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")


def mask_pii(text: str) -> str:
    """Replace e-mail addresses, ID-card, bank-card and phone numbers with typed placeholders."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _ID_CARD.sub("[ID]", text)
    text = _PHONE.sub("[PHONE]", text)
    text = _LANDLINE.sub("[PHONE]", text)
    text = _BANK_CARD.sub("[CARD]", text)
    return text


def contains_pii(text: str) -> bool:
    return mask_pii(text) != text
