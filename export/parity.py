"""Parity between the torch model and the exported ONNX files, measured on real-length texts.

Why measured and not assumed: tracing can bake a shape into the graph, fusions change the
arithmetic, and INT8 quantisation flipped 6.6% of the predictions of an undertrained
bert-base while a 4-layer model lost none (FINDINGS.md). So every bundle is checked on a
sample of texts, through the *serving* path (``models.serving.inference.Predictor``: clean_text,
tokenizer.json, length-sorted batches), against torch on the same token ids.

Figures per precision and head: max and mean absolute logit difference, argmax
agreement, max probability difference. Gates: FP32 max logit difference, INT8 argmax
agreement, optionally INT8 max probability difference.
"""

from __future__ import annotations

import csv
import math
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.export.source import ExportError, ExportSource
from shoppulse.models.serving.inference import Predictor, softmax
from shoppulse.models.serving.text import clean_text

# Review length in characters on the real data: median 36, p90 132 (FINDINGS.md).
# A log-normal with these quantiles: mu = ln 36, sigma = ln(132/36) / 1.2816.
_LENGTH_MU = math.log(36)
_LENGTH_SIGMA = math.log(132 / 36) / 1.2816
_MAX_GENERATED_LENGTH = 400


class ParityError(ExportError):
    """The exported graph does not agree with torch; ``report`` holds the figures."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ParityThresholds:
    fp32_max_abs_diff: float = 1e-4
    int8_min_argmax_agreement: float = 0.995
    int8_max_prob_diff: float | None = None
    # Not parity but a lost vocabulary (transformers 5 can silently build a 5-token vocab):
    # both sides would agree perfectly on garbage, so the [UNK] share of the texts is gated too.
    max_unk_rate: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_texts(csv_file: str | Path, column: str = "review", limit: int = 200, seed: int = 0) -> list[str]:
    """A seeded random sample of non-empty texts from a CSV column (``utf-8-sig``: BOMs happen)."""
    with open(csv_file, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise ExportError(f"{csv_file} has no column {column!r} (columns: {reader.fieldnames})")
        texts = [row[column] for row in reader if (row.get(column) or "").strip()]
    if not texts:
        raise ExportError(f"{csv_file} has no non-empty {column!r} values")
    if len(texts) > limit:
        texts = random.Random(seed).sample(texts, limit)
    return texts


def _is_cjk(token: str) -> bool:
    return len(token) == 1 and unicodedata.category(token) == "Lo"


def generate_texts(tokenizer: Any, count: int = 200, seed: int = 0) -> list[str]:
    """Texts of review-like lengths made of the tokenizer's own vocabulary.

    Chinese vocabularies give single-character tokens joined without spaces (like real
    reviews); other vocabularies give words joined by spaces. Lengths follow the real
    review length distribution, so some exceed ``max_length`` and exercise truncation.
    """
    rng = random.Random(seed)
    special = set(getattr(tokenizer, "all_special_tokens", []))
    vocab = [t for t in tokenizer.get_vocab() if t not in special and not t.startswith(("##", "[", "<"))]
    chars = sorted(t for t in vocab if _is_cjk(t))
    if len(chars) >= 20:
        pieces, joiner = chars, ""
    else:
        pieces = sorted(t.lstrip("Ġ▁") for t in vocab if t.lstrip("Ġ▁").isalpha()) or sorted(vocab)
        joiner = " "
    punctuation = ["，", "。", "！", "?", "~"]
    texts = []
    for _ in range(count):
        length = min(_MAX_GENERATED_LENGTH, max(1, round(rng.lognormvariate(_LENGTH_MU, _LENGTH_SIGMA))))
        words = [rng.choice(pieces) if rng.random() > 0.08 else rng.choice(punctuation) for _ in range(length)]
        texts.append(joiner.join(words))
    return texts


def torch_logits(
    source: ExportSource, texts: Sequence[str], max_length: int, batch_size: int = 32
) -> tuple[dict[str, np.ndarray], list[list[int]]]:
    """Reference logits from the torch module, on the HF tokenizer's ids of the cleaned texts."""
    import torch

    cleaned = [clean_text(t) for t in texts]
    encoded = source.tokenizer(cleaned, truncation=True, max_length=max_length)["input_ids"]
    n = len(encoded)
    result = {head: np.zeros((n, len(labels)), dtype=np.float32) for head, labels in source.heads.items()}
    order = sorted(range(n), key=lambda i: len(encoded[i]))
    pad = source.pad_token_id
    source.module.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.int64)
            mask = torch.zeros((len(chunk), width), dtype=torch.int64)
            for row, i in enumerate(chunk):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
            outputs = source.module(*[feeds[name] for name in source.input_names])
            for head, values in zip(source.heads, outputs, strict=True):
                result[head][chunk] = values.float().numpy()
    return result, [list(e) for e in encoded]


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per head: max/mean absolute logit difference, argmax agreement, max probability difference."""
    figures = {}
    for head, ref in reference.items():
        got = candidate[head]
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        prob_diff = np.abs(softmax(ref) - softmax(got))
        figures[head] = {
            "max_abs_logit_diff": float(diff.max()) if diff.size else 0.0,
            "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
            "argmax_agreement": float((ref.argmax(-1) == got.argmax(-1)).mean()) if len(ref) else 1.0,
            "max_prob_diff": float(prob_diff.max()) if prob_diff.size else 0.0,
        }
    return figures


def _failures(precision: str, figures: dict[str, dict[str, float]], thresholds: ParityThresholds) -> list[str]:
    reasons = []
    for head, f in figures.items():
        if precision == "fp32" and not f["max_abs_logit_diff"] <= thresholds.fp32_max_abs_diff:
            reasons.append(
                f"fp32 {head}: max |logit diff| {f['max_abs_logit_diff']:.3g} > {thresholds.fp32_max_abs_diff:g}"
            )
        if precision == "int8":
            if not f["argmax_agreement"] >= thresholds.int8_min_argmax_agreement:
                reasons.append(
                    f"int8 {head}: argmax agreement {f['argmax_agreement']:.2%} < "
                    f"{thresholds.int8_min_argmax_agreement:.2%} "
                    "(export with --quantize none, or train longer)"
                )
            limit = thresholds.int8_max_prob_diff
            if limit is not None and not f["max_prob_diff"] <= limit:
                reasons.append(f"int8 {head}: max probability diff {f['max_prob_diff']:.3g} > {limit:g}")
    return reasons


def unk_rate(tokenizer: Any, encoded: Sequence[Sequence[int]]) -> float:
    """Share of [UNK] among the non-special tokens of ``encoded``."""
    unk = tokenizer.unk_token_id
    special = set(getattr(tokenizer, "all_special_ids", []))
    tokens = [t for ids in encoded for t in ids if t not in special or t == unk]
    return sum(t == unk for t in tokens) / len(tokens) if tokens and unk is not None else 0.0


def check_parity(
    source: ExportSource,
    predictors: dict[str, Predictor],
    texts: Sequence[str],
    text_origin: str,
    max_length: int,
    thresholds: ParityThresholds,
) -> dict[str, Any]:
    """Run torch and every ONNX precision on ``texts``; return the report (``passed`` says it all)."""
    reference, torch_ids = torch_logits(source, texts, max_length)
    lengths = [len(ids) for ids in torch_ids]
    report: dict[str, Any] = {
        "samples": len(texts),
        "texts": text_origin,
        "token_length": {
            "median": float(np.median(lengths)) if lengths else 0.0,
            "max": int(max(lengths, default=0)),
            "truncated": int(sum(n >= max_length for n in lengths)),
        },
        "unk_rate": unk_rate(source.tokenizer, torch_ids),
        "thresholds": thresholds.as_dict(),
        "results": {},
        "failures": [],
    }
    if report["unk_rate"] > thresholds.max_unk_rate:
        report["failures"].append(
            f"{report['unk_rate']:.1%} of the tokens are [UNK] (limit {thresholds.max_unk_rate:.0%}): "
            "the tokenizer does not fit this model or this text"
        )
    for precision, predictor in predictors.items():
        served_ids = predictor.encode(texts)
        mismatched = sum(a != b for a, b in zip(served_ids, torch_ids, strict=True))
        if mismatched:
            report["failures"].append(
                f"{precision}: tokenizer.json tokenizes {mismatched} of {len(texts)} texts differently "
                "from the model's tokenizer"
            )
        figures = compare(reference, predictor.logits_encoded(served_ids))
        report["results"][precision] = figures
        report["failures"].extend(_failures(precision, figures, thresholds))
    report["passed"] = not report["failures"]
    return report


def format_report(report: dict[str, Any]) -> str:
    """The parity report as a small table, for the terminal."""
    lines = [
        f"parity on {report['samples']} texts ({report['texts']}); token length median "
        f"{report['token_length']['median']:.0f}, max {report['token_length']['max']}, "
        f"truncated {report['token_length']['truncated']}, [UNK] {report['unk_rate']:.2%}",
        f"{'precision':<9} {'head':<12} {'max|Δlogit|':>12} {'mean|Δlogit|':>13} {'argmax agree':>13} "
        f"{'max|Δprob|':>11}",
    ]
    for precision, heads in report["results"].items():
        for head, f in heads.items():
            lines.append(
                f"{precision:<9} {head:<12} {f['max_abs_logit_diff']:>12.3g} "
                f"{f['mean_abs_logit_diff']:>13.3g} "
                f"{f['argmax_agreement']:>13.2%} {f['max_prob_diff']:>11.3g}"
            )
    t = report["thresholds"]
    lines.append(
        f"gates: fp32 max|Δlogit| <= {t['fp32_max_abs_diff']:g}; int8 argmax agreement >= "
        f"{t['int8_min_argmax_agreement']:.2%}"
        + (f"; int8 max|Δprob| <= {t['int8_max_prob_diff']:g}" if t.get("int8_max_prob_diff") is not None else "")
    )
    lines.append("PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))
    return "\n".join(lines)
