"""Whole-word masking: jieba words are masked as a unit, at about the asked rate."""

import numpy as np

from shoppulse.models.training.tokenizer import train_wordpiece
from shoppulse.models.training.wwm import IGNORE_INDEX, mask_whole_words, word_ids_for
from tests.unit.models.synthetic_reviews import rows

MASK, VOCAB, FIRST = 4, 500, 5


def test_word_ids_group_the_characters_of_a_jieba_word() -> None:
    tokenizer = train_wordpiece(["我们喜欢北京天安门 hello"] * 3, vocab_size=200, min_frequency=1)
    text = "我们喜欢北京天安门 hello"
    encoding = tokenizer.encode(text)
    words = word_ids_for(text, encoding.offsets, encoding.special_tokens_mask)
    assert words[0] == -1 and words[-1] == -1  # [CLS], [SEP]
    by_token = dict(zip(encoding.tokens[1:-1], words[1:-1], strict=True))
    assert by_token["我"] == by_token["们"]  # 我们 is one word
    assert by_token["北"] == by_token["京"]
    assert by_token["我"] != by_token["喜"]


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(FIRST, VOCAB, size=(8, 40))
    words = np.repeat(np.arange(20), 2)[None, :].repeat(8, axis=0)  # every word is two tokens
    words[:, 0] = -1
    words[:, -5:] = -1  # padding
    return ids, words


def test_masks_whole_words_only_and_leaves_special_tokens_alone() -> None:
    ids, words = _batch()
    masked, labels = mask_whole_words(ids, words, np.random.default_rng(1), MASK, VOCAB, FIRST, mask_prob=0.15)
    picked = labels != IGNORE_INDEX
    assert not picked[words < 0].any()
    for row in range(ids.shape[0]):
        for word in np.unique(words[row][picked[row]]):
            assert picked[row][words[row] == word].all(), "a word was masked only in part"
    assert (labels[picked] == ids[picked]).all()
    assert (masked[~picked] == ids[~picked]).all()


def test_rate_and_replacement_mix_are_close_to_bert() -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(FIRST, VOCAB, size=(400, 60))
    words = np.arange(60)[None, :].repeat(400, axis=0)
    masked, labels = mask_whole_words(ids, words, rng, MASK, VOCAB, FIRST, mask_prob=0.15)
    picked = labels != IGNORE_INDEX
    assert abs(picked.mean() - 0.15) < 0.01
    share_mask = (masked[picked] == MASK).mean()
    share_same = (masked[picked] == ids[picked]).mean()
    assert 0.75 < share_mask < 0.85
    assert 0.07 < share_same < 0.14  # 10% kept + random draws that hit the same id


def test_same_seed_same_masks() -> None:
    ids, words = _batch()
    first = mask_whole_words(ids, words, np.random.default_rng(5), MASK, VOCAB, FIRST)
    second = mask_whole_words(ids, words, np.random.default_rng(5), MASK, VOCAB, FIRST)
    assert all((a == b).all() for a, b in zip(first, second, strict=True))


def test_real_looking_reviews_get_word_ids_for_every_normal_token() -> None:
    texts = [row["review"] for row in rows(20, seed=1)]
    tokenizer = train_wordpiece(texts, vocab_size=300, min_frequency=1)
    for text in texts:
        from shoppulse.models.serving.text import clean_text

        cleaned = clean_text(text)
        encoding = tokenizer.encode(cleaned)
        words = word_ids_for(cleaned, encoding.offsets, encoding.special_tokens_mask)
        normal = [w for w, special in zip(words, encoding.special_tokens_mask, strict=True) if not special]
        assert min(normal) >= 0
