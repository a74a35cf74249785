"""The rows of ``shoppulse bench model``: each one measured in a fresh process.

``measure(task)`` is the entry point of a spawned worker process: it loads one way of
running the model, warms it up (untimed), times one pass over the texts, and returns the
total time, per-batch latencies, the process's peak RSS and the argmax per head. A fresh
process per measurement means the peak RSS is that of a process doing only that row
(torch rows pay for torch, ONNX Runtime rows do not), and no row inherits another's
caches or thread pools.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.models.serving.text import clean_text

TOKENIZE = "tokenize"
PIPELINE_NAIVE = "pipeline_naive"
PIPELINE_BATCHED = "pipeline_b32"
TORCH_SORTED = "torch_sorted_b32"
ORT_FP32 = "ort_fp32_sorted_b32"
ORT_INT8 = "ort_int8_sorted_b32"
MODEL_ROWS = (PIPELINE_NAIVE, PIPELINE_BATCHED, TORCH_SORTED, ORT_FP32, ORT_INT8)
ALL_ROWS = (*MODEL_ROWS, TOKENIZE)
TORCH_ROWS = (PIPELINE_NAIVE, PIPELINE_BATCHED, TORCH_SORTED)
LABELS = {
    PIPELINE_NAIVE: "1. transformers pipeline, one text per call",
    PIPELINE_BATCHED: "2. transformers pipeline, batch_size=32",
    TORCH_SORTED: "3. torch eager, batches of 32 sorted by length",
    ORT_FP32: "4. ONNX Runtime FP32, sorted batches of 32",
    ORT_INT8: "5. ONNX Runtime INT8, sorted batches of 32 (serving)",
    TOKENIZE: "clean + tokenize only",
}
WARMUP_TEXTS = 64


@dataclass(frozen=True)
class RowTask:
    row: str
    bundle_dir: str
    texts_file: str
    threads: int
    batch_size: int = 32
    model_dir: str | None = None


@dataclass
class Timed:
    seconds: float
    batch_ms: list[float]
    argmax: dict[str, list[int]] | None = None


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of texts of similar length (shortest first), as serving does."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens the model computes when each batch is padded to its longest member."""
    return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches if batch)


def _time_batches(batches: Sequence[Any], run: Callable[[Any], None]) -> list[float]:
    latencies = []
    for batch in batches:
        started = time.perf_counter()
        run(batch)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


# --- ONNX Runtime rows and tokenization (no torch) ------------------------------------------------
def _ort(task: RowTask, texts: list[str], precision: str) -> Timed:
    """The serving path: sorted batches handed to the sessions one ahead, as the enrich stage does.

    The stage submits batch N before it collects batch N-1 (``Predictor.predict_encoded_async``),
    so the sessions go from one batch to the next without waiting for Python; this row does the
    same. Latency per batch is the model's own time (a session took its first slice → its last
    slice came back), comparable with the torch rows' calls; queueing behind the previous batch
    is not counted.
    """
    from shoppulse.models.serving.bundle import load_bundle
    from shoppulse.models.serving.inference import PendingResult, Predictor

    # The serving layout on the same CPUs as the torch rows: one single-threaded session per thread.
    predictor = Predictor(load_bundle(task.bundle_dir), precision=precision, intra_op_threads=1, sessions=task.threads)
    predictor.predict(texts[:WARMUP_TEXTS], batch_size=task.batch_size)
    heads = list(predictor.heads)
    argmax = {head: [0] * len(texts) for head in heads}
    latencies: list[float] = []

    def collect(batch: list[int], pending: PendingResult) -> None:
        probabilities = pending.result()
        latencies.append(pending.running_seconds * 1000.0)
        for head in heads:
            for i, value in zip(batch, probabilities[head].argmax(axis=1).tolist(), strict=True):
                argmax[head][i] = value

    started = time.perf_counter()
    encoded = predictor.encode(texts)
    previous: tuple[list[int], PendingResult] | None = None
    for batch in length_sorted_batches([len(ids) for ids in encoded], task.batch_size):
        pending = predictor.predict_encoded_async([encoded[i] for i in batch], batch_size=task.batch_size)
        if previous is not None:
            collect(*previous)
        previous = (batch, pending)
    if previous is not None:
        collect(*previous)
    return Timed(time.perf_counter() - started, latencies, argmax)


def _tokenize(task: RowTask, texts: list[str]) -> Timed:
    """Cleaning and tokenization exactly as ``Predictor.encode`` does, without loading a model."""
    from tokenizers import Tokenizer

    from shoppulse.models.serving.bundle import load_bundle

    bundle = load_bundle(task.bundle_dir, verify=False)
    tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=bundle.max_length)
    tokenizer.encode_batch_fast([clean_text(t) for t in texts[:WARMUP_TEXTS]])
    started = time.perf_counter()
    latencies = _time_batches(
        chunks(texts, task.batch_size), lambda batch: tokenizer.encode_batch_fast([clean_text(t) for t in batch])
    )
    return Timed(time.perf_counter() - started, latencies)


# --- torch rows -----------------------------------------------------------------------------------
def load_torch_model(model_dir: str, threads: int) -> tuple[Any, Any, list[str], dict[str, list[str]]]:
    """(module returning a tuple of logits per head, HF tokenizer, input names, heads) for a model folder.

    Loaded with the transformers default attention (SDPA), the fastest eager torch path,
    so the torch rows are the strongest honest baseline.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from shoppulse.models.training.multitask import is_multitask_dir, load_multitask

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if is_multitask_dir(model_dir):
        model = load_multitask(model_dir, attn_implementation=None)
        heads = dict(model.labels)
        module = model
    else:
        plain = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        config = plain.config
        heads = {"sentiment": [str(config.id2label[i]) for i in range(config.num_labels)]}

        def module(**kwargs: Any) -> tuple[Any, ...]:
            return (plain(**kwargs).logits,)

        model = plain
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names:
        import inspect

        forward = model.encoder.forward if hasattr(model, "encoder") else model.forward
        if "token_type_ids" in inspect.signature(forward).parameters:
            names.append("token_type_ids")
    return module, tokenizer, names, heads


def sentiment_view(model_dir: str, threads: int) -> Any:
    """A ``transformers`` text-classification pipeline over the model's first (sentiment) head.

    A shoppulse multi-task model is not a ``*ForSequenceClassification``, so it is wrapped in
    a ``PreTrainedModel`` whose logits are the first head's; the encoder (all the cost) and
    all heads still run on every call, exactly as in the other rows.
    """
    import copy

    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, pipeline
    from transformers.modeling_outputs import SequenceClassifierOutput

    from shoppulse.models.training.multitask import is_multitask_dir, load_multitask

    transformers.logging.disable_progress_bar()
    # The check for ``*ForSequenceClassification`` logs an error for the wrapper below; it works.
    transformers.logging.set_verbosity(transformers.logging.CRITICAL)
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not is_multitask_dir(model_dir):
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        return pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    multitask = load_multitask(model_dir, attn_implementation=None)
    first = next(iter(multitask.labels))
    config = copy.deepcopy(multitask.encoder.config)
    config.id2label = dict(enumerate(multitask.labels[first]))
    config.label2id = {label: i for i, label in config.id2label.items()}

    class FirstHeadView(PreTrainedModel):
        config_class = type(config)
        base_model_prefix = "multitask"
        _supports_sdpa = True
        _supports_attention_backend = True

        def __init__(self, cfg: Any, inner: Any) -> None:
            super().__init__(cfg)
            self.multitask = inner

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None, **_: Any) -> Any:
            return SequenceClassifierOutput(logits=self.multitask(input_ids, attention_mask, token_type_ids)[0])

    view = FirstHeadView(config, multitask).eval()
    return pipeline("text-classification", model=view, tokenizer=tokenizer, device="cpu")


def _pipeline(task: RowTask, texts: list[str], batched: bool, max_length: int) -> Timed:
    """The tutorial way: raw strings into ``pipeline(...)``; texts cleaned as serving cleans them."""
    pipe = sentiment_view(task.model_dir or "", task.threads)
    options = {"truncation": True, "max_length": max_length}
    pipe([clean_text(t) for t in texts[:WARMUP_TEXTS]], batch_size=task.batch_size if batched else 1, **options)
    started = time.perf_counter()
    if batched:
        latencies = _time_batches(
            chunks(texts, task.batch_size),
            lambda batch: pipe([clean_text(t) for t in batch], batch_size=task.batch_size, **options),
        )
    else:
        latencies = _time_batches(texts, lambda text: pipe(clean_text(text), **options))
    return Timed(time.perf_counter() - started, latencies)


def _torch_sorted(task: RowTask, texts: list[str], max_length: int) -> Timed:
    import torch

    module, tokenizer, names, heads = load_torch_model(task.model_dir or "", task.threads)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    argmax = {head: [0] * len(texts) for head in heads}

    def tensors(ids_list: Sequence[Sequence[int]]) -> dict[str, Any]:
        width = max(len(ids) for ids in ids_list)
        input_ids = torch.full((len(ids_list), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids_list), width), dtype=torch.long)
        for row, ids in enumerate(ids_list):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = torch.zeros_like(input_ids)
        return feed

    def encode(batch_texts: Sequence[str]) -> list[list[int]]:
        return tokenizer([clean_text(t) for t in batch_texts], truncation=True, max_length=max_length)["input_ids"]

    with torch.inference_mode():
        warm = encode(texts[:WARMUP_TEXTS])
        for batch in length_sorted_batches([len(ids) for ids in warm], task.batch_size):
            module(**tensors([warm[i] for i in batch]))
        started = time.perf_counter()
        encoded = encode(texts)
        batches = length_sorted_batches([len(ids) for ids in encoded], task.batch_size)

        def run(batch: list[int]) -> None:
            outputs = module(**tensors([encoded[i] for i in batch]))
            for head, logits in zip(heads, outputs, strict=True):
                for i, value in zip(batch, logits.argmax(dim=-1).tolist(), strict=True):
                    argmax[head][i] = value

        latencies = _time_batches(batches, run)
    return Timed(time.perf_counter() - started, latencies, argmax)


def measure(task: RowTask) -> dict[str, Any]:
    """Worker entry point: run one row once, return what the parent aggregates (JSON-safe)."""
    from shoppulse.models.serving.bundle import load_bundle

    texts = json.loads(Path(task.texts_file).read_text(encoding="utf-8"))
    max_length = load_bundle(task.bundle_dir, verify=False).max_length
    if task.row == TOKENIZE:
        timed = _tokenize(task, texts)
    elif task.row == ORT_FP32:
        timed = _ort(task, texts, "fp32")
    elif task.row == ORT_INT8:
        timed = _ort(task, texts, "int8")
    elif task.row in TORCH_ROWS:
        if not task.model_dir:
            raise ValueError(f"row {task.row} needs the Hugging Face model folder")
        if task.row == TORCH_SORTED:
            timed = _torch_sorted(task, texts, max_length)
        else:
            timed = _pipeline(task, texts, task.row == PIPELINE_BATCHED, max_length)
    else:
        raise ValueError(f"unknown row {task.row!r}")
    return {
        "row": task.row,
        "texts": len(texts),
        "seconds": timed.seconds,
        "batch_ms": timed.batch_ms,
        "peak_rss_mb": peak_rss_mb(),
        "argmax": timed.argmax,
    }


def gemm_rates(size: int = 2048, repeats: int = 3, threads: int = 2) -> dict[str, float | None]:
    """Best-of-``repeats`` matrix-multiply rates (GFLOP/s or GOPS): the machine's compute ceiling.

    FP32 through numpy (BLAS, its own thread count: all CPUs) and, when torch is installed,
    INT8 through ``torch._int_mm`` (int8 × int8 → int32, the kind of kernel dynamic INT8
    quantisation relies on) on ``threads`` threads.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    flops = 2.0 * size**3
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    rates: dict[str, float | None] = {"fp32_numpy_gflops": flops / best / 1e9, "int8_torch_gops": None}
    try:
        import torch

        torch.set_num_threads(threads)
        qa = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        qb = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        torch._int_mm(qa, qb)
        rates["int8_torch_gops"] = flops / min(_seconds(lambda: torch._int_mm(qa, qb)) for _ in range(repeats)) / 1e9
    except (ImportError, RuntimeError, AttributeError):
        pass
    return rates


def _seconds(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
