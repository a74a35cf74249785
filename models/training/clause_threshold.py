"""`python -m shoppulse.models.training.clause_threshold`: fit a bundle's clause threshold, optionally store it.

Reads a JSON-lines aspect set (default ``models/data/eval/aspects_tune.jsonl``, written for this
and never the evaluation set), classifies each aspect clause through the serving ``Predictor``,
and picks the ``p_positive`` threshold with the best macro-F1 over the clauses with a verdict
(``fit_threshold`` below). ``--write`` stores it in the bundle's ``manifest.json`` as
``calibration.clause`` (the manifest is not among the hashed files, so the bundle stays valid).
Judge the result on the evaluation set: ``shoppulse evaluate --task aspects``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from shoppulse.models.evaluation.evaluate import macro_f1

TUNING_SET = Path(__file__).resolve().parents[1] / "data" / "eval" / "aspects_tune.jsonl"


def fit_threshold(p_positive: np.ndarray, gold_positive: np.ndarray) -> tuple[float, float]:
    """The threshold (0.05…0.95, step 0.01) with the best macro-F1 on labelled clauses, and that F1.

    Ties go to the threshold closest to 0.5: the least change from argmax that does as well.
    """
    gold = gold_positive.astype(np.int64)
    best: tuple[float, float, float] | None = None  # (f1, -distance from 0.5, threshold)
    for threshold in np.round(np.arange(0.05, 0.951, 0.01), 2):
        predicted = (p_positive >= threshold).astype(np.int64)
        key = (round(macro_f1(predicted, gold), 6), -abs(threshold - 0.5), float(threshold))
        if best is None or key > best:
            best = key
    assert best is not None
    return best[2], best[0]


def fit_clause_threshold(
    bundle_dir: Path, data: Path = TUNING_SET, write: bool = False, precision: str = "int8"
) -> dict:
    """Fit the bundle's clause threshold on ``data``; with ``write``, store it in its manifest."""
    from shoppulse.models.evaluation.aspect_eval import load_mentions
    from shoppulse.models.serving.bundle import MANIFEST, load_bundle
    from shoppulse.models.serving.inference import Predictor
    from shoppulse.models.serving.keywords import load_aspects

    bundle = load_bundle(bundle_dir)
    predictor = Predictor(bundle, precision=precision)
    mentions = [m for m in load_mentions(data, load_aspects()) if m.gold != "none"]
    labels = list(bundle.heads["sentiment"])
    probs = predictor.predict([m.clause for m in mentions])["sentiment"]
    p_positive = probs[:, labels.index("positive")]
    gold = np.asarray([m.gold == "positive" for m in mentions], dtype=np.int64)
    threshold, fitted_f1 = fit_threshold(p_positive, gold)
    argmax_f1 = round(macro_f1((p_positive >= 0.5).astype(np.int64), gold), 6)
    clause = {
        "positive_threshold": threshold,
        "fitted_on": f"{len(mentions)} clauses of {data.name} (macro-F1 over thresholds 0.05-0.95)",
        "tuning_macro_f1": {"argmax": argmax_f1, "fitted": fitted_f1},
    }
    if write:
        path = bundle_dir / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest.setdefault("calibration", {})["clause"] = clause
        path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return clause


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoppulse.models.training.clause_threshold", description=__doc__)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=TUNING_SET, help="JSON-lines aspect tuning set")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--write", action="store_true", help="store the threshold in the bundle's manifest")
    args = parser.parse_args(argv)
    from shoppulse.models.serving.bundle import BundleError

    try:  # a missing bundle or a bad tuning file: the user's to fix, in one line
        clause = fit_clause_threshold(args.bundle, args.data, args.write, args.precision)
    except (BundleError, ValueError, OSError) as exc:
        print(f"python -m shoppulse.models.training.clause_threshold: {exc}", file=sys.stderr)
        return 2
    scores = clause["tuning_macro_f1"]
    print(clause["fitted_on"])
    threshold = clause["positive_threshold"]
    print(f"threshold 0.5 (argmax): macro-F1 {scores['argmax']:.4f}; fitted {threshold:.2f}: {scores['fitted']:.4f}")
    if args.write:
        print(f"written to {args.bundle / 'manifest.json'}")
    threshold = clause["positive_threshold"]
    print(
        json.dumps({"threshold": threshold, "tuning_macro_f1": scores["fitted"], "argmax_macro_f1": scores["argmax"]})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
