"""Temperature scaling and calibration error: the numbers the manifest's ``calibration`` carries."""

import numpy as np
import pytest

from shoppulse.models.training.batching import bucketed_batches, pad_batch
from shoppulse.models.training.finetune import expected_calibration_error, fit_temperature


def _overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports z * temperature (too sharp when > 1)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 2, size=(n, 2))
    probs = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = (rng.random(n) < probs[:, 1]).astype(np.int64)
    return true_logits * temperature, labels


def test_fitted_temperature_undoes_overconfidence() -> None:
    logits, labels = _overconfident(20_000, temperature=2.5)
    assert abs(fit_temperature(logits, labels) - 2.5) < 0.15
    calibrated_logits, labels = _overconfident(20_000, temperature=1.0, seed=1)
    assert abs(fit_temperature(calibrated_logits, labels) - 1.0) < 0.1


def test_ece_drops_after_scaling() -> None:
    logits, labels = _overconfident(5_000, temperature=3.0)

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits / fit_temperature(logits, labels)), labels)
    assert after < before / 2


def test_bucketed_batches_cover_every_index_once_with_little_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(3, 300, size=1000))
    batches = bucketed_batches(lengths, 32, np.random.default_rng(1), window_batches=10)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.2 * sum(lengths)  # random batches pad to ~2x here
    padded_array = pad_batch([np.arange(3), np.arange(5)], pad_id=0, fill=-1)
    assert padded_array.tolist() == [[0, 1, 2, -1, -1], [0, 1, 2, 3, 4]]


def test_evaluate_macro_f1_agrees_with_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from shoppulse.models.evaluation.evaluate import macro_f1

    rng = np.random.default_rng(4)
    gold = rng.integers(0, 5, size=300)
    predicted = np.where(rng.random(300) < 0.7, gold, rng.integers(0, 6, size=300))  # class 5 never gold
    expected = sklearn_metrics.f1_score(gold, predicted, average="macro")
    assert abs(macro_f1(predicted, gold) - expected) < 1e-9
