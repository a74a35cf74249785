"""Graph options: dynamic axes, transformer fusions (+ INT8 on the fused graph), opset."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from shoppulse.export import build_bundle
from tests.unit.export.tiny import save_classifier

GATES = {"int8_min_argmax_agreement": 0.0}  # random weights: see test_families.py


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_classifier(tmp_path_factory.mktemp("graph") / "model", "bert")


def test_inputs_have_dynamic_batch_and_sequence_axes(model_dir: Path, tmp_path: Path) -> None:
    build_bundle(model_dir, tmp_path / "b", quantize="none", max_length=32, parity_samples=8)
    graph = onnx.load(str(tmp_path / "b" / "model.onnx")).graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch", "sequence"], value.name
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_fusion_then_int8(model_dir: Path, tmp_path: Path) -> None:
    """Fused graphs need DefaultTensorType to quantise; both files must still pass parity."""
    manifest = build_bundle(model_dir, tmp_path / "b", fusion=True, max_length=32, parity_samples=32, thresholds=GATES)
    fusion = manifest["export"]["fusion"]
    assert fusion["applied"] is True
    assert fusion["fused_operators"].get("Attention", 0) == 2  # one per layer
    assert fusion["fused_operators"].get("SkipLayerNormalization", 0) > 0
    assert manifest["export"]["operators"].get("Attention", 0) == 2
    assert manifest["parity"]["results"]["fp32"]["sentiment"]["max_abs_logit_diff"] <= 1e-4
    assert "int8" in manifest["parity"]["results"]


def test_opset_is_applied(model_dir: Path, tmp_path: Path) -> None:
    manifest = build_bundle(model_dir, tmp_path / "b", quantize="none", opset=14, max_length=32, parity_samples=8)
    model = onnx.load(str(tmp_path / "b" / "model.onnx"))
    default_domain = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert manifest["opset"] == 14 and default_domain == [14]
    assert manifest["parity"]["results"]["fp32"]["sentiment"]["max_abs_logit_diff"] <= 1e-4
