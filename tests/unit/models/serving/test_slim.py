"""A bundle slimmed to INT8 (the serving image) still verifies and serves; a request for FP32 gets INT8."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shoppulse.models.serving.bundle import load_bundle
from shoppulse.models.serving.inference import Predictor
from shoppulse.models.serving.slim import keep_only, main

TEXTS = ["物流很快，质量很好", "屏幕坏了"]


def test_keep_only_int8_drops_the_fp32_graph_and_still_serves(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle_dir)
    before = Predictor.from_dir(bundle_dir, precision="int8", intra_op_threads=1).predict(TEXTS)
    assert keep_only(bundle_dir, "int8") == ["model.onnx"]
    assert not (bundle_dir / "model.onnx").exists()
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["models"] == {"int8": "model.int8.onnx"} and "model.onnx" not in manifest["files"]
    bundle = load_bundle(bundle_dir, verify=True)
    assert bundle.resolved_precision("fp32") == "int8"
    predictor = Predictor(bundle, precision="fp32", intra_op_threads=1)
    assert predictor.precision == "int8"
    after = predictor.predict(TEXTS)
    for head in before:
        np.testing.assert_array_equal(after[head], before[head])


def test_the_command_ends_a_wrong_path_or_precision_in_one_line(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "nowhere")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m shoppulse.models.serving.slim: ") and "nowhere" in line
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle_dir)
    assert main([str(bundle_dir), "--precision", "int8"]) == 0
    assert main([str(bundle_dir), "--precision", "fp32"]) == 2
    assert "has no fp32 model" in capsys.readouterr().err
