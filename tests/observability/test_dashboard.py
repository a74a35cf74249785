"""The Grafana dashboards: generated, complete, valid PromQL, and only metrics that exist.

Both dashboards the chart ships are checked the same way: ``shoppulse`` (how the stages run) and
``shoppulse business`` (what stage 3 counts per category and tag).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.promql import (
    BUSINESS_DASHBOARD,
    DASHBOARD,
    DASHBOARDS,
    ROOT,
    TARGET_LABELS,
    dashboard_panels,
    dashboard_queries,
    defined_series,
    load_dashboard,
    selectors,
    usage,
)

GENERATOR = ROOT / "helm" / "dashboard_gen.py"
# Per dashboard: its variables and its rows.
VARIABLES = {
    DASHBOARD: {"datasource", "namespace", "stage"},
    BUSINESS_DASHBOARD: {"datasource", "namespace", "tag", "category"},
}
ROWS = {
    DASHBOARD: {
        "Resources",
        "Throughput",
        "Lag and back-pressure",
        "Latency",
        "Batch efficiency",
        "Errors and dead letters",
        "Model and drift",
        "Profiles",
    },
    BUSINESS_DASHBOARD: {"Reviews", "Aspect complaints", "Sales", "Alerts and late data"},
}
CATEGORY_METRICS = {
    "shoppulse_category_reviews_total",
    "shoppulse_category_aspect_mentions_total",
    "shoppulse_category_actions_total",
    "shoppulse_category_revenue_total",
}

dashboards = pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dashboard_gen", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _variables(path: Path) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in load_dashboard(path)["templating"]["list"]}


def test_committed_json_is_the_generator_output() -> None:
    generator = _generator()
    assert {d.output for d in generator.DASHBOARDS} == set(DASHBOARDS)
    for dashboard in generator.DASHBOARDS:
        committed = dashboard.output.read_text(encoding="utf-8")
        assert committed == generator.render(dashboard), f"{dashboard.output.name}: run python helm/dashboard_gen.py"
    # The chart ships every JSON file of the folder: no stale one may stay behind.
    assert set(DASHBOARD.parent.glob("*.json")) == set(DASHBOARDS)


def test_dashboards_have_their_own_uid_and_title() -> None:
    loaded = [load_dashboard(path) for path in DASHBOARDS]
    assert len({d["uid"] for d in loaded}) == len({d["title"] for d in loaded}) == len(DASHBOARDS)
    assert load_dashboard(BUSINESS_DASHBOARD)["title"] == "shoppulse business"


@dashboards
def test_variables_and_rows(path: Path) -> None:
    dashboard = load_dashboard(path)
    variables = _variables(path)
    assert set(variables) == VARIABLES[path]
    for name, variable in variables.items():
        if variable["type"] == "query":
            assert variable["includeAll"] and variable["allValue"] == ".*", name
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert rows == ROWS[path]


def test_latency_panels_show_p50_p95_p99_from_histograms() -> None:
    latency = [p for p in dashboard_panels(load_dashboard()) if p["fieldConfig"]["defaults"]["unit"] == "s"]
    assert len(latency) >= 2
    for panel in latency:
        exprs = [t["expr"] for t in panel["targets"]]
        for q in ("0.5", "0.95", "0.99"):
            wanted = f"histogram_quantile({q},"
            assert any(e.startswith(wanted) and "_bucket{" in e for e in exprs), panel["title"]


@dashboards
def test_panels_are_unique_and_do_not_overlap(path: Path) -> None:
    panels = load_dashboard(path)["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    for panel in dashboard_panels(load_dashboard(path)):
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]


@dashboards
def test_every_selector_is_filtered_by_the_variables(path: Path) -> None:
    """Each selector matches $namespace, and every other variable whose label its metric carries."""
    series = defined_series()
    labels = set(_variables(path)) - {"datasource"}
    for title, expr in dashboard_queries(path, substitutions={}):
        found = selectors(expr)
        assert {m for m, _ in found} == set(usage(expr).metrics), f"{title}: a metric without a selector"
        for metric, body in found:
            for label in {"namespace"} | (labels & series[metric]):
                assert f'{label}=~"${label}"' in body, f"{title}: {metric} ignores ${label}"


def test_business_queries_follow_the_category_and_tag_variables() -> None:
    """Aspect mentions carry no tag: their queries keep the chosen tags' categories through a join."""
    for title, expr in dashboard_queries(BUSINESS_DASHBOARD, substitutions={}):
        if usage(expr).metrics & CATEGORY_METRICS:
            assert 'category=~"$category"' in expr and 'tag=~"$tag"' in expr, title


def test_the_business_dashboard_shows_what_stage_3_counts() -> None:
    """Reviews and negative share, aspect complaints, GMV, conversion, alerts and late events."""
    used: dict[str, str] = {}
    for title, expr in dashboard_queries(BUSINESS_DASHBOARD, substitutions={}):
        for metric in usage(expr).metrics:
            used.setdefault(metric, title)
    assert CATEGORY_METRICS | {"shoppulse_alerts_raised_total", "shoppulse_late_events_total"} <= set(used)
    exprs = {title: expr for title, expr in dashboard_queries(BUSINESS_DASHBOARD, substitutions={})}
    assert 'sentiment="negative"' in exprs["Negative review share by category"]
    assert 'sentiment="negative"' in exprs["Negative aspect mentions per minute by aspect"]
    conversion = exprs["Conversion (orders per view) by category"]
    assert conversion.index('action="order"') < conversion.index(" / ") < conversion.index('action="view"')
    assert "by (category, currency)" in exprs["GMV per hour by category and currency"]


@dashboards
def test_every_query_is_valid_promql(path: Path, promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (variables substituted as the live test will) as a recording rule."""
    queries = dashboard_queries(path)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)],
            }
        ]
    }
    rules_path = tmp_path / "dashboard.rules.yaml"
    rules_path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(rules_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout


@dashboards
def test_queries_use_only_defined_metrics_and_their_labels(path: Path) -> None:
    series = defined_series()
    for title, expr in dashboard_queries(path, substitutions={}):
        used = usage(expr)
        assert used.metrics, f"{title}: no metric in {expr}"
        unknown = used.metrics - set(series)
        assert not unknown, f"{title}: metrics not in consumers/metrics.py: {sorted(unknown)}"
        labels = set(TARGET_LABELS).union(*(series[m] for m in used.metrics))
        assert used.grouping_labels <= labels, f"{title}: unknown labels {used.grouping_labels - labels}"
        for metric, label in used.matchers:
            assert label in series[metric] | TARGET_LABELS, f"{title}: {metric} has no label {label}"
    # Variable queries name metrics and labels too.
    for variable in load_dashboard(path)["templating"]["list"]:
        if variable["type"] == "query":
            inner = variable["definition"].split("(", 1)[1].rsplit(")", 1)[0]
            metric = inner.split("{", 1)[0].split(",", 1)[0].strip()
            assert metric in series, variable["name"]
            label = inner.rsplit(",", 1)[1].strip() if "," in inner else None
            assert label is None or label in series[metric] | TARGET_LABELS, variable["name"]
            for used_metric, matcher in usage(inner.rsplit(",", 1)[0]).matchers:
                assert matcher in series[used_metric] | TARGET_LABELS, variable["name"]


def test_the_metric_name_check_catches_a_wrong_name() -> None:
    """Guards the check above against a parser that finds nothing."""
    used = usage('sum by (stage) (rate(shoppulse_events_consumd_total{stage=~"$stage"}[5m]))')
    assert used.metrics == {"shoppulse_events_consumd_total"}
    assert not used.metrics <= set(defined_series())
    assert usage("histogram_quantile(0.99, sum by (le) (rate(a_bucket[1m]))) > 2 and on (x) b").metrics == {
        "a_bucket",
        "b",
    }


def test_the_variable_check_catches_a_selector_without_the_variable() -> None:
    """Guards the selector check: a selector without $tag is found and named."""
    expr = 'sum(rate(shoppulse_category_actions_total{namespace=~"$namespace", category=~"$category"}[1m]))'
    [(metric, body)] = selectors(expr)
    assert metric == "shoppulse_category_actions_total"
    assert "tag" in defined_series()[metric] and 'tag=~"$tag"' not in body
