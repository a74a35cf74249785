"""A WordPiece vocabulary trained on the reviews, saved in the standard Hugging Face format.

Chinese BERT splits CJK text into single characters and Latin text / numbers into word
pieces; we do the same with the ``tokenizers`` BERT normaliser and pre-tokeniser, so a
vocabulary of a few thousand entries covers the data (small embeddings keep the bundle and
the model small). The result is a ``tokenizer.json`` (what serving loads with the
``tokenizers`` library) plus ``vocab.txt`` / ``tokenizer_config.json`` so ``transformers``
``AutoTokenizer.from_pretrained(dir)`` loads it offline too.

Texts are passed through ``clean_text`` before training, exactly as they are before encoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from shoppulse.models.serving.text import clean_text

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_FILE = "tokenizer.json"


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2):  # type: ignore[no-untyped-def]
    """Train a BERT-style WordPiece tokenizer (``tokenizers.Tokenizer``) on cleaned texts."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        # Rare characters beyond this become [UNK]; 6,000 covers every CJK character seen twice.
        limit_alphabet=6000,
    )
    tokenizer.train_from_iterator((clean_text(text) for text in texts), trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def save_hf_tokenizer(tokenizer, out_dir: str | Path, model_max_length: int = 128) -> Path:  # type: ignore[no-untyped-def]
    """Write ``tokenizer.json``, ``vocab.txt`` and the ``transformers`` config files into ``out_dir``.

    ``vocab.txt`` is written by hand (ids in order) rather than via ``BertTokenizerFast(vocab_file=)``,
    which transformers 5 silently ignores.
    """
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / TOKENIZER_FILE))
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab, key=vocab.__getitem__)
    (out / "vocab.txt").write_text("\n".join(by_id) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "tokenize_chinese_chars": True,
        "strip_accents": False,
        "model_max_length": model_max_length,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    special = {name: config[name] for name in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return out


def load_tokenizer(path: str | Path):  # type: ignore[no-untyped-def]
    """Load ``tokenizer.json`` from a directory (or the file itself) with the ``tokenizers`` library."""
    from tokenizers import Tokenizer

    path = Path(path)
    return Tokenizer.from_file(str(path / TOKENIZER_FILE if path.is_dir() else path))


def copy_hf_tokenizer(src_dir: str | Path, out_dir: str | Path) -> Path:
    """Bring a user's base-model tokenizer along as ``tokenizer.json`` (needs transformers)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(src_dir))
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{src_dir}: needs a fast tokenizer (tokenizer.json) for ONNX serving")
    tokenizer.save_pretrained(str(out_dir))
    return Path(out_dir)


def unk_rate(tokenizer, texts: Iterable[str]) -> float:  # type: ignore[no-untyped-def]
    """Share of [UNK] among non-special tokens: a tokenizer that silently lost its vocabulary shows here."""
    unk_id = tokenizer.token_to_id("[UNK]")
    total = unknown = 0
    for encoding in tokenizer.encode_batch([clean_text(text) for text in texts], add_special_tokens=False):
        total += len(encoding.ids)
        unknown += sum(1 for token_id in encoding.ids if token_id == unk_id)
    return unknown / total if total else 0.0
