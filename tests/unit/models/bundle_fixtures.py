"""Real bundles for the serving-side tests, exported once per module from tiny random models.

Building them needs the export extra (torch, transformers, onnx); tests that use these
fixtures are skipped where it is not installed. Loading them needs only onnxruntime.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def export_tiny_bundle(directory: Path, family: str = "bert", multitask: bool = False, **kwargs: object) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("onnx")
    from shoppulse.export import build_bundle
    from tests.unit.export.tiny import save_classifier, save_multitask

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/unit/export/conftest.py
    try:
        name = f"{family}-{'multi' if multitask else 'plain'}"
        model_dir = directory / f"{name}-model"
        if multitask:
            save_multitask(model_dir, family)
        else:
            save_classifier(model_dir, family, labels=["negative", "positive"])
        options: dict[str, object] = {
            "max_length": 48,
            "parity_samples": 24,
            "thresholds": {"int8_min_argmax_agreement": 0.0},  # random weights
            **kwargs,
        }
        build_bundle(model_dir, directory / f"{name}-bundle", **options)
    finally:
        torch.set_num_threads(previous)
    return directory / f"{name}-bundle"


def copy_bundle(bundle: Path, to: Path) -> Path:
    return Path(shutil.copytree(bundle, to))
