"""The trained WordPiece vocabulary: CJK as characters, Latin as word pieces, and the same ids
from ``tokenizers`` (serving) and ``transformers`` (training/export) after a save/load."""

from pathlib import Path

import pytest

from shoppulse.models.training.tokenizer import (
    SPECIAL_TOKENS,
    load_tokenizer,
    save_hf_tokenizer,
    train_wordpiece,
    unk_rate,
)
from tests.unit.models.synthetic_reviews import rows

TEXTS = [row["review"] for row in rows(300, seed=3)] + ["batteries charging chargers"] * 5


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = train_wordpiece(TEXTS, vocab_size=400, min_frequency=1)
    return save_hf_tokenizer(tokenizer, tmp_path_factory.mktemp("tok"), model_max_length=64)


def test_special_tokens_come_first_and_vocab_txt_matches_ids(saved: Path) -> None:
    tokenizer = load_tokenizer(saved)
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    lines = (saved / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]


def test_cjk_is_split_into_characters_and_latin_into_word_pieces(saved: Path) -> None:
    tokenizer = load_tokenizer(saved)
    tokens = tokenizer.encode("手机很好 iPhone12").tokens
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[1:5] == ["手", "机", "很", "好"]
    latin = [t for t in tokens[5:-1]]
    assert "".join(t.removeprefix("##") for t in latin) == "iphone12"  # lower-cased pieces
    assert any(t.startswith("##") for t in latin) or len(latin) == 1


def test_round_trip_through_transformers_gives_identical_ids(saved: Path) -> None:
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    ours = load_tokenizer(saved)
    theirs = AutoTokenizer.from_pretrained(str(saved))
    assert theirs.is_fast
    for text in [*TEXTS[:20], "质量不错!! 5000mah"]:
        assert theirs(text)["input_ids"] == ours.encode(text).ids
    assert ours.decode(ours.encode("手机很好").ids) == "手 机 很 好"


def test_vocabulary_covers_its_training_texts(saved: Path) -> None:
    tokenizer = load_tokenizer(saved)
    assert unk_rate(tokenizer, TEXTS) == 0.0
    assert unk_rate(tokenizer, ["龘"]) == 1.0  # never seen: [UNK], and the measure shows it
