"""Serving-side inference: a bundle's ONNX model behind ``Predictor.predict(texts)``.

No torch and no transformers here: ONNX Runtime runs the graph and the ``tokenizers``
library reads the bundle's ``tokenizer.json`` (same fast tokenizer the exporter saved).

Why the batching looks like this: reviews vary from a few characters to hundreds, and
padding a batch to its longest member wastes most of the compute (on the real data,
sorting by length cut padding tokens from 12,276 to 7,008 per 100 texts). So texts are
sorted by token length, cut into sub-batches, each padded only to its own longest,
run, and the results put back in input order.

Sessions and threads: by default one single-threaded ONNX Runtime session per usable CPU
(``models.serving.cpu``: the container's quota), each running its own slice of the sorted texts,
instead of one session whose operators are split across all CPUs. At hidden size 192 an
operator is too small to split well: every one of the ~100 operators per batch ends in a
barrier where the faster thread waits for the slower, and on a machine shared with the
Kafka client, jieba or a broker one descheduled thread stalls the other (the side-by-side
numbers: docs/performance.md; ``shoppulse bench model`` row 5 is the serving path). ``intra_op_threads`` > 0 gives
each session that many threads (``sessions`` defaults to CPUs ÷ threads). One inter-op
thread and sequential execution (a BERT graph is a chain), full graph optimisation, no
spin-waiting. CUDA is used only when asked for (one session: the GPU parallelises inside
an operator) and ``onnxruntime-gpu`` provides it.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.models.serving.bundle import Bundle, BundleError, load_bundle
from shoppulse.models.serving.cpu import available_cpus
from shoppulse.models.serving.text import clean_text

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# Texts per session call when several sessions share a batch: small slices keep every
# session busy to the end of a batch (the longest texts come last) and fit the caches.
SLICE = 16


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float32, numerically stable."""
    scaled = logits.astype(np.float64) / float(temperature)
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def resolve_providers(providers: str | Sequence[str] | None) -> list[str]:
    """ONNX Runtime providers to use.

    ``None``/``"cpu"``: CPU only. ``"auto"``: CUDA first when installed, else CPU.
    ``"cuda"``: CUDA first, and an error when ``onnxruntime-gpu`` is not installed.
    A list is passed through (CPU appended as the fallback).
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if providers is None or providers == "cpu":
        return [CPU]
    if providers == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    if providers == "cuda":
        if CUDA not in available:
            raise RuntimeError(
                "CUDA was requested but this ONNX Runtime has no CUDAExecutionProvider; replace the CPU "
                "build with the GPU one (pip uninstall -y onnxruntime && pip install 'shoppulse[gpu]': both "
                "install the same `onnxruntime` module, so the CPU one must go first), or build the image "
                "with --build-arg ORT=gpu"
            )
        return [CUDA, CPU]
    if isinstance(providers, str):
        raise ValueError(f"unknown providers {providers!r}; use 'cpu', 'auto', 'cuda' or a list")
    chosen = list(providers)
    missing = [p for p in chosen if p not in available]
    if missing:
        raise RuntimeError(f"ONNX Runtime providers {missing} are not available here (have {available})")
    return chosen if CPU in chosen else [*chosen, CPU]


def session_layout(intra_op_threads: int = 0, sessions: int = 0, gpu: bool = False) -> tuple[int, int]:
    """(intra-op threads per session, sessions): by default one 1-thread session per usable CPU.

    On a GPU one session (the device parallelises inside each operator).
    """
    cpus = available_cpus()
    if gpu:
        return (intra_op_threads or cpus), (sessions or 1)
    threads = intra_op_threads if intra_op_threads > 0 else (max(1, cpus // sessions) if sessions > 0 else 1)
    return threads, (sessions if sessions > 0 else max(1, cpus // threads))


def session_options(intra_op_threads: int = 0) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads if intra_op_threads > 0 else available_cpus()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # No spin-waiting between operators: on 2 shared cores the spinning threads took the CPU the
    # Kafka client, jieba and the broker need (bench pipeline: p99 at 50% load 1,053 → 439 ms,
    # capacity 600 → 631 events/s, model-only unchanged).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


# Graph rewrites ONNX Runtime must not apply on the CPU. SkipLayerNormFusion turns each
# residual Add + LayerNormalization into one SkipLayerNormalization, whose CPU kernel (ORT 1.32)
# is ~6x slower than the two operators it replaces (16 x 36 tokens, 1 thread: 436 vs 68 us at
# hidden 192, 1,676 vs 262 us at 768). In the default INT8 bundle the 4 fused nodes took 26% of
# a forward pass; without the fusion a batch runs 1.27-1.33x faster at 12-128 tokens, and
# ``shoppulse bench model`` row 5 went from 2,685-2,854 to 3,274 reviews/s (docs/performance.md).
# On CUDA the fusion is kept: that is a different kernel, and no GPU was available to measure it.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def open_session(model_file: str | Path, options: Any, providers: Sequence[str]) -> Any:
    """An ONNX Runtime session with the graph rewrites that fit ``providers[0]``."""
    import onnxruntime as ort

    disabled = list(CPU_DISABLED_OPTIMIZERS) if providers[0] == CPU else []
    return ort.InferenceSession(str(model_file), options, providers=list(providers), disabled_optimizers=disabled)


def _pad_id(bundle: Bundle, tokenizer: Any) -> int:
    if bundle.pad_token_id is not None:
        return bundle.pad_token_id
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


class Predictor:
    """Probabilities per head for a batch of raw review texts, in input order."""

    def __init__(
        self,
        bundle: Bundle,
        precision: str = "int8",
        intra_op_threads: int = 0,
        providers: str | Sequence[str] | None = None,
        sessions: int = 0,
    ) -> None:
        from tokenizers import Tokenizer

        self.bundle = bundle
        self.precision = bundle.resolved_precision(precision)
        self.model_file: Path = bundle.model_path(precision)
        self.providers = resolve_providers(providers)
        threads, count = session_layout(intra_op_threads, sessions, gpu=self.providers[0] != CPU)
        self._sessions = [open_session(self.model_file, session_options(threads), self.providers) for _ in range(count)]
        self.session = self._sessions[0]
        self.intra_op_threads = int(self.session.get_session_options().intra_op_num_threads)
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for session in self._sessions:
            self._idle.put(session)
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="ort")
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if sorted(graph_inputs) != sorted(bundle.input_names):
            raise BundleError(
                f"{self.model_file.name}: graph inputs {graph_inputs} differ from the manifest's {bundle.input_names}"
            )
        graph_outputs = {o.name for o in self.session.get_outputs()}
        missing = [o for o in bundle.output_names if o not in graph_outputs]
        if missing:
            raise BundleError(f"{self.model_file.name}: graph lacks outputs {missing}")
        self.heads = dict(bundle.heads)
        self.tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=bundle.max_length)
        self.pad_id = _pad_id(bundle, self.tokenizer)
        # encode_batch_fast (tokenizers >= 0.21) skips computing character offsets we never use.
        self._encode_batch = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    @classmethod
    def from_dir(cls, path: str | Path, verify: bool = True, **kwargs: Any) -> Predictor:
        return cls(load_bundle(path, verify=verify), **kwargs)

    @property
    def active_provider(self) -> str:
        return self.session.get_providers()[0]

    # --- tokenization -----------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids (with special tokens, truncated at ``max_length``) of the cleaned texts."""
        if not texts:
            return []
        encodings = self._encode_batch([clean_text(t) for t in texts])
        return [e.ids for e in encodings]

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Length in tokens each text will have in the model (batchers sort by it)."""
        return [len(ids) for ids in self.encode(texts)]

    # --- running the graph ------------------------------------------------------------------
    def _feed(self, batch: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.bundle.input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return feed

    def logits_encoded(self, encoded: Sequence[Sequence[int]], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Raw logits per head for already-tokenized inputs, in input order.

        Texts are sorted by length and cut into batches of at most ``batch_size``; with several
        sessions, into slices of at most ``SLICE`` spread over them (longest first), so even one
        small micro-batch keeps every session busy.
        """
        return self._launch(encoded, batch_size, background=False).result()

    def predict_encoded(self, encoded: Sequence[Sequence[int]], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head for already-tokenized inputs."""
        return self._calibrated(self.logits_encoded(encoded, batch_size))

    def predict_encoded_async(self, encoded: Sequence[Sequence[int]], batch_size: int = 32) -> PendingResult:
        """``predict_encoded``, but returns at once: the slices queue on the sessions' threads.

        Slices of successive calls queue behind each other, so the sessions go from one batch
        to the next without waiting for the caller (the enrich stage finishes the previous
        batch meanwhile); ``.result()`` gives the probabilities.
        """
        return self._launch(encoded, batch_size, background=True, then=self._calibrated)

    def _calibrated(self, logits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {head: softmax(values, self.bundle.temperature.get(head, 1.0)) for head, values in logits.items()}

    def _launch(
        self,
        encoded: Sequence[Sequence[int]],
        batch_size: int,
        background: bool,
        then: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
    ) -> PendingResult:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        n = len(encoded)
        result = {head: np.zeros((n, len(labels)), dtype=np.float32) for head, labels in self.heads.items()}
        pending = PendingResult(result, then)
        if n == 0:
            return pending
        order = sorted(range(n), key=lambda i: len(encoded[i]))
        size = batch_size if self.sessions == 1 else max(1, min(batch_size, SLICE, math.ceil(n / self.sessions)))
        chunks = [order[start : start + size] for start in range(0, n, size)]
        output_names = [f"logits_{head}" for head in self.heads]

        def run(chunk: list[int]) -> None:
            feed = self._feed([encoded[i] for i in chunk])
            session = self._idle.get()
            if pending.running_at is None:
                pending.running_at = time.perf_counter()
            try:
                outputs = session.run(output_names, feed)  # releases the GIL while the graph runs
            finally:
                self._idle.put(session)
            for head, values in zip(self.heads, outputs, strict=True):
                result[head][chunk] = values
            pending.finished_at = time.perf_counter()

        if not background and (self.sessions == 1 or len(chunks) == 1):
            for chunk in chunks:
                run(chunk)
        else:
            pending.futures = [self._pool.submit(run, chunk) for chunk in reversed(chunks)]
        return pending

    def logits(self, texts: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
        return self.logits_encoded(self.encode(texts), batch_size)

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Per head an ``[len(texts), n_labels]`` float32 array of probabilities, in input order."""
        return self.predict_encoded(self.encode(texts), batch_size)


class PendingResult:
    """Per-head arrays that the sessions' threads fill; ``result()`` waits for every slice."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        then: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
    ) -> None:
        self.arrays = arrays
        self.then = then
        self.futures: list[Future[None]] = []
        self.started_at = time.perf_counter()
        self.finished_at = self.started_at  # when the last slice came back (set by the slices)
        self.running_at: float | None = None  # when a session took the first slice (set by the slices)

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def result(self, timeout: float | None = None) -> dict[str, np.ndarray]:
        for future in self.futures:
            future.result(timeout)  # re-raises a slice's error here
        return self.then(self.arrays) if self.then else self.arrays

    @property
    def seconds(self) -> float:
        """Submission to the last slice's completion (queueing behind an earlier batch included)."""
        return max(0.0, self.finished_at - self.started_at)

    @property
    def running_seconds(self) -> float:
        """First slice taken by a session to the last slice's completion: the model's own time."""
        return max(0.0, self.finished_at - (self.running_at if self.running_at is not None else self.started_at))
