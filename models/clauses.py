"""How an aspect clause's sentiment is decided: the bundle's own threshold on ``p_positive``.

Why a threshold of its own for clauses: the sentiment head learned whole reviews. On a short
clause (「合身」, 「尺码合适」) its probability can lean negative, so argmax calls positive clauses
negative (measured in docs/model.md). The threshold is fitted on a
labelled *tuning* set of clauses (``models/data/eval/aspects_tune.jsonl``, never the evaluation
set) and stored in the bundle's manifest (``calibration.clause``), because it belongs to the
model it was fitted for. A bundle without one decides clauses by argmax (threshold 0.5).

``python -m models.clause_threshold`` fits it (see that module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5


def clause_threshold(manifest: dict[str, Any]) -> float:
    """``calibration.clause.positive_threshold`` of a manifest, 0.5 when absent; ValueError when invalid."""
    calibration = manifest.get("calibration")
    clause = calibration.get("clause") if isinstance(calibration, dict) else None
    if not isinstance(clause, dict) or clause.get("positive_threshold") is None:
        return DEFAULT_THRESHOLD
    value = float(clause["positive_threshold"])
    if not 0.0 < value < 1.0:
        raise ValueError(f"calibration.clause.positive_threshold must be within (0, 1), got {value!r}")
    return value


def clause_is_positive(p_positive: float, threshold: float) -> bool:
    return p_positive >= threshold


def fit_threshold(p_positive: np.ndarray, gold_positive: np.ndarray) -> tuple[float, float]:
    """The threshold (0.05…0.95, step 0.01) with the best macro-F1 on labelled clauses, and that F1.

    Ties go to the threshold closest to 0.5: the least change from argmax that does as well.
    """
    from shoppulse.models.evaluate import macro_f1

    gold = gold_positive.astype(np.int64)
    best: tuple[float, float, float] | None = None  # (f1, -distance from 0.5, threshold)
    for threshold in np.round(np.arange(0.05, 0.951, 0.01), 2):
        predicted = (p_positive >= threshold).astype(np.int64)
        key = (round(macro_f1(predicted, gold), 6), -abs(threshold - 0.5), float(threshold))
        if best is None or key > best:
            best = key
    assert best is not None
    return best[2], best[0]
