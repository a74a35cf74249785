"""Rebuilding a bundle's torch model from its FP32 graph (models/training/recover.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")

from shoppulse.models.training.recover import RECOVERY_NOTE, RecoveryError, recover_model  # noqa: E402
from tests.unit.export.tiny import INTEREST_LABELS, save_tokenizer, tiny_config  # noqa: E402
from tests.unit.models.bundle_fixtures import copy_bundle, export_tiny_bundle  # noqa: E402


def _inputs(vocab: int, seed: int = 1) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(5, vocab, size=(6, 30), dtype=np.int64))
    mask = torch.ones_like(ids)
    mask[::2, 12:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _save_multitask_with_bag(out_dir: Path) -> Path:
    from transformers import AutoModel

    from shoppulse.models.training.multitask import MultiTaskClassifier

    torch.manual_seed(3)
    config = tiny_config("bert")
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    ngram = {"vocab_size": config.vocab_size, "buckets": 97, "dim": 8, "mode": "ensemble"}
    heads = {"sentiment": ["negative", "positive"], "interest": INTEREST_LABELS}
    MultiTaskClassifier(encoder, heads, ngram=ngram).save(out_dir)
    save_tokenizer(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def bag_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from shoppulse.export import build_bundle

    root = tmp_path_factory.mktemp("recover")
    model_dir = _save_multitask_with_bag(root / "model")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_bundle(
            model_dir, root / "bundle", max_length=48, parity_samples=16, thresholds={"int8_min_argmax_agreement": 0.0}
        )
    finally:
        torch.set_num_threads(previous)
    return model_dir, root / "bundle"


def test_a_multitask_model_with_its_ngram_bag_comes_back_with_the_same_weights(
    bag_bundle: tuple[Path, Path], tmp_path: Path
) -> None:
    from shoppulse.models.training.multitask import load_multitask

    model_dir, bundle = bag_bundle
    recovery = recover_model(bundle, tmp_path / "back")
    assert recovery.max_abs_logit_diff <= 1e-4
    original, rebuilt = load_multitask(model_dir), load_multitask(tmp_path / "back")
    want, have = original.state_dict(), rebuilt.state_dict()
    assert set(want) == set(have)
    for name, value in want.items():
        assert torch.equal(value, have[name]), name  # exact: the graph stores the trained floats
    feed = _inputs(original.config.vocab_size)
    with torch.inference_mode():
        for a, b in zip(original(**feed), rebuilt(**feed), strict=True):
            assert torch.equal(a, b)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    config_bytes = (tmp_path / "back" / "config.json").read_bytes()
    assert hashlib.sha256(config_bytes).hexdigest() == manifest["source"]["config_sha256"]
    note = json.loads((tmp_path / "back" / RECOVERY_NOTE).read_text(encoding="utf-8"))
    assert note["parameters"] == sum(p.numel() for p in original.parameters())


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_a_plain_classifier_comes_back_with_the_same_weights(family: str, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    bundle = export_tiny_bundle(tmp_path, family)
    model_dir = tmp_path / f"{family}-plain-model"
    recover_model(bundle, tmp_path / "back")
    original = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    rebuilt = AutoModelForSequenceClassification.from_pretrained(tmp_path / "back").eval()
    for name, value in original.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[name]), name


def test_a_bundle_without_the_source_config_says_so(bag_bundle: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = copy_bundle(bag_bundle[1], tmp_path / "old")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    del manifest["source"]["config"]
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RecoveryError, match=r"source\.config"):
        recover_model(bundle, tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_a_rebuild_that_does_not_match_the_graph_is_not_written(bag_bundle: tuple[Path, Path], tmp_path: Path) -> None:
    # A wrong n-gram hash multiplier builds a model of the right shape that computes something else:
    # only the parity check can catch it.
    bundle = copy_bundle(bag_bundle[1], tmp_path / "wrong")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["source"]["heads_file"]["ngram"]["multiplier"] = 7
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RecoveryError, match=r"differs from model\.onnx"):
        recover_model(bundle, tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_a_fused_graph_is_refused(tmp_path: Path) -> None:
    bundle = export_tiny_bundle(tmp_path, "bert", fusion=True)
    with pytest.raises(RecoveryError, match="fused"):
        recover_model(bundle, tmp_path / "back")
