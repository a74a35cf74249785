"""Tiny randomly initialised models and a character vocabulary, built in the test (no downloads).

Shared by the export tests and the serving-side tests in ``tests/unit/models`` (which need
a real bundle to load). Everything here is small enough to export in about a second.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Characters frequent in reviews, plus two disjoint sets used by the separable toy task.
COMMON = list("的一是了我不在人有这个上们来到他大中说为和你也很好就都还没买用东西质量手机物流快递")
POSITIVE_CHARS = list("赞棒优爽美喜爱满意值推荐舒服漂亮")
NEGATIVE_CHARS = list("差烂坏破假贵慢退垃圾失望糟糕后悔")
ASCII = list("abcdefghijklmnopqrstuvwxyz0123456789")
PUNCTUATION = list("，。！？!?,.~")
FAMILIES = ("bert", "roberta", "distilbert", "albert", "ernie")
# Random weights give near-tied logits, so whether INT8 keeps the FP32 argmax depends on the CPU's
# integer kernels (a random 10-way head agreed on 2 of 32 texts on an AVX2-only AMD EPYC, on all of
# them elsewhere): INT8 argmax agreement means nothing for a random model, and the gate is off for
# them. FP32 keeps the real 1e-4 gate; the INT8 gate is exercised on a fine-tuned model in
# test_finetuned.py.
RANDOM_MODEL_GATES = {"int8_min_argmax_agreement": 0.0}

INTEREST_LABELS = ["书籍", "平板", "手机", "计算机", "水果", "洗发水", "热水器", "蒙牛", "衣服", "酒店"]


def vocabulary() -> list[str]:
    seen: dict[str, None] = {}
    for token in SPECIALS + COMMON + POSITIVE_CHARS + NEGATIVE_CHARS + ASCII + PUNCTUATION:
        seen.setdefault(token, None)
    return list(seen)


def save_tokenizer(out_dir: Path) -> Any:
    """A BERT WordPiece fast tokenizer over ``vocabulary()``, saved as a Hugging Face folder."""
    from transformers import BertTokenizerFast

    vocab = vocabulary()
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)})
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def tiny_config(family: str, num_labels: int = 2, labels: list[str] | None = None) -> Any:
    from transformers import AlbertConfig, BertConfig, DistilBertConfig, ErnieConfig, RobertaConfig

    vocab_size = len(vocabulary())
    id2label = {i: name for i, name in enumerate(labels)} if labels else None
    extra: dict[str, Any] = {"num_labels": len(labels) if labels else num_labels, "pad_token_id": 0}
    if id2label:
        extra["id2label"] = id2label
        extra["label2id"] = {name: i for i, name in id2label.items()}
    common = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 160,
        **extra,
    }
    if family == "bert":
        return BertConfig(**common)
    if family == "ernie":
        return ErnieConfig(**common)
    if family == "roberta":
        # Position ids start after the padding index, so 2 more positions than tokens.
        return RobertaConfig(**{**common, "max_position_embeddings": 162, "type_vocab_size": 1})
    if family == "albert":
        return AlbertConfig(**common, embedding_size=16)
    if family == "distilbert":
        return DistilBertConfig(
            vocab_size=vocab_size,
            dim=32,
            n_layers=2,
            n_heads=2,
            hidden_dim=64,
            max_position_embeddings=160,
            **extra,
        )
    raise ValueError(family)


def save_classifier(out_dir: Path, family: str = "bert", seed: int = 0, labels: list[str] | None = None) -> Path:
    """A randomly initialised ``*ForSequenceClassification`` with its tokenizer, saved to ``out_dir``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, labels=labels))
    model.save_pretrained(str(out_dir))
    save_tokenizer(out_dir)
    return out_dir


def save_multitask(
    out_dir: Path, family: str = "bert", seed: int = 0, heads: dict[str, list[str]] | None = None
) -> Path:
    """A ``MultiTaskClassifier`` (by default sentiment + 10-way interest) over a tiny encoder."""
    import torch
    from transformers import AutoModel

    from shoppulse.models.training.multitask import MultiTaskClassifier

    torch.manual_seed(seed)
    encoder = AutoModel.from_config(tiny_config(family))
    heads = heads or {"sentiment": ["negative", "positive"], "interest": INTEREST_LABELS}
    model = MultiTaskClassifier(encoder, heads)
    model.save(out_dir)
    save_tokenizer(out_dir)
    return out_dir


def toy_reviews(count: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """A separable toy sentiment task: label 1 texts carry positive characters, label 0 negative ones.

    Lengths vary from a few to ~150 characters so batches mix lengths and some truncate.
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        label = rng.randint(0, 1)
        marked = POSITIVE_CHARS if label else NEGATIVE_CHARS
        length = rng.choice([4, 8, 16, 30, 60, 150])
        chars = [rng.choice(marked) if rng.random() < 0.3 else rng.choice(COMMON) for _ in range(length)]
        chars[0] = rng.choice(marked)
        texts.append("".join(chars))
        labels.append(label)
    return texts, labels


def fine_tune(model_dir: Path, steps: int = 30, seed: int = 0) -> float:
    """Train the saved BERT classifier in ``model_dir`` on the toy task; return held-out accuracy."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    texts, labels = toy_reviews(steps * 16, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = slice(step * 16, (step + 1) * 16)
        encoded = tokenizer(texts[batch], padding=True, truncation=True, max_length=32, return_tensors="pt")
        loss = model(**encoded, labels=torch.tensor(labels[batch])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    held_texts, held_labels = toy_reviews(200, seed=seed + 1)
    with torch.no_grad():
        encoded = tokenizer(held_texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        predicted = model(**encoded).logits.argmax(-1)
    model.save_pretrained(str(model_dir))
    return float((predicted == torch.tensor(held_labels)).float().mean())
