"""One encoder, several classification heads: one forward pass per review for all tasks.

The on-disk format is a normal Hugging Face model directory (``save_pretrained`` of
the encoder, so any BERT-family encoder works: BERT, RoBERTa, ERNIE, ...) plus
``shoppulse_heads.json`` (head names → label names, pooling) and
``shoppulse_heads.safetensors`` (the head weights). ``is_multitask_dir`` tells
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


class MultiTaskClassifier(nn.Module):
    """Encoder + one linear head per task on the [CLS] representation.

    ``forward`` returns a tuple of logits, one tensor ``[batch, n_labels]`` per head,
    in the order of ``head_names`` (ONNX export names them ``logits_<head>``).
    """

    def __init__(self, encoder: nn.Module, heads: dict[str, list[str]], dropout: float = 0.1) -> None:
        super().__init__()
        if not heads:
            raise ValueError("a multi-task model needs at least one head")
        self.encoder = encoder
        self.labels: dict[str, list[str]] = {name: list(labels) for name, labels in heads.items()}
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, len(labels)) for name, labels in heads.items()})

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
        kwargs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state[:, 0]
        hidden = self.dropout(hidden)
        return tuple(self.heads[name](hidden) for name in self.head_names)

    def save(self, out_dir: str | Path) -> None:
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out)
        (out / HEADS_FILE).write_text(
            json.dumps({"heads": self.labels, "pooling": "cls"}, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        state = {k: v.detach().contiguous() for k, v in self.heads.state_dict().items()}
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
    encoder = AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs) if _takes_pooler(
        path
    ) else AutoModel.from_pretrained(path, **kwargs)
    model = MultiTaskClassifier(encoder, meta["heads"])
    model.heads.load_state_dict(load_file(str(path / HEADS_WEIGHTS)))
    model.eval()
    return model


def _takes_pooler(path: Path) -> bool:
    """BERT-like encoders accept ``add_pooling_layer``; we never use the pooler."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return config.get("model_type") in {"bert", "roberta", "ernie", "xlm-roberta", "camembert"}
