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


# Emoji (U+1F000-1FAFF) and the variation selectors that dress them: no vocabulary trained on the
# shop reviews has them (the training reviews carry none), so each was an [UNK] that the model read
# as noise beside the words. A text of emoji alone keeps them: without them the model would read an
# empty input. Symbols the vocabulary does know (★, ♀, °C, box-drawing kaomoji) stay.
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\uFE00-\uFE0F]+")


# Full-width ASCII (U+FF01-FF5E) to ASCII, and the ideographic space to a space.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def to_half_width(text: str) -> str:
    """Full-width ASCII (ＡＢＣ１２３！) → half-width; CJK punctuation such as ，。 stays."""
    return text.translate(_HALF_WIDTH)


@functools.lru_cache(maxsize=8192)
def clean_text(text: str) -> str:
    """Normalise a review for the model: width, controls, emoji beside words, URLs, repeated
    punctuation, spaces, case.

    Cached: the enrich stage cleans one review several times (aspect clauses, tokenization,
    keywords), and the function is pure.
    """
    text = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    text = to_half_width(text)
    text = _strip_controls(text)
    without_emoji = _EMOJI.sub(" ", text)
    text = without_emoji if without_emoji.strip() else text
    text = _URL.sub(" ", text)
    text = _REPEAT_PUNCT.sub(r"\1\1", text)
    text = _SPACES.sub(" ", text).strip()
    return text.lower()


# --- personal data -----------------------------------------------------------------------------
# Every pattern runs in time linear in the text: an e-mail match may only start where a run of
# address characters starts (the look-behind), so a 200 KB run without "@" is scanned once, not
# once per position (which took 40 s and froze the enrich stage).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Mainland ID card: 17 digits + digit or X.
_ID_CARD = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")
# Mobile numbers: 1[3-9]x, 11 digits, optional +86 / 0086 and separators.
_PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
# Landlines: area code 0xx or 0xxx, a separator, 7-8 digits (010-12345678, 0755 1234567).
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}[ -]\d{7,8}(?!\d)")
# Bank cards: 15-19 digits, optionally grouped by 4 (a 13-digit millisecond timestamp is not one).
_BANK_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){14,18}(?!\d)")
PLACEHOLDER = re.compile(r"\[(?:EMAIL|ID|PHONE|CARD)\]")  # what mask_pii writes


def mask_pii(text: str) -> str:
    """Replace e-mail addresses, ID-card, phone and bank-card numbers with typed placeholders.

    The forms, each tested in ``tests/unit/models/test_text.py``: e-mail (any TLD), mainland ID
    (18 characters, last may be X), mobile (1[3-9] + 9 digits, +86/0086 and spaces or dashes),
    landline (0xx-xxxxxxxx or 0xxx xxxxxxx), bank card (15-19 digits, grouped by 4 or not).
    """
    text = _EMAIL.sub("[EMAIL]", text)
    text = _ID_CARD.sub("[ID]", text)
    text = _PHONE.sub("[PHONE]", text)
    text = _LANDLINE.sub("[PHONE]", text)
    return _BANK_CARD.sub("[CARD]", text)


# Characters a datum (or a placeholder) can be made of: the run that a cut may split.
_TRAILING_FRAGMENT = re.compile(r"[A-Za-z0-9._%+@\[-]+$")
_LEADING_FRAGMENT = re.compile(r"[A-Za-z0-9._%+@\[\]-]*")
# Every datum but an e-mail address is shorter than this many characters.
_CUT_MARGIN = 32


def mask_and_cut(text: str, limit: int) -> str:
    """``mask_pii`` of ``text``, then cut to ``limit`` characters: the mask runs *before* the cut.

    Cutting first can split a phone number or an address so that its pieces no longer match
    (``客服邮箱wangwu@qq`` | ``.com``). Masking a window a little longer than the cut finds whatever
    crosses it. When the cut still splits a run of such characters, the part before the cut is
    dropped if the run holds a digit, an ``@`` or a placeholder's ``[``, or runs past the window
    (an e-mail address too long to see whole); a word of plain letters is kept.
    """
    if len(text) <= limit:
        return mask_pii(text)
    window = mask_pii(text[: limit + _CUT_MARGIN])
    if len(window) <= limit:
        return window
    cut = window[:limit]
    tail = _TRAILING_FRAGMENT.search(cut)
    rest = _LEADING_FRAGMENT.match(window, limit)
    if tail is None or rest is None or rest.end() == limit:
        return cut  # no run is split by the cut
    run = tail.group() + rest.group()
    unbounded = rest.end() == len(window) and len(text) > len(window)
    if unbounded or any(ch.isdigit() or ch in "@[" for ch in run):
        return cut[: tail.start()]
    return cut


def contains_pii(text: str) -> bool:
    return mask_pii(text) != text
