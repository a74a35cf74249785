from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random multi-head bundle: fast inference for delivery-semantics tests (not accuracy)."""
    from export.build import build_bundle
    from tests.unit.export.tiny import save_multitask

    root = tmp_path_factory.mktemp("tiny-bundle")
    model_dir = save_multitask(root / "model")
    build_bundle(model_dir, root / "bundle", name="tiny-test", version="0", parity_samples=32)
    return root / "bundle"


@pytest.fixture(scope="session")
def default_bundle() -> Path:
    from consumers.settings import DEFAULT_BUNDLE

    if not (DEFAULT_BUNDLE / "manifest.json").exists():
        pytest.fail(f"the default bundle is missing at {DEFAULT_BUNDLE}")
    return DEFAULT_BUNDLE
