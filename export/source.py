"""Load the model to export: a shoppulse multi-task folder or a plain ``*ForSequenceClassification``.

Whatever the source, the exporter sees one ``torch.nn.Module`` whose ``forward`` takes the
graph inputs positionally and returns a tuple of logits, one per head, plus the facts
the manifest needs (heads and labels, input names, family, config hash).

Models are loaded with ``attn_implementation="eager"``: SDPA attention exports to a graph
that ONNX Runtime's transformer optimiser cannot fuse (measured, see FINDINGS.md).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoppulse.models.serving.bundle import TASKS

# Position embeddings of RoBERTa-style models start after the padding index.
_PADDING_OFFSET_FAMILIES = {"roberta", "xlm-roberta", "camembert"}
KNOWN_HEADS = ("sentiment", "interest")


class ExportError(Exception):
    """The model cannot be exported as asked (wrong folder, task, length, ...)."""


@dataclass
class ExportSource:
    module: Any  # torch.nn.Module: forward(*inputs) -> tuple of logits in ``heads`` order
    tokenizer: Any  # a transformers fast tokenizer
    task: str
    heads: dict[str, list[str]]
    input_names: list[str]
    family: str
    config: dict[str, Any]
    config_sha256: str
    max_positions: int
    multitask: bool

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


def _wrapper(model: Any, input_names: list[str], head_indices: list[int] | None) -> Any:
    """A module with positional inputs in ``input_names`` order and a tuple output."""
    import torch

    class ExportWrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            kwargs = dict(zip(input_names, inputs, strict=True))
            if head_indices is None:  # plain *ForSequenceClassification
                return (self.model(**kwargs).logits,)
            outputs = self.model(**kwargs)
            return tuple(outputs[i] for i in head_indices)

    return ExportWrapper().eval()


def _accepts(module: Any, argument: str) -> bool:
    try:
        return argument in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _input_names(tokenizer: Any, encoder: Any) -> list[str]:
    """input_ids + attention_mask, plus token_type_ids when both tokenizer and model use them.

    DistilBERT takes no token_type_ids; RoBERTa tokenizers do not produce them. The graph's
    inputs (and so the manifest's) must say exactly what the model takes.
    """
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(tokenizer, "model_input_names", []) and _accepts(encoder, "token_type_ids"):
        names.append("token_type_ids")
    return names


def _max_positions(config: dict[str, Any]) -> int:
    positions = int(config.get("max_position_embeddings") or 512)
    if config.get("model_type") in _PADDING_OFFSET_FAMILIES:
        positions -= int(config.get("pad_token_id") or 1) + 1
    return positions


def _labels_from_config(config: Any) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    count = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(count)]


def load_source(model_dir: str | Path, task: str | None = None, labels: list[str] | None = None) -> ExportSource:
    """Load ``model_dir`` for export. ``task=None`` means: multi for a multi-task folder, else sentiment."""
    from transformers import AutoTokenizer

    from shoppulse.models.training.multitask import is_multitask_dir

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise ExportError(f"{path} is not a Hugging Face model directory (no config.json)")
    if task is not None and task not in TASKS:
        raise ExportError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    config_bytes = (path / "config.json").read_bytes()
    config = json.loads(config_bytes)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # transformers raises many kinds here
        raise ExportError(f"cannot load the tokenizer from {path}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(
            f"the tokenizer in {path} is not a fast tokenizer; serving needs tokenizer.json "
            "(save the tokenizer with a recent transformers to produce it)"
        )

    vocab_size = int(config.get("vocab_size") or 0)
    if vocab_size and len(tokenizer) > vocab_size:
        raise ExportError(
            f"the tokenizer in {path} has {len(tokenizer)} tokens but the model's embeddings only "
            f"{vocab_size}: ids beyond the table would crash or mislead; use the model's own tokenizer"
        )
    if is_multitask_dir(path):
        module, heads, input_names, task = _load_multitask(path, tokenizer, task, labels)
        multitask = True
    else:
        module, heads, input_names, task = _load_plain(path, tokenizer, task, labels)
        multitask = False
    return ExportSource(
        module=module,
        tokenizer=tokenizer,
        task=task,
        heads=heads,
        input_names=input_names,
        family=str(config.get("model_type", "unknown")),
        config=config,
        config_sha256=hashlib.sha256(config_bytes).hexdigest(),
        max_positions=_max_positions(config),
        multitask=multitask,
    )


def _load_multitask(
    path: Path, tokenizer: Any, task: str | None, labels: list[str] | None
) -> tuple[Any, dict[str, list[str]], list[str], str]:
    from shoppulse.models.training.multitask import load_multitask

    model = load_multitask(path, attn_implementation="eager")
    model.eval()
    all_heads = dict(model.labels)
    if labels:
        raise ExportError("--labels applies to plain classification models; a multi-task folder names its labels")
    task = task or "multi"
    if task == "multi":
        chosen = list(all_heads)
    elif task in all_heads:
        chosen = [task]
    else:
        raise ExportError(f"task {task!r} is not a head of this multi-task model (heads: {list(all_heads)})")
    head_indices = [model.head_names.index(h) for h in chosen]
    input_names = _input_names(tokenizer, model.encoder)
    module = _wrapper(model, input_names, head_indices)
    return module, {h: all_heads[h] for h in chosen}, input_names, task


def _load_plain(
    path: Path, tokenizer: Any, task: str | None, labels: list[str] | None
) -> tuple[Any, dict[str, list[str]], list[str], str]:
    from transformers import AutoModelForSequenceClassification

    task = task or "sentiment"
    if task == "multi":
        raise ExportError(
            f"{path} is a plain sequence-classification model with one head; "
            "pass --task sentiment or --task interest (multi is for shoppulse multi-task folders)"
        )
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager")
    except Exception as exc:
        raise ExportError(f"cannot load {path} as a sequence-classification model: {exc}") from exc
    model.eval()
    names = _labels_from_config(model.config)
    if labels:
        if len(labels) != len(names):
            raise ExportError(f"--labels gives {len(labels)} names but the model has {len(names)} outputs")
        names = list(labels)
    if len(names) < 2:
        raise ExportError(f"{path} has {len(names)} output label(s); a classifier head needs at least two")
    input_names = _input_names(tokenizer, model)
    return _wrapper(model, input_names, None), {task: names}, input_names, task
