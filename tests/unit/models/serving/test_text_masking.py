"""Personal-data masking: every documented form, the cut after the mask, and linear time."""

from __future__ import annotations

import time

import pytest

from shoppulse.models.serving.keywords import keywords, load_aspects
from shoppulse.models.serving.text import contains_pii, mask_and_cut, mask_pii

# (text, the secret that must disappear, the placeholder that must replace it)
FORMS = [
    ("电话13812345678", "13812345678", "[PHONE]"),
    ("电话19912345678", "19912345678", "[PHONE]"),  # 19x mobiles
    ("电话+86 138 1234 5678", "1234 5678", "[PHONE]"),
    ("电话+86-13812345678", "13812345678", "[PHONE]"),
    ("电话008613812345678", "13812345678", "[PHONE]"),
    ("座机010-12345678", "12345678", "[PHONE]"),
    ("座机0755 1234567", "1234567", "[PHONE]"),
    ("邮箱zhang.san@example.com", "zhang.san", "[EMAIL]"),
    ("邮箱wangwu@qq.com", "wangwu", "[EMAIL]"),
    ("邮箱li_si+shop@mail.sina.com.cn", "li_si", "[EMAIL]"),
    ("邮箱a@b.cn", "a@b", "[EMAIL]"),
    ("身份证110101199003071234", "110101199003071234", "[ID]"),
    ("身份证11010519491231002X", "11010519491231002", "[ID]"),
    ("身份证11010519491231002x", "11010519491231002", "[ID]"),
    ("卡号6222021234567890123", "6222021234567890123", "[CARD]"),
    ("卡号6222 0212 3456 7890", "7890", "[CARD]"),
    ("卡号6222-0212-3456-7890", "7890", "[CARD]"),
    ("卡号378282246310005", "378282246310005", "[CARD]"),  # 15 digits
]


@pytest.mark.parametrize(("text", "secret", "placeholder"), FORMS)
def test_every_documented_form_is_masked(text: str, secret: str, placeholder: str) -> None:
    masked = mask_pii(text)
    assert secret not in masked and placeholder in masked, masked


@pytest.mark.parametrize(
    "text",
    ["1780000000000 is outside [2000-01-01, now + 1 day]", "订单号20231", "价格1999元", "p000123", "2024-05-01"],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert mask_pii(text) == text


@pytest.mark.parametrize("secret", ["13812345678", "zhang.san@example.com", "110101199003071234"])
@pytest.mark.parametrize("at", range(0, 30))
def test_a_cut_never_leaves_part_of_a_datum(secret: str, at: int) -> None:
    text = "好" * at + secret + "，质量不错"
    for limit in range(1, len(text)):
        cut = mask_and_cut(text, limit)
        assert len(cut) <= limit
        digits = "".join(ch for ch in cut if ch.isdigit())
        assert len(digits) < 4, (limit, cut)  # no run of the number survives the cut
        assert "zhang" not in cut and "example" not in cut, (limit, cut)


def test_a_clause_is_masked_before_it_is_split() -> None:
    [mention] = load_aspects().find("客服邮箱wangwu@qq.com回复很慢")
    assert "wangwu" not in mention.clause and "[EMAIL]" in mention.clause


def test_keywords_are_bounded_in_length() -> None:
    words = keywords("质量很好" + "abcdefghij" * 200 + "，物流很快", 10)
    assert words and all(len(w) <= 16 for w in words)


@pytest.mark.parametrize("unit", ["k", "1", "\x01", "a@", "a.", "1 ", "a" * 50 + "@"])
def test_masking_time_grows_linearly(unit: str) -> None:
    """200 KB took 40 s when an e-mail match could start at every position: a 16x input must cost
    far less than 16^2 = 256x (a ratio on one machine, not a time budget)."""

    def cost(n: int) -> float:
        text = unit * (n // len(unit))
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            mask_pii(text)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(12_500), cost(200_000)
    assert large / max(small, 1e-6) < 64, (small, large)


def test_each_form_gets_its_own_placeholder_and_contains_pii_says_so() -> None:
    text = "邮箱 wang@qq.com 身份证 11010519491231002X 手机 13812345678 座机 010-12345678 卡 6222021234567890123"
    assert mask_pii(text) == "邮箱 [EMAIL] 身份证 [ID] 手机 [PHONE] 座机 [PHONE] 卡 [CARD]"
    assert contains_pii(text) and not contains_pii(mask_pii(text)) and not contains_pii("物流很快")


def test_a_text_at_the_limit_is_masked_not_cut() -> None:
    assert mask_and_cut("电话13812345678好", 16) == "电话[PHONE]好"  # 16 characters: at the limit
    assert mask_and_cut("物流很快质量很好", 8) == "物流很快质量很好"


# Each row pins one branch of the cut: (text, limit, the exact result, the branch it takes).
CUTS = [
    ("电话13812345678，好" + "评" * 40, 12, "电话[PHONE]，好评", "masking shortened it to the limit"),
    ("物流很快质量很好" + "评" * 40, 6, "物流很快质量", "the cut falls between CJK characters"),
    ("好评abc 很好" + "评" * 40, 5, "好评abc", "a run ends exactly at the cut"),
    ("好评abcdef很好" + "评" * 40, 4, "好评ab", "a word of plain letters is kept"),
    ("好评XYZabc很好" + "评" * 40, 4, "好评XY", "a word of capital letters is kept"),
    ("价格1999 元很好" + "评" * 40, 6, "价格1999", "a number that ends exactly at the cut is whole"),
    ("订单号ab12cd很好" + "评" * 40, 5, "订单号", "the split run holds a digit after the cut"),
    ("订单号12abcd很好" + "评" * 40, 6, "订单号", "the split run holds a digit before the cut"),
    ("联系ab@cd很好" + "评" * 40, 4, "联系", "the split run holds an @"),
    ("电话13812345678" + "评" * 40, 5, "电话", "the cut splits a placeholder"),
    ("好" + "a" * 100, 10, "好", "a run of letters runs past the window"),
    ("好" + "a" * 20, 10, "好" + "a" * 9, "a run of letters ends inside the window"),
    ("a" * 9 + "好" + "a" * 100, 9, "a" * 9, "a run ends just before the cut"),
]


@pytest.mark.parametrize(("text", "limit", "expected", "branch"), CUTS, ids=[row[3] for row in CUTS])
def test_each_cut_branch_keeps_exactly_what_it_should(text: str, limit: int, expected: str, branch: str) -> None:
    assert mask_and_cut(text, limit) == expected, branch
