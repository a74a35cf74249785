"""Fixtures for chart tests: the real helm binary and a renderer returning parsed manifests.

helm comes from ``scripts/install-tools.sh`` (``.cache/bin/helm``) or PATH. In CI a missing
helm fails the tests; locally they skip with the command that installs it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from tests.helm.chart import CHART, Manifest, Render, api_version_args, find_helm, run_helm, value_args


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("helm is required in CI: run scripts/install-tools.sh (make tools)")
        pytest.skip("helm not installed: run scripts/install-tools.sh")
    return found


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """``render(values_files, set_values)`` -> the manifests of ``helm template``, parsed."""
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Manifest]] = {}

    def _render(
        values_files: Sequence[Path] = (), set_values: Sequence[str] = (), crds: bool = True
    ) -> list[Manifest]:
        """``crds``: render as for a cluster that serves the prometheus-operator and KEDA CRDs."""
        key = (tuple(map(str, values_files)), tuple(set_values), crds)
        if key not in cache:
            proc = run_helm(
                helm, "template", "sp", str(CHART), "--namespace", "shop",
                *value_args(values_files, set_values),
                *(api_version_args() if crds else []),
            )
            assert proc.returncode == 0, proc.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
        return cache[key]

    return _render
