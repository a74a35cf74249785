"""``clean_text`` is what both training and serving see: its rules are pinned here."""

from shoppulse.models.serving.text import clean_text, to_half_width


def test_full_width_ascii_becomes_half_width_and_lower_case() -> None:
    assert clean_text("ＡＢＣ１２３") == "abc123"
    assert to_half_width("ｉＰｈｏｎｅ　１２") == "iPhone 12"


def test_control_and_zero_width_characters_are_removed() -> None:
    assert clean_text("好\u200b用\x07的\ufeff手机") == "好 用 的 手机"


def test_emoji_go_and_the_symbols_the_vocabulary_knows_stay() -> None:
    """Emoji were [UNK] to every vocabulary trained on the reviews: noise the model read."""
    assert clean_text("很好用👍👍物流快😀") == "很好用 物流快"
    assert clean_text("❤️好评") == "❤ 好评"  # the variation selector goes; ❤ (U+2764) is no emoji block
    assert clean_text("★★★★★ 40°C 正好") == "★★ 40°c 正好"


def test_a_text_of_emoji_alone_keeps_them() -> None:
    """Without them the model would read an empty input; the review is still a review."""
    assert clean_text("👍👍") == "👍👍" and clean_text("\u200b👍\u200b") == "👍"


def test_urls_are_dropped() -> None:
    assert clean_text("详情见 https://example.com/a?b=1 很好") == "详情见 很好"
    assert clean_text("www.shop.cn质量不错") == "质量不错"


def test_repeated_punctuation_collapses_to_two() -> None:
    assert clean_text("太差了！！！！！！") == "太差了!!"
    assert clean_text("好~~~~~~") == "好~~"
    assert clean_text("还行。。") == "还行。。"  # two stay two


def test_whitespace_is_normalised_and_text_is_idempotent() -> None:
    text = "  物流  很快\n\n\t包装好  "
    assert clean_text(text) == "物流 很快 包装好"
    assert clean_text(clean_text("ＯＫ！！！！ 好评")) == clean_text("ＯＫ！！！！ 好评")


def _reference_clean(text: str) -> str:
    """The plain per-character definition that the fast ``clean_text`` must reproduce exactly."""
    import unicodedata

    from shoppulse.models.serving.text import _CONTROL_CATEGORIES, _REPEAT_PUNCT, _SPACES, _URL

    text = unicodedata.normalize("NFKC", text)
    chars = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            ch = " "
        elif 0xFF01 <= code <= 0xFF5E:
            ch = chr(code - 0xFEE0)
        if ch not in "\t\n\r " and unicodedata.category(ch) in _CONTROL_CATEGORIES:
            ch = " "
        chars.append(ch)
    # emoji and their variation selectors go, unless nothing else is left
    without_emoji = ["" if 0x1F000 <= ord(ch) <= 0x1FAFF or 0xFE00 <= ord(ch) <= 0xFE0F else ch for ch in chars]
    if "".join(without_emoji).strip():
        chars = [kept or " " for kept in without_emoji]
    text = _URL.sub(" ", "".join(chars))
    text = _REPEAT_PUNCT.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip().lower()


def test_the_fast_cleaning_equals_the_per_character_definition() -> None:
    import random

    rng = random.Random(7)
    # ASCII controls, Latin, general punctuation and format characters, CJK punctuation, CJK,
    # surrogates, private use, full/half-width forms and specials, emoji, tags.
    pools = [(0, 0x80), (0x80, 0x800), (0x2000, 0x2100), (0x3000, 0x3100), (0x4E00, 0xA000), (0xD800, 0xE000)]
    pools += [(0xE000, 0xF900), (0xFE00, 0x10000), (0x1F300, 0x1FA00), (0xE0000, 0xE0080)]
    samples = [*CASES_FOR_EQUIVALENCE]
    for _ in range(20_000):
        samples.append("".join(chr(rng.randrange(*rng.choice(pools))) for _ in range(rng.randint(0, 24))))
    for text in samples:
        assert clean_text(text) == _reference_clean(text), ascii(text)


def test_the_fast_path_skips_only_characters_that_are_never_controls() -> None:
    import re
    import unicodedata

    from shoppulse.models.serving.text import _CONTROL_CATEGORIES, _MAYBE_CONTROL

    ranges = re.findall(r"\\x20-\\x7e|\\u(\w{4})-\\u(\w{4})", _MAYBE_CONTROL.pattern)
    assert len(ranges) == 4
    for low, high in ranges[1:]:
        for code in range(int(low, 16), int(high, 16) + 1):
            assert unicodedata.category(chr(code)) not in _CONTROL_CATEGORIES, hex(code)


CASES_FOR_EQUIVALENCE = [
    "ＡＢＣ１２３！！！！　好评\u200b\u200d\ufeff",
    "物流很快\x00\x07，质量好 http://x.cn/a?b=1 www.shop.com",
    "\uffbf\uffc0\uffef\ufff0 半角ｶﾀｶﾅ",
    "",
]
