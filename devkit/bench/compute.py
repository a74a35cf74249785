"""How many FLOPs a review costs, so measured speed can be compared with the hardware.

A BERT layer on a sequence of ``s`` tokens with hidden size ``h`` and feed-forward size
``f`` multiplies: Q, K, V and output projections ``4 · 2·s·h²``, the feed-forward
``2 · 2·s·h·f``, and attention scores and mixing ``2 · 2·s²·h``. Embedding lookups,
LayerNorm, softmax and the tiny heads are not matrix multiplies and are left out (they
are what keeps real speed below the GEMM ceiling).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    ffn: int

    @classmethod
    def from_config(cls, config: dict) -> EncoderShape:
        layers = config.get("num_hidden_layers", config.get("n_layers"))
        hidden = config.get("hidden_size", config.get("dim"))
        ffn = config.get("intermediate_size", config.get("hidden_dim"))
        if not (layers and hidden and ffn):
            raise ValueError("config lacks num_hidden_layers / hidden_size / intermediate_size")
        return cls(int(layers), int(hidden), int(ffn))

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> EncoderShape:
        return cls.from_config(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))


def flops_per_sequence(shape: EncoderShape, tokens: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of the encoder's matrix products for one sequence."""
    s, h, f = float(tokens), float(shape.hidden), float(shape.ffn)
    per_layer = 8 * s * h * h + 4 * s * h * f + 4 * s * s * h
    return shape.layers * per_layer


def flops_per_review_batched(shape: EncoderShape, lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Mean FLOPs per review when each batch is padded to its longest member (what really runs)."""
    total = sum(len(b) * flops_per_sequence(shape, max(lengths[i] for i in b)) for b in batches if b)
    return total / max(1, len(lengths))
