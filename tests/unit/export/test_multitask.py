"""A shoppulse multi-task model (one encoder, sentiment + interest heads) exports to one graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoppulse.export import ExportError, build_bundle
from shoppulse.models.serving.bundle import load_bundle
from shoppulse.models.serving.inference import Predictor
from tests.unit.export.tiny import INTEREST_LABELS, save_multitask, toy_reviews

GATES = {"int8_min_argmax_agreement": 0.0}  # random weights: see test_families.py


@pytest.fixture(scope="module")
def multitask_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_multitask(tmp_path_factory.mktemp("multitask") / "model")


def torch_heads(model_dir: Path, texts: list[str], max_length: int) -> dict[str, np.ndarray]:
    import torch
    from transformers import AutoTokenizer

    from shoppulse.models.serving.text import clean_text
    from shoppulse.models.training.multitask import load_multitask

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_multitask(model_dir)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in model.head_names}
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(clean_text(text), truncation=True, max_length=max_length, return_tensors="pt")
            for name, logits in zip(model.head_names, model(**encoded), strict=True):
                rows[name].append(torch.softmax(logits, -1)[0].numpy())
    return {name: np.stack(values) for name, values in rows.items()}


def test_multitask_bundle_has_both_heads(multitask_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    manifest = build_bundle(multitask_dir, out, max_length=64, parity_samples=48, thresholds=GATES)

    assert manifest["task"] == "multi"
    assert manifest["heads"] == {"sentiment": ["negative", "positive"], "interest": INTEREST_LABELS}
    assert manifest["outputs"] == ["logits_sentiment", "logits_interest"]
    assert manifest["source"]["multitask"] is True
    for head in ("sentiment", "interest"):
        assert manifest["parity"]["results"]["fp32"][head]["max_abs_logit_diff"] <= 1e-4

    texts, _ = toy_reviews(9, seed=5)
    predicted = Predictor(load_bundle(out), precision="fp32").predict(texts, batch_size=4)
    expected = torch_heads(multitask_dir, texts, 64)
    assert set(predicted) == {"sentiment", "interest"}
    assert predicted["interest"].shape == (9, len(INTEREST_LABELS))
    for head in expected:
        np.testing.assert_allclose(predicted[head], expected[head], atol=1e-5)


def test_single_head_of_a_multitask_model(multitask_dir: Path, tmp_path: Path) -> None:
    manifest = build_bundle(
        multitask_dir, tmp_path / "b", task="interest", quantize="none", max_length=32, parity_samples=16
    )
    assert manifest["heads"] == {"interest": INTEREST_LABELS}
    assert manifest["models"] == {"fp32": "model.onnx"}
    assert manifest["parity"]["results"]["fp32"]["interest"]["max_abs_logit_diff"] <= 1e-4


def test_unknown_task_and_missing_head_are_refused(multitask_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown task"):
        build_bundle(multitask_dir, tmp_path / "b", task="emotion")
    interest_only = save_multitask(tmp_path / "interest_only", heads={"interest": INTEREST_LABELS})
    with pytest.raises(ExportError, match="not a head"):
        build_bundle(interest_only, tmp_path / "b", task="sentiment")
    assert not (tmp_path / "b").exists()
