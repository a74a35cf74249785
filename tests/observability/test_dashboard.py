"""The Grafana dashboard: generated, complete, valid PromQL, and only metrics that exist."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

from tests.observability.promql import (
    DASHBOARD,
    ROOT,
    TARGET_LABELS,
    dashboard_panels,
    dashboard_queries,
    defined_series,
    load_dashboard,
    usage,
)

GENERATOR = ROOT / "helm" / "dashboard_gen.py"
ROWS = {
    "Resources",
    "Throughput",
    "Lag and back-pressure",
    "Latency",
    "Batch efficiency",
    "Errors and dead letters",
    "Model and drift",
    "Profiles",
}
STAGELESS = {"shoppulse_build_info"}  # process-wide, no stage label


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dashboard_gen", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_the_generator_output() -> None:
    assert DASHBOARD.read_text(encoding="utf-8") == _generator().render(), "run: python helm/dashboard_gen.py"


def test_variables_and_rows() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "stage"} <= set(variables)
    for name in ("namespace", "stage"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert rows == ROWS


def test_latency_panels_show_p50_p95_p99_from_histograms() -> None:
    latency = [p for p in dashboard_panels(load_dashboard()) if p["fieldConfig"]["defaults"]["unit"] == "s"]
    assert len(latency) >= 2
    for panel in latency:
        exprs = [t["expr"] for t in panel["targets"]]
        for q in ("0.5", "0.95", "0.99"):
            wanted = f"histogram_quantile({q},"
            assert any(e.startswith(wanted) and "_bucket{" in e for e in exprs), panel["title"]


def test_panels_are_unique_and_do_not_overlap() -> None:
    panels = load_dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    for panel in dashboard_panels(load_dashboard()):
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]


def test_every_selector_is_filtered_by_the_variables() -> None:
    for title, expr in dashboard_queries(substitutions={}):
        used = usage(expr)
        for metric in used.metrics:
            assert f'{metric}{{namespace=~"$namespace"' in expr, f"{title}: {metric} ignores $namespace"
            if metric not in STAGELESS:
                assert 'stage=~"$stage"' in expr, f"{title}: {metric} ignores $stage"


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (variables substituted as the live test will) as a recording rule."""
    queries = dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout


def test_queries_use_only_defined_metrics_and_their_labels() -> None:
    series = defined_series()
    seen: set[str] = set()
    for title, expr in dashboard_queries(substitutions={}):
        used = usage(expr)
        assert used.metrics, f"{title}: no metric in {expr}"
        unknown = used.metrics - set(series)
        assert not unknown, f"{title}: metrics not in consumers/metrics.py: {sorted(unknown)}"
        labels = set(TARGET_LABELS).union(*(series[m] for m in used.metrics))
        assert used.grouping_labels <= labels, f"{title}: unknown labels {used.grouping_labels - labels}"
        for metric, label in used.matchers:
            assert label in series[metric] | TARGET_LABELS, f"{title}: {metric} has no label {label}"
        seen |= used.metrics
    # Variable queries name metrics too.
    for variable in load_dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            metric = variable["definition"].split("(", 1)[1].split("{", 1)[0].split(",", 1)[0].strip()
            assert metric in series, variable["name"]


def test_the_metric_name_check_catches_a_wrong_name() -> None:
    """Guards the check above against a parser that finds nothing."""
    used = usage('sum by (stage) (rate(shoppulse_events_consumd_total{stage=~"$stage"}[5m]))')
    assert used.metrics == {"shoppulse_events_consumd_total"}
    assert not used.metrics <= set(defined_series())
    assert usage("histogram_quantile(0.99, sum by (le) (rate(a_bucket[1m]))) > 2 and on (x) b").metrics == {
        "a_bucket",
        "b",
    }
