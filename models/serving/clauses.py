"""How an aspect clause's sentiment is decided: the bundle's own threshold on ``p_positive``.

Why a threshold of its own for clauses: the sentiment head learned whole reviews. On a short
clause (「合身」, 「尺码合适」) its probability can lean negative, so argmax calls positive clauses
negative (measured in docs/model.md). The threshold is fitted on a
labelled *tuning* set of clauses (``models/data/eval/aspects_tune.jsonl``, never the evaluation
set) and stored in the bundle's manifest (``calibration.clause``), because it belongs to the
model it was fitted for. A bundle without one decides clauses by argmax (threshold 0.5).

``python -m shoppulse.models.training.clause_threshold`` fits it (see that module).
"""

from __future__ import annotations

from typing import Any

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
