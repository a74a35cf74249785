"""INT8 on a model that has learned something: argmax agreement is meaningful and gated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoppulse.export import build_bundle
from shoppulse.models.serving.bundle import load_bundle
from shoppulse.models.serving.inference import Predictor
from tests.unit.export.tiny import fine_tune, save_classifier, toy_reviews


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = save_classifier(tmp_path_factory.mktemp("trained") / "model", "bert", labels=["negative", "positive"])
    accuracy = fine_tune(model_dir)
    assert accuracy >= 0.95, f"the toy task should be learned (held-out accuracy {accuracy:.3f})"
    return model_dir


def test_int8_passes_the_default_gate(trained_dir: Path, tmp_path: Path) -> None:
    texts, labels = toy_reviews(400, seed=11)
    out = tmp_path / "bundle"

    manifest = build_bundle(trained_dir, out, max_length=64, parity_texts=texts)  # default gates

    int8 = manifest["parity"]["results"]["int8"]["sentiment"]
    fp32 = manifest["parity"]["results"]["fp32"]["sentiment"]
    assert manifest["parity"]["thresholds"]["int8_min_argmax_agreement"] == 0.995
    assert int8["argmax_agreement"] >= 0.995
    assert fp32["max_abs_logit_diff"] <= 1e-4
    assert int8["max_abs_logit_diff"] > fp32["max_abs_logit_diff"]  # quantisation really happened
    assert manifest["parity"]["samples"] == 400 and manifest["parity"]["texts"] == "given"

    probabilities = Predictor(load_bundle(out), precision="int8").predict(texts)["sentiment"]
    accuracy = float((probabilities.argmax(-1) == np.array(labels)).mean())
    assert accuracy >= 0.95
    assert (out / "model.int8.onnx").stat().st_size < (out / "model.onnx").stat().st_size
