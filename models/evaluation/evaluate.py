"""``shoppulse evaluate``: score a bundle on a labelled CSV through the serving ``Predictor``.

The numbers must be the ones consumers will see, so the bundle runs through the very code
the enrich stage uses (``models.serving.inference.Predictor``: cleaning, ``tokenizer.json``,
truncation, length-sorted batches, INT8 ONNX, calibrated softmax). Human-readable lines come
first; the last line is one JSON object
``{"task", "n", "accuracy", "macro_f1", "reviews_per_s"}`` for scripts.

Any CSV works as long as it has ``review`` plus ``label`` (0/1, sentiment) or ``cat`` (fine
category, interest). ``--task aspects`` reads a JSON-lines aspect set instead (default: the
project's own, ``models/data/eval/aspects.jsonl``; see ``models.evaluation.aspect_eval``).
``reviews_per_s`` times ``Predictor.predict`` over the whole file,
tokenization included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.models.evaluation.data_io import read_reviews
from shoppulse.models.serving.bundle import DEFAULT_BUNDLE

TASKS = ("sentiment", "interest", "aspects")
DEFAULT_ASPECT_SET = Path(__file__).resolve().parents[1] / "data" / "eval" / "aspects.jsonl"
SENTIMENT_NAMES = ["negative", "positive"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy / macro-F1 / reviews/s of a bundle on a labelled CSV (last line: JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle",
        type=Path,
        default=DEFAULT_BUNDLE,
        help="bundle folder (manifest.json, ONNX, tokenizer; default: the packaged bundle)",
    )
    parser.add_argument(
        "--data", type=Path, help="CSV with review plus label (sentiment) or cat; JSON lines for --task aspects"
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--precision", default="int8", help="int8 (default) or fp32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: CPU quota)")
    parser.add_argument(
        "--robustness", action="store_true", help="also report accuracy on first-32-character and noisy copies"
    )


def label_indices(task: str, rows: Sequence[Any], head_labels: Sequence[str]) -> np.ndarray:
    """Gold label of each row as an index into the bundle's label list for ``task``."""
    if task == "sentiment":
        values = [row.label for row in rows]
        if any(v is None for v in values):
            raise ValueError("sentiment evaluation needs a 'label' column (0 negative, 1 positive) on every row")
        if list(head_labels) == SENTIMENT_NAMES or set(head_labels) == set(SENTIMENT_NAMES):
            return np.asarray([list(head_labels).index(SENTIMENT_NAMES[int(v)]) for v in values], dtype=np.int64)
        return np.asarray([int(v) for v in values], dtype=np.int64)
    values = [row.cat for row in rows]
    index = {name: i for i, name in enumerate(head_labels)}
    unknown = sorted({v for v in values if v not in index}, key=str)
    if unknown:
        raise ValueError(f"categories {unknown} are not labels of this bundle ({', '.join(head_labels)})")
    return np.asarray([index[v] for v in values], dtype=np.int64)


def macro_f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in gold or predictions.

    numpy only (same definition as scikit-learn's ``average="macro"``): evaluate runs where only
    the serving dependencies are installed.
    """
    f1s = []
    for label in np.union1d(gold, predicted):
        tp = float(np.sum((predicted == label) & (gold == label)))
        denominator = float(np.sum(predicted == label) + np.sum(gold == label))
        f1s.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


def scores(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1."""
    if not len(gold):
        return {"accuracy": 0.0, "macro_f1": 0.0}
    return {
        "accuracy": round(float((predicted == gold).mean()), 4),
        "macro_f1": round(macro_f1(predicted, gold), 4),
    }


def score_predictor(predictor: Any, texts: Sequence[str], gold: np.ndarray, head: str, batch_size: int = 32) -> dict:
    """Accuracy, macro-F1 and throughput of one head of a ``Predictor`` on ``texts``."""
    started = time.perf_counter()
    probs = predictor.predict(list(texts), batch_size=batch_size)[head]
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = scores(probs.argmax(axis=1), gold)
    result["reviews_per_s"] = round(len(texts) / elapsed, 1) if elapsed > 0 else 0.0
    return result


def head_for(task: str, heads: dict[str, list[str]]) -> str:
    if task in heads:
        return task
    if len(heads) == 1:
        return next(iter(heads))  # a single-task bundle: its one head answers the task
    raise ValueError(f"the bundle has no {task!r} head (heads: {', '.join(heads)})")


def run_aspects(args: argparse.Namespace) -> int:
    """``--task aspects``: per-aspect and overall accuracy and macro-F1 of clause verdicts."""
    from shoppulse.models.evaluation.aspect_eval import load_mentions, score_mentions
    from shoppulse.models.serving.bundle import BundleError, load_bundle
    from shoppulse.models.serving.inference import Predictor
    from shoppulse.models.serving.keywords import load_aspects

    data = args.data or DEFAULT_ASPECT_SET
    try:
        bundle = load_bundle(args.bundle)
        predictor = Predictor(bundle, precision=args.precision, intra_op_threads=args.threads)
        head = head_for("sentiment", dict(bundle.heads))
        mentions = load_mentions(data, load_aspects())
    except (BundleError, ValueError, OSError) as exc:
        print(f"shoppulse evaluate: {exc}", file=sys.stderr)
        return 2
    labels = list(bundle.heads[head])
    if set(labels) != {"negative", "positive"}:
        print(f"shoppulse evaluate: the {head!r} head's labels are {labels}, not negative/positive", file=sys.stderr)
        return 2
    probs = predictor.predict([m.clause for m in mentions], batch_size=args.batch_size)[head]
    threshold = bundle.clause_threshold  # decided as enrich decides a clause (models.serving.clauses)
    p_positive = probs[:, labels.index("positive")]
    result = score_mentions(mentions, ["positive" if p >= threshold else "negative" for p in p_positive])
    result["clause_threshold"] = threshold
    print(f"bundle {bundle.name} {bundle.version} ({predictor.precision}, {predictor.intra_op_threads} threads)")
    print(f"aspects: {result['n']} mentions with a verdict, {result['none']['n']} without, from {data}")
    print(f"clause threshold on p_positive: {threshold}")
    for aspect, accuracy in result["per_aspect"].items():
        print(f"  {aspect}: accuracy {accuracy:.4f}")
    print(f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  errors {result['errors']}")
    print(f"mentions without a verdict, judged anyway: {result['none']['judged']}")
    print(json.dumps({"task": "aspects", **result}, ensure_ascii=False))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.task == "aspects":
        return run_aspects(args)
    if args.data is None:
        print(f"shoppulse evaluate: --task {args.task} needs --data CSV", file=sys.stderr)
        return 2
    from shoppulse.models.evaluation.perturb import noisy_copy, truncate
    from shoppulse.models.serving.bundle import BundleError, load_bundle
    from shoppulse.models.serving.inference import Predictor

    try:  # a missing bundle, a CSV without the needed columns: the user's to fix, in one line
        bundle = load_bundle(args.bundle)
        predictor = Predictor(bundle, precision=args.precision, intra_op_threads=args.threads)
        head = head_for(args.task, dict(bundle.heads))
        rows = read_reviews(args.data)
        if not rows:
            raise ValueError(f"{args.data}: no rows with a review")
        gold = label_indices(args.task, rows, bundle.heads[head])
    except (BundleError, ValueError, OSError) as exc:
        print(f"shoppulse evaluate: {exc}", file=sys.stderr)
        return 2
    texts = [row.review for row in rows]
    predictor.predict(texts[:64], batch_size=args.batch_size)  # warm-up: first-run allocations are not throughput
    result = score_predictor(predictor, texts, gold, head, args.batch_size)
    print(f"bundle {bundle.name} {bundle.version} ({predictor.precision}, {predictor.intra_op_threads} threads)")
    print(f"{args.task}: {len(rows)} reviews from {args.data}")
    print(f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  {result['reviews_per_s']} reviews/s")
    summary = {
        "task": args.task,
        "n": len(rows),
        "accuracy": result["accuracy"],
        "macro_f1": result["macro_f1"],
        "reviews_per_s": result["reviews_per_s"],
    }
    if args.robustness:
        summary["robustness"] = {}
        for key, name, variant in (
            ("first_32_chars", "first 32 chars", [truncate(t, 32) for t in texts]),
            ("noisy", "noisy", noisy_copy(texts)),
        ):
            robust = score_predictor(predictor, variant, gold, head, args.batch_size)
            print(f"robustness, {name}: accuracy {robust['accuracy']:.4f}  macro-F1 {robust['macro_f1']:.4f}")
            summary["robustness"][key] = {"accuracy": robust["accuracy"], "macro_f1": robust["macro_f1"]}
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoppulse.models.evaluation.evaluate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
