"""``clean_text`` is what both training and serving see: its rules are pinned here."""

from models.text import clean_text, to_half_width


def test_full_width_ascii_becomes_half_width_and_lower_case() -> None:
    assert clean_text("ＡＢＣ１２３") == "abc123"
    assert to_half_width("ｉＰｈｏｎｅ　１２") == "iPhone 12"


def test_control_and_zero_width_characters_are_removed() -> None:
    assert clean_text("好\u200b用\x07的\ufeff手机") == "好 用 的 手机"


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
