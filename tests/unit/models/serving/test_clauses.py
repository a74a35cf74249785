"""The clause threshold: read from the manifest, validated at load, fitted for macro-F1, used as enrich decides."""

from __future__ import annotations

import numpy as np
import pytest

from shoppulse.models.serving.clauses import DEFAULT_THRESHOLD, clause_is_positive, clause_threshold
from shoppulse.models.training.clause_threshold import fit_threshold


def test_a_manifest_without_one_decides_by_argmax() -> None:
    assert clause_threshold({}) == DEFAULT_THRESHOLD == 0.5
    assert clause_threshold({"calibration": {"sentiment": {"temperature": 1.2}}}) == 0.5
    assert clause_threshold({"calibration": {"clause": {"positive_threshold": 0.23}}}) == 0.23


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, "x"])
def test_an_impossible_threshold_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        clause_threshold({"calibration": {"clause": {"positive_threshold": bad}}})


def test_the_fit_moves_the_threshold_to_where_positive_clauses_actually_sit() -> None:
    rng = np.random.default_rng(0)
    # positives score 0.2-0.6 (a model that leans negative on clauses), negatives 0.0-0.25
    p = np.concatenate([rng.uniform(0.2, 0.6, 200), rng.uniform(0.0, 0.25, 200)])
    gold = np.concatenate([np.ones(200), np.zeros(200)]).astype(np.int64)
    threshold, f1 = fit_threshold(p, gold)
    assert 0.2 <= threshold <= 0.26 and f1 > 0.9  # the two ranges overlap on 0.20-0.25
    argmax_correct = ((p >= 0.5) == gold).mean()
    assert argmax_correct < 0.7  # what the fit repairs


def test_ties_keep_the_threshold_nearest_to_argmax() -> None:
    p = np.array([0.1, 0.9])
    gold = np.array([0, 1])
    assert fit_threshold(p, gold)[0] == 0.5
    assert clause_is_positive(0.5, 0.5) and not clause_is_positive(0.49, 0.5)


def test_the_fitting_command_ends_a_wrong_path_in_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from shoppulse.models.training.clause_threshold import main

    assert main(["--bundle", str(tmp_path / "nope")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m shoppulse.models.training.clause_threshold: ") and "nope" in line
