"""Just enough PromQL reading to check names: which metrics and labels an expression uses.

Why not a parser library: none that is maintained exists for Python, and the expressions are
also checked by the real parser (``promtool check rules``) in the tests, so this only has to
find names in expressions already known to be valid PromQL.

Also the contract for the live-Prometheus test: ``dashboard_queries`` returns every panel query
of a dashboard with the dashboard variables substituted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info, Summary
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "helm" / "shoppulse" / "dashboards" / "shoppulse.json"
BUSINESS_DASHBOARD = DASHBOARD.with_name("shoppulse-business.json")
# Every dashboard the chart ships (helm/dashboard_gen.py writes them).
DASHBOARDS = (DASHBOARD, BUSINESS_DASHBOARD)
RULES = ROOT / "helm" / "shoppulse" / "rules" / "shoppulse.rules.yaml"

# Labels the scrape adds (prometheus-operator ServiceMonitor, or a plain static config).
TARGET_LABELS = frozenset({"namespace", "pod", "instance", "job", "service", "container", "endpoint"})
# What the dashboard variables become when every value is selected.
ALL_VALUES = {"$namespace": ".*", "$stage": ".*", "$category": ".*", "$tag": ".*", "$__rate_interval": "1m"}

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_NUMBER = re.compile(r"(?<![A-Za-z_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?(?![A-Za-z_:])")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Usage:
    """Names one expression refers to."""

    metrics: frozenset[str]
    # (metric name or "" for a bare {..} selector, label name) for every label matcher
    matchers: frozenset[tuple[str, str]]
    # label names in by/without/on/ignoring/group_* clauses
    grouping_labels: frozenset[str]


def usage(expr: str) -> Usage:
    matchers: set[tuple[str, str]] = set()
    for metric, body in _SELECTOR.findall(expr):
        for label in _MATCHER.findall(body):
            matchers.add((metric, label))
            if label == "__name__":
                raise ValueError(f"__name__ matchers hide metric names: {expr}")
    grouping = {label.strip() for _, labels in _GROUPING.findall(expr) for label in labels.split(",") if label.strip()}
    stripped = _SELECTOR.sub(lambda m: m.group(1) or " ", expr)
    stripped = _STRING.sub(" ", stripped)
    stripped = _GROUPING.sub(" ", stripped)
    stripped = _RANGE.sub(" ", stripped)
    stripped = _NUMBER.sub(" ", stripped)
    metrics = set()
    for match in _IDENT.finditer(stripped):
        name = match.group(0)
        following = stripped[match.end() :].lstrip()
        if following.startswith("(") or name.lower() in _KEYWORDS:
            continue  # a function call or an operator keyword
        metrics.add(name)
    return Usage(frozenset(metrics), frozenset(matchers), frozenset(grouping))


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, the matchers between its braces) of every ``metric{...}`` selector in ``expr``."""
    return [(metric, body) for metric, body in _SELECTOR.findall(expr) if metric]


def defined_series() -> dict[str, frozenset[str]]:
    """Every series name consumers/metrics.py can expose -> its label names (without target labels)."""
    from shoppulse.consumers import metrics as module

    series: dict[str, frozenset[str]] = {}
    for value in vars(module).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name, labels = value._name, frozenset(value._labelnames)
        if isinstance(value, Counter):
            suffixes = {"_total": labels, "_created": labels}
        elif isinstance(value, Histogram):
            suffixes = {"_bucket": labels | {"le"}, "_sum": labels, "_count": labels, "_created": labels}
        elif isinstance(value, Summary):
            suffixes = {"_sum": labels, "_count": labels, "_created": labels}
        elif isinstance(value, Info):
            suffixes = {"_info": labels | frozenset(_info_keys(value))}
        elif isinstance(value, Gauge):
            suffixes = {"": labels}
        else:  # pragma: no cover - a new metric type needs a mapping here
            raise TypeError(f"no series mapping for {type(value).__name__} {name}")
        for suffix, label_names in suffixes.items():
            series[name + suffix] = label_names
    # prometheus-client's process collector (registered by default, served by both stages).
    from prometheus_client.process_collector import PROCESS_COLLECTOR

    for family in PROCESS_COLLECTOR.collect():
        for sample in family.samples:
            series[sample.name] = frozenset(sample.labels)
    return series


def _info_keys(info: Info) -> set[str]:
    keys: set[str] = set()
    for family in info.collect():
        for sample in family.samples:
            keys |= set(sample.labels)
    return keys


def recorded_names(rules: dict[str, Any]) -> set[str]:
    return {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, including panels nested in collapsed rows."""
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out += panel.get("panels", [])
        else:
            out.append(panel)
    return out


def dashboard_queries(path: Path = DASHBOARD, substitutions: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(panel title, expr) for every panel target, variables substituted (all values by default)."""
    subs = ALL_VALUES if substitutions is None else substitutions
    queries = []
    for panel in dashboard_panels(load_dashboard(path)):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable in sorted(subs, key=len, reverse=True):
                expr = expr.replace(variable, subs[variable])
            queries.append((panel["title"], expr))
    return queries
