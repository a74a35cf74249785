"""Helpers for chart tests: where the chart is, its scenarios, and ways to pick manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "shoppulse"
SCENARIO_DIR = CHART / "ci"
# Every documented scenario: the defaults plus each ci/<name>-values.yaml.
SCENARIOS: dict[str, list[Path]] = {"default": []} | {
    path.name.removesuffix("-values.yaml"): [path] for path in sorted(SCENARIO_DIR.glob("*-values.yaml"))
}

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


def find_helm() -> str | None:
    local = ROOT / ".cache" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, check=False)


# The custom resources of a cluster with prometheus-operator and KEDA (helm's --api-versions).
CRD_API_VERSIONS = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
    "keda.sh/v1alpha1/ScaledObject",
    "keda.sh/v1alpha1/TriggerAuthentication",
)


def api_version_args(versions: Sequence[str] = CRD_API_VERSIONS) -> list[str]:
    return [arg for version in versions for arg in ("--api-versions", version)]


def value_args(values_files: Sequence[Path] = (), set_values: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["-f", str(path)]
    for item in set_values:
        args += ["--set", item]
    return args


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith(name_suffix)]
    names = [m["metadata"]["name"] for m in found]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {names}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> list[tuple[Manifest, dict[str, Any]]]:
    """(workload, pod spec) for every Deployment, StatefulSet and Job."""
    return [
        (m, m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in {"Deployment", "StatefulSet", "Job"}
    ]


def load_values(values_files: Sequence[Path]) -> dict[str, Any]:
    """The chart's values.yaml deep-merged with the scenario files, as helm merges them."""
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for path in values_files:
        _deep_merge(merged, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return merged


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
