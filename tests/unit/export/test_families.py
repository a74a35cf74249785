"""Every supported encoder family exports to a bundle that agrees with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoppulse.export import build_bundle
from shoppulse.models.serving.bundle import load_bundle
from shoppulse.models.serving.inference import Predictor
from tests.unit.export.tiny import FAMILIES, RANDOM_MODEL_GATES, save_classifier, toy_reviews


def torch_probabilities(model_dir: Path, texts: list[str], max_length: int) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from shoppulse.models.serving.text import clean_text

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    rows = []
    with torch.no_grad():
        for text in texts:  # one at a time: no padding at all on the reference side
            encoded = tokenizer(clean_text(text), truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(torch.softmax(model(**encoded).logits, -1)[0].numpy())
    return np.stack(rows)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_exports_verified_bundle(tmp_path: Path, family: str) -> None:
    model_dir = save_classifier(tmp_path / "model", family, labels=["negative", "positive"])
    out = tmp_path / "bundle"

    manifest = build_bundle(
        model_dir, out, task="sentiment", max_length=64, parity_samples=48, thresholds=RANDOM_MODEL_GATES
    )

    assert manifest["source"]["family"] == family
    assert manifest["heads"] == {"sentiment": ["negative", "positive"]}
    for precision in ("fp32", "int8"):
        figures = manifest["parity"]["results"][precision]["sentiment"]
        assert figures["max_abs_logit_diff"] >= 0
        assert 0 <= figures["argmax_agreement"] <= 1
    assert manifest["parity"]["results"]["fp32"]["sentiment"]["max_abs_logit_diff"] <= 1e-4
    expected_inputs = ["input_ids", "attention_mask"] + ([] if family == "distilbert" else ["token_type_ids"])
    assert manifest["inputs"] == expected_inputs

    bundle = load_bundle(out)  # hashes and ONNX signatures
    texts, _ = toy_reviews(12, seed=3)
    texts.append("质量很好" * 40)  # longer than max_length: truncation on both sides
    served = Predictor(bundle, precision="fp32").predict(texts, batch_size=5)["sentiment"]
    np.testing.assert_allclose(served, torch_probabilities(model_dir, texts, 64), atol=1e-5)
