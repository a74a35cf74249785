"""One encoder, several classification heads: one forward pass per review for all tasks.

The on-disk format is a normal Hugging Face model directory (``save_pretrained`` of
the encoder, so any BERT-family encoder works: BERT, RoBERTa, ERNIE, ...) plus
``shoppulse_heads.json`` (head names → label names, pooling) and
``shoppulse_heads.safetensors`` (the head weights, and the optional n-gram bag's
embeddings under ``ngram.``). ``is_multitask_dir`` tells
the exporter which loader to use; plain ``*ForSequenceClassification`` folders
are handled by the exporter directly.

Needs torch and transformers (the ``train``/``export`` extras).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

HEADS_FILE = "shoppulse_heads.json"
HEADS_WEIGHTS = "shoppulse_heads.safetensors"


def is_multitask_dir(path: str | Path) -> bool:
    return (Path(path) / HEADS_FILE).is_file()


NGRAM_PREFIX = "ngram."
# concat: the bag's vector joins [CLS] before the heads. ensemble: the bag has its own heads,
# trained with their own loss too, and its logits are added to the encoder heads' logits.
NGRAM_MODES = ("concat", "ensemble")


class NgramBag(nn.Module):
    """fastText-style bag of token unigrams and hashed bigrams, averaged over the review.

    Why: a small BERT pretrained only on ~50k reviews learns word-level cues slowly, while a
    bag of (hashed) character bigrams — which for Chinese are mostly words — captures them
    at almost no cost. Its mean vector is concatenated to [CLS] before the heads. It reads
    the same ``input_ids``/``attention_mask`` as the encoder, so the ONNX graph keeps its
    inputs and the serving code does not change.
    """

    def __init__(
        self,
        vocab_size: int,
        buckets: int,
        dim: int,
        multiplier: int = 1_000_003,
        mode: str = "concat",
        head_sizes: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if mode not in NGRAM_MODES:
            raise ValueError(f"n-gram mode must be one of {NGRAM_MODES}, got {mode!r}")
        self.vocab_size, self.buckets, self.dim, self.multiplier = vocab_size, buckets, dim, multiplier
        self.mode = mode
        self.unigram = nn.Embedding(vocab_size, dim)
        self.bigram = nn.Embedding(buckets, dim)
        nn.init.normal_(self.unigram.weight, std=0.02)
        nn.init.normal_(self.bigram.weight, std=0.02)
        # "ensemble": the bag has its own heads and its logits are added to the encoder's.
        self.heads = nn.ModuleDict(
            {name: nn.Linear(dim, size) for name, size in (head_sizes or {}).items()} if mode == "ensemble" else {}
        )

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "buckets": self.buckets,
            "dim": self.dim,
            "multiplier": self.multiplier,
            "mode": self.mode,
        }

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(self.unigram.weight.dtype)
        total = (self.unigram(input_ids) * mask.unsqueeze(-1)).sum(dim=1)
        pair_ids = torch.remainder(input_ids[:, :-1] * self.multiplier + input_ids[:, 1:], self.buckets)
        pair_mask = mask[:, :-1] * mask[:, 1:]
        total = total + (self.bigram(pair_ids) * pair_mask.unsqueeze(-1)).sum(dim=1)
        count = mask.sum(dim=1, keepdim=True) + pair_mask.sum(dim=1, keepdim=True)
        return total / count.clamp(min=1.0)


class MultiTaskClassifier(nn.Module):
    """Encoder + one linear head per task on the [CLS] representation.

    ``forward`` returns a tuple of logits, one tensor ``[batch, n_labels]`` per head,
    in the order of ``head_names`` (ONNX export names them ``logits_<head>``). With an
    ``ngram`` bag the heads read ``[CLS] ⊕ bag`` instead of [CLS] alone.
    """

    def __init__(
        self,
        encoder: nn.Module,
        heads: dict[str, list[str]],
        dropout: float = 0.1,
        ngram: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("a multi-task model needs at least one head")
        self.encoder = encoder
        self.labels: dict[str, list[str]] = {name: list(labels) for name, labels in heads.items()}
        sizes = {name: len(labels) for name, labels in heads.items()}
        self.ngram = NgramBag(**ngram, head_sizes=sizes) if ngram else None
        concat = self.ngram is not None and self.ngram.mode == "concat"
        features = int(encoder.config.hidden_size) + (self.ngram.dim if concat else 0)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(features, len(labels)) for name, labels in heads.items()})

    @property
    def head_names(self) -> list[str]:
        return list(self.labels)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        encoder_logits, bag_logits = self.path_logits(input_ids, attention_mask, token_type_ids)
        if bag_logits is None:
            return encoder_logits
        return tuple(a + b for a, b in zip(encoder_logits, bag_logits, strict=True))

    def path_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
        """Logits of the encoder heads and, in ``ensemble`` mode, of the bag's own heads.

        Training supervises both paths separately as well as their sum, so each is a usable
        classifier on its own and the sum behaves as an ensemble.
        """
        kwargs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state[:, 0]
        bag_logits = None
        if self.ngram is not None:
            bag = self.ngram(input_ids, attention_mask).to(hidden.dtype)
            if self.ngram.mode == "concat":
                hidden = torch.cat([hidden, bag], dim=-1)
            else:
                bag = self.dropout(bag)
                bag_logits = tuple(self.ngram.heads[name](bag) for name in self.head_names)
        hidden = self.dropout(hidden)
        return tuple(self.heads[name](hidden) for name in self.head_names), bag_logits

    def save(self, out_dir: str | Path) -> None:
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out)
        meta: dict[str, Any] = {"heads": self.labels, "pooling": "cls"}
        if self.ngram is not None:
            meta["ngram"] = self.ngram.settings
        (out / HEADS_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        state = {k: v.detach().contiguous() for k, v in self.heads.state_dict().items()}
        if self.ngram is not None:
            state.update({NGRAM_PREFIX + k: v.detach().contiguous() for k, v in self.ngram.state_dict().items()})
        save_file(state, str(out / HEADS_WEIGHTS))


def load_multitask(model_dir: str | Path, attn_implementation: str | None = "eager") -> MultiTaskClassifier:
    """Load a directory written by ``MultiTaskClassifier.save``."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    path = Path(model_dir)
    meta = json.loads((path / HEADS_FILE).read_text(encoding="utf-8"))
    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    encoder = (
        AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
        if _takes_pooler(path)
        else AutoModel.from_pretrained(path, **kwargs)
    )
    model = MultiTaskClassifier(encoder, meta["heads"], ngram=meta.get("ngram"))
    state = load_file(str(path / HEADS_WEIGHTS))
    model.heads.load_state_dict({k: v for k, v in state.items() if not k.startswith(NGRAM_PREFIX)})
    if model.ngram is not None:
        model.ngram.load_state_dict(
            {k.removeprefix(NGRAM_PREFIX): v for k, v in state.items() if k.startswith(NGRAM_PREFIX)}
        )
    model.eval()
    return model


def _takes_pooler(path: Path) -> bool:
    """BERT-like encoders accept ``add_pooling_layer``; we never use the pooler."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return config.get("model_type") in {"bert", "roberta", "ernie", "xlm-roberta", "camembert"}
