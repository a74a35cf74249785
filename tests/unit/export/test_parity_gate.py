"""A bundle that fails parity is not written, and the error says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoppulse.export import ExportError, ParityError, ParityThresholds, build_bundle
from shoppulse.export.parity import format_report
from shoppulse.models.serving.bundle import load_bundle
from tests.unit.export.tiny import save_classifier


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_classifier(tmp_path_factory.mktemp("gate") / "model", "bert")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "model")


def test_int8_probability_gate_failure_writes_nothing(model_dir: Path, tmp_path: Path) -> None:
    # INT8 logits never equal FP32 logits exactly, so a zero probability tolerance must fail.
    gates = ParityThresholds(int8_min_argmax_agreement=0.0, int8_max_prob_diff=0.0)
    with pytest.raises(ParityError) as caught:
        build_bundle(model_dir, tmp_path / "bundle", max_length=32, parity_samples=24, thresholds=gates)

    report = caught.value.report
    assert report["passed"] is False
    assert any(f.startswith("int8 sentiment: max probability diff") for f in report["failures"])
    assert not any(f.startswith("fp32") for f in report["failures"])
    assert "FAILED" in format_report(report)
    assert leftovers(tmp_path) == []  # no bundle, no staging directory


def test_fp32_gate_failure_keeps_the_old_bundle(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    first = build_bundle(model_dir, out, quantize="none", max_length=32, parity_samples=16)
    before = (out / "manifest.json").read_text(encoding="utf-8")

    # A negative tolerance cannot be met: the gate itself decides, not an assumption.
    with pytest.raises(ParityError, match="fp32 sentiment: max \\|logit diff\\|"):
        build_bundle(
            model_dir,
            out,
            quantize="none",
            max_length=32,
            parity_samples=16,
            thresholds={"fp32_max_abs_diff": -1.0},
            overwrite=True,
        )
    assert (out / "manifest.json").read_text(encoding="utf-8") == before
    assert load_bundle(out).version == first["version"]
    assert leftovers(tmp_path) == ["bundle"]


def test_existing_bundle_needs_overwrite(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    build_bundle(model_dir, out, quantize="none", max_length=32, parity_samples=8, version="1")
    with pytest.raises(ExportError, match="already exists"):
        build_bundle(model_dir, out, quantize="none", max_length=32, parity_samples=8)
    manifest = build_bundle(
        model_dir, out, quantize="none", max_length=32, parity_samples=8, version="2", overwrite=True
    )
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["version"] == manifest["version"] == "2"
    assert leftovers(tmp_path) == ["bundle"]


def test_max_length_beyond_position_embeddings_is_refused(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="position embeddings"):
        build_bundle(model_dir, tmp_path / "bundle", max_length=4096)
    assert leftovers(tmp_path) == []


def test_texts_the_tokenizer_cannot_read_are_refused(model_dir: Path, tmp_path: Path) -> None:
    """A lost vocabulary makes torch and ONNX agree on garbage; the [UNK] share catches it."""
    unreadable = ["Привет мир, это отзыв", "Ωμέγα λόγος"] * 5
    with pytest.raises(ParityError, match=r"\[UNK\]") as caught:
        build_bundle(model_dir, tmp_path / "bundle", quantize="none", max_length=32, parity_texts=unreadable)
    assert caught.value.report["unk_rate"] > 0.5
    assert leftovers(tmp_path) == []


def test_tokenizer_larger_than_the_embeddings_is_refused(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    config_path = tmp_path / "model" / "config.json"
    shutil.copytree(model_dir, tmp_path / "model")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["vocab_size"] = 10
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ExportError, match="embeddings only 10"):
        build_bundle(tmp_path / "model", tmp_path / "bundle")
    assert leftovers(tmp_path) == []
