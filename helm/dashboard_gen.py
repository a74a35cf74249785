"""Generates the Grafana dashboards the chart ships, in helm/shoppulse/dashboards/:

- ``shoppulse.json`` (uid ``shoppulse-overview``): how the stages run: throughput, lag, latency,
  batching, errors, model drift, profiles, resources;
- ``shoppulse-business.json`` (uid ``shoppulse-business``): what stage 3 counts per category and
  interest tag: reviews and negative share, aspect complaints, GMV, conversion, alerts, late events.

Why a generator: dozens of panels of hand-kept JSON drift (grid positions, datasource refs,
label matchers). Here every query is written once, with the variables' label matchers added in
one place, both dashboards share the panel, layout and variable code, and each panel carries
the sentence docs/observability.md uses to describe it. `tests/observability/test_dashboard.py` fails when
a committed JSON is not this output.

    python helm/dashboard_gen.py            # rewrite both JSON files
    python helm/dashboard_gen.py --markdown # print the panel lists for docs/observability.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parent / "shoppulse" / "dashboards"
OUTPUT = DASHBOARD_DIR / "shoppulse.json"
BUSINESS_OUTPUT = DASHBOARD_DIR / "shoppulse-business.json"

NS = 'namespace=~"$namespace"'
SEL = f'{NS}, stage=~"$stage"'
RATE = "[$__rate_interval]"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    description: str
    targets: list[Target]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 8
    height: int = 8
    stack_percent: bool = False
    bars: bool = False
    thresholds: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Row:
    title: str
    panels: list[Panel]


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    tags: list[str]
    output: Path
    variables: list[dict[str, Any]]
    rows: list[Row]


def _rate(metric: str, extra: str = "", sel: str = SEL) -> str:
    matchers = sel + (f", {extra}" if extra else "")
    return f"rate({metric}{{{matchers}}}{RATE})"


def _quantiles(metric: str, by: str, legend: str) -> list[Target]:
    return [
        Target(
            f"histogram_quantile({q}, sum by ({by}, le) ({_rate(metric + '_bucket')}))",
            f"p{int(q * 100)} {legend}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _share(metric: str, label: str, window: str = RATE) -> str:
    num = f"sum by ({label}) (rate({metric}{{{SEL}}}{window}))"
    den = f"sum (rate({metric}{{{SEL}}}{window}))"
    return f"{num} / ignoring ({label}) group_left {den}"


_CACHE_HITS = _rate("shoppulse_cache_requests_total", 'result="hit"')
# prometheus-client's process_* series carry no `stage` label: join them to one shoppulse series per
# process (the broker gauge, one per stage and pod) to filter by $stage and name the stage.
_STAGE_OF_INSTANCE = f"group by (instance, stage) (shoppulse_broker_reachable{{{SEL}}})"


def _per_stage(expr: str) -> str:
    return f"{expr} * on (instance) group_left (stage) {_STAGE_OF_INSTANCE}"

OVERVIEW_ROWS: list[Row] = [
    Row(
        "Throughput",
        [
            Panel(
                "Events consumed per second",
                "Input events read from Kafka per second, by stage and topic.",
                [Target(f"sum by (stage, topic) ({_rate('shoppulse_events_consumed_total')})",
                        "{{stage}} {{topic}}")],
                unit="ops",
            ),
            Panel(
                "Records produced per second",
                "Output records acknowledged by the broker per second, by stage and output topic.",
                [Target(f"sum by (stage, topic) ({_rate('shoppulse_events_produced_total')})",
                        "{{stage}} {{topic}}")],
                unit="ops",
            ),
            Panel(
                "Offset commits per second",
                "Offset commits (or committed transactions) per second: how often progress is saved.",
                [Target(f"sum by (stage) ({_rate('shoppulse_commits_total')})", "{{stage}}")],
                unit="ops",
            ),
        ],
    ),
    Row(
        "Lag and back-pressure",
        [
            Panel(
                "Consumer lag by topic",
                "Messages behind the high watermark, summed over partitions, by stage and topic. "
                "A line that keeps rising means the stage is falling behind.",
                [Target(f"sum by (stage, topic) (shoppulse_consumer_lag{{{SEL}}})", "{{stage}} {{topic}}")],
            ),
            Panel(
                "Most lagging partitions",
                "The ten partitions with the largest lag: one hot partition points at key skew, "
                "not at too few replicas.",
                [Target(f"topk(10, max by (stage, topic, partition) (shoppulse_consumer_lag{{{SEL}}}))",
                        "{{stage}} {{topic}}/{{partition}}")],
            ),
            Panel(
                "In-flight events and paused partitions",
                "Events consumed but not yet committed, and partitions paused because that "
                "buffer is full (back-pressure).",
                [
                    Target(f"sum by (stage) (shoppulse_in_flight_events{{{SEL}}})", "in flight {{stage}}"),
                    Target(f"sum by (stage) (shoppulse_paused_partitions{{{SEL}}})", "paused {{stage}}"),
                ],
            ),
            Panel(
                "Assigned partitions per process",
                "Partitions each process holds. Processes with zero are idle: keep partitions "
                ">= replicas.",
                [Target(f"sum by (stage, instance) (shoppulse_assigned_partitions{{{SEL}}})",
                        "{{stage}} {{instance}}")],
                width=24,
                height=6,
            ),
        ],
    ),
    Row(
        "Latency",
        [
            Panel(
                "End-to-end latency (event time to acknowledged output)",
                "p50, p95 and p99 from the event's own timestamp to its outputs being acknowledged, "
                "by stage; includes time spent waiting in lag.",
                _quantiles("shoppulse_end_to_end_seconds", "stage", "{{stage}}"),
                unit="s",
                width=12,
                thresholds=[(2.0, "red")],
            ),
            Panel(
                "Inference time per batch",
                "p50, p95 and p99 of model forward time per micro-batch (tokenization included), "
                "by model head.",
                _quantiles("shoppulse_inference_seconds", "head", "{{head}}"),
                unit="s",
                width=12,
            ),
        ],
    ),
    Row(
        "Batch efficiency",
        [
            Panel(
                "Mean batch size",
                "Average events per micro-batch. Small batches under load mean max_wait_ms is too "
                "short for the arrival rate.",
                [Target(
                    f"sum by (stage) ({_rate('shoppulse_batch_size_sum')}) / "
                    f"sum by (stage) ({_rate('shoppulse_batch_size_count')})",
                    "{{stage}}",
                )],
            ),
            Panel(
                "Batch fill ratio",
                "Mean micro-batch size divided by max_batch: near 1 the stage runs full batches "
                "(saturated); near 0 it mostly waits for events.",
                [Target(
                    f"sum by (stage) ({_rate('shoppulse_batch_fill_ratio_sum')}) / "
                    f"sum by (stage) ({_rate('shoppulse_batch_fill_ratio_count')})",
                    "{{stage}}",
                )],
                unit="percentunit",
            ),
            Panel(
                "Cache hit ratio",
                "Share of title-tag cache lookups answered from the cache, by cache.",
                [Target(
                    f"sum by (stage, cache) ({_CACHE_HITS}) / "
                    f"sum by (stage, cache) ({_rate('shoppulse_cache_requests_total')})",
                    "{{stage}} {{cache}}",
                )],
                unit="percentunit",
            ),
        ],
    ),
    Row(
        "Errors and dead letters",
        [
            Panel(
                "Dead-lettered events per second by reason",
                "Input events sent to dead-letter per second, by stage and reason code.",
                [Target(f"sum by (stage, reason) ({_rate('shoppulse_events_dead_lettered_total')})",
                        "{{stage}} {{reason}}")],
                unit="ops",
            ),
            Panel(
                "Dead-letter ratio",
                "Dead-lettered events as a share of events consumed, by stage; the alert fires "
                "above 5%.",
                [Target(
                    f"sum by (stage) ({_rate('shoppulse_events_dead_lettered_total')}) / "
                    f"sum by (stage) ({_rate('shoppulse_events_consumed_total')})",
                    "{{stage}}",
                )],
                unit="percentunit",
                thresholds=[(0.05, "red")],
            ),
            Panel(
                "Produce errors and aborted transactions",
                "Output records the broker did not acknowledge, by topic, and aborted transactions "
                "(exactly-once mode); either means inputs are being retried.",
                [
                    Target(f"sum by (stage, topic) ({_rate('shoppulse_produce_errors_total')})",
                           "errors {{stage}} {{topic}}"),
                    Target(f"sum by (stage) ({_rate('shoppulse_transaction_aborts_total')})",
                           "aborts {{stage}}"),
                ],
                unit="ops",
            ),
            Panel(
                "Broker reachable",
                "Lowest value over processes of the broker-reachable flag, by stage: 1 = every "
                "process's last metadata request succeeded, 0 = at least one cannot reach Kafka.",
                [Target(f"min by (stage) (shoppulse_broker_reachable{{{SEL}}})", "{{stage}}",
                        instant=True)],
                kind="stat",
                width=24,
                height=4,
                thresholds=[(1.0, "green")],
            ),
        ],
    ),
    Row(
        "Model and drift",
        [
            Panel(
                "Model in use",
                "The model bundle each stage runs: name, version and precision (from "
                "shoppulse_model_info), with the number of processes running it.",
                [Target(f"count by (stage, name, version, precision) (shoppulse_model_info{{{SEL}}})",
                        instant=True)],
                kind="table",
            ),
            Panel(
                "Processes with the model loaded",
                "Processes whose bundle is loaded and verified, next to all processes reporting; "
                "a gap means unready pods.",
                [
                    Target(f"sum by (stage) (shoppulse_model_loaded{{{SEL}}})", "loaded {{stage}}",
                           instant=True),
                    Target(f"count by (stage) (shoppulse_model_loaded{{{SEL}}})", "reporting {{stage}}",
                           instant=True),
                ],
                kind="stat",
            ),
            Panel(
                "Build versions",
                "shoppulse and Python versions of the running processes (a mixed set means a "
                "rollout in progress).",
                [Target('count by (version, python) (shoppulse_build_info{namespace=~"$namespace"})',
                        instant=True)],
                kind="table",
            ),
            Panel(
                "Sentiment label share",
                "Share of each sentiment label among emitted labels. A sudden shift with no "
                "product change is model or input drift.",
                [Target(_share("shoppulse_sentiment_labels_total", "label"), "{{label}}")],
                unit="percentunit",
                width=12,
                stack_percent=True,
            ),
            Panel(
                "Interest tag share",
                "Share of each top interest tag among emitted tags (drift of what users talk about, "
                "or of the tagger).",
                [Target(_share("shoppulse_interest_tags_total", "tag"), "{{tag}}")],
                unit="percentunit",
                width=12,
                stack_percent=True,
            ),
            Panel(
                "Sentiment share: last hour vs last day",
                "Each label's share over the last hour against its share over the last 24 hours; "
                "lines that part show drift.",
                [
                    Target(_share("shoppulse_sentiment_labels_total", "label", "[1h]"), "{{label}} 1h"),
                    Target(_share("shoppulse_sentiment_labels_total", "label", "[1d]"), "{{label}} 24h"),
                ],
                unit="percentunit",
                width=24,
            ),
        ],
    ),
    Row(
        "Profiles",
        [
            Panel(
                "Profile updates and publishes per second",
                "Profile changes applied, and profiles published to user-profiles, per second.",
                [
                    Target(f"sum by (stage) ({_rate('shoppulse_profiles_updated_total')})", "updated"),
                    Target(f"sum by (stage) ({_rate('shoppulse_profiles_published_total')})", "published"),
                ],
                unit="ops",
                width=12,
            ),
            Panel(
                "Duplicate signals ignored per second",
                "Signals whose event_id was already applied (redeliveries after a restart or "
                "rebalance): idempotence at work, not an error.",
                [Target(f"sum by (stage) ({_rate('shoppulse_signals_duplicate_total')})", "{{stage}}")],
                unit="ops",
                width=12,
            ),
        ],
    ),
    Row(
        "Resources",
        [
            Panel(
                "Resident memory per process",
                "RSS of each stage process. It should level off once the model is loaded and the "
                "first batches ran: librdkafka's prefetch and in-flight outputs are capped, so a "
                "backlog must not make it grow (a steady climb is a leak).",
                [
                    Target(
                        _per_stage('process_resident_memory_bytes{namespace=~"$namespace"}'),
                        "{{stage}} {{instance}}",
                    )
                ],
                unit="bytes",
                width=12,
            ),
            Panel(
                "CPU per process",
                "Cores used by each stage process. Enrich near its CPU limit means it is "
                "model-bound: add replicas (partitions permitting) or a GPU; see Deployment.",
                [
                    Target(
                        _per_stage(f'rate(process_cpu_seconds_total{{namespace=~"$namespace"}}{RATE})'),
                        "{{stage}} {{instance}}",
                    )
                ],
                unit="short",
                width=12,
            ),
        ],
    ),
]

# --- the business dashboard: stage 3's per-category series -------------------------------------
# The category series carry no `stage` label (only stage 3 writes them) and no product id: their
# labels are taxonomy categories and tags, known aspects, sentiments, actions and currencies.
CAT = f'{NS}, category=~"$category"'
CAT_TAG = f'{CAT}, tag=~"$tag"'
_REVIEWS = "shoppulse_category_reviews_total"
_ASPECTS = "shoppulse_category_aspect_mentions_total"
_ACTIONS = "shoppulse_category_actions_total"
_REVENUE = "shoppulse_category_revenue_total"
# Aspect mentions carry no `tag`: keep those of the categories the chosen tags hold. A category has
# one tag, and its review series exists whenever its aspect series does (both come from its reviews).
_OF_CHOSEN_TAGS = f"group by (namespace, category) ({_REVIEWS}{{{CAT_TAG}}})"
NEGATIVE = 'sentiment="negative"'
ORDERS = 'action="order"'
VIEWS = 'action="view"'


def _cat_rate(metric: str, extra: str = "") -> str:
    return _rate(metric, extra, CAT_TAG)


def _aspect_rate(extra: str = "") -> str:
    return f"{_rate(_ASPECTS, extra, CAT)} and on (namespace, category) {_OF_CHOSEN_TAGS}"


def _share_of(by: str, part: str, whole: str) -> str:
    """sum(part) / sum(whole) by ``by``; 0 where the part's series does not exist yet.

    A counter series is born at its first increment: a category without a negative review (an
    aspect without a complaint, a category without an order) has no series to divide, and would
    vanish from the panel instead of showing 0 (``0 / whole``: 0, or NaN like the share itself when
    the whole is 0 too).
    """
    whole_sum = f"sum by ({by}) ({whole})"
    return f"sum by ({by}) ({part}) / {whole_sum} or 0 / {whole_sum}"


BUSINESS_ROWS: list[Row] = [
    Row(
        "Reviews",
        [
            Panel(
                "Reviews per minute by category",
                "Reviews counted by stage 3 per minute, by the category the model read from the review.",
                [Target(f"60 * sum by (category) ({_cat_rate(_REVIEWS)})", "{{category}}")],
                unit="opm",
                width=12,
            ),
            Panel(
                "Negative review share by category",
                "Share of each category's reviews the model labelled negative. A category that climbs "
                "away from its usual level has a problem worth reading about (its negative keywords "
                "and examples: GET /categories/{category}/insights).",
                [Target(
                    _share_of("category", _cat_rate(_REVIEWS, NEGATIVE), _cat_rate(_REVIEWS)),
                    "{{category}}",
                )],
                unit="percentunit",
                width=12,
            ),
        ],
    ),
    Row(
        "Aspect complaints",
        [
            Panel(
                "Negative aspect mentions per minute by aspect",
                "Review clauses about an aspect (物流, 质量, 包装, ...) that the model judged negative, per "
                "minute, over the chosen categories: what customers complain about.",
                [Target(f"60 * sum by (aspect) ({_aspect_rate(NEGATIVE)})", "{{aspect}}")],
                unit="opm",
                width=12,
            ),
            Panel(
                "Negative share of each aspect's mentions",
                "Of the clauses that mention an aspect, the share judged negative. A rising line with a "
                "steady mention rate means the same topic turned sour.",
                [Target(
                    _share_of("aspect", _aspect_rate(NEGATIVE), _aspect_rate()),
                    "{{aspect}}",
                )],
                unit="percentunit",
                width=12,
            ),
        ],
    ),
    Row(
        "Sales",
        [
            Panel(
                "GMV per hour by category and currency",
                "Order revenue (price × quantity of each order line) per hour at the current pace, by "
                "the catalog category of the line and the order's currency. A float for trends; the "
                "exact sums are on category-insights and GET /categories/{category}/insights.",
                [Target(f"3600 * sum by (category, currency) ({_cat_rate(_REVENUE)})",
                        "{{category}} {{currency}}")],
                width=12,
            ),
            Panel(
                "Orders per minute by category",
                "Orders per minute that contain a product of the category (an order of two categories "
                "counts in both).",
                [Target(f"60 * sum by (category) ({_cat_rate(_ACTIONS, ORDERS)})", "{{category}}")],
                unit="opm",
                width=12,
            ),
            Panel(
                "Conversion (orders per view) by category",
                "Orders divided by product views, per category: the share of views that end in an "
                "order. Views count only clicks whose event names a catalog category.",
                [Target(
                    _share_of(
                        "category",
                        _cat_rate(_ACTIONS, ORDERS),
                        _cat_rate(_ACTIONS, VIEWS),
                    ),
                    "{{category}}",
                )],
                unit="percentunit",
                width=12,
            ),
            Panel(
                "Shopper actions per minute",
                "Views, clicks, favorites, add-to-carts and orders per minute over the chosen categories: "
                "the funnel, step by step.",
                [Target(f"60 * sum by (action) ({_cat_rate(_ACTIONS)})", "{{action}}")],
                unit="opm",
                width=12,
            ),
        ],
    ),
    Row(
        "Alerts and late data",
        [
            Panel(
                "Alerts raised",
                "Alerts stage 3 raised (negative_spike, aspect_surge) per interval, by kind and scope "
                "(a product, or a category whose complaints span several products); which one, the "
                "window and examples: the alerts topic and GET /alerts. Not filtered by category.",
                [Target(
                    f"sum by (kind, scope) (increase(shoppulse_alerts_raised_total{{{NS}}}{RATE}))",
                    "{{kind}} {{scope}}",
                )],
                bars=True,
            ),
            Panel(
                "Late events per minute by input topic",
                "Events that arrived more than insights.grace_s after their window ended: not counted "
                "in any figure above, only here. A steady rate means an upstream runs behind.",
                [Target(f"60 * sum by (topic) ({_rate('shoppulse_late_events_total', sel=NS)})", "{{topic}}")],
                unit="opm",
            ),
            Panel(
                "Facts folded per minute by result",
                "Facts (one per review, action or order line, for its product, category and tag) applied "
                "to their rows, ignored as replays (duplicate) or too late, per minute.",
                [Target(f"60 * sum by (result) ({_rate('shoppulse_insight_facts_total', sel=NS)})", "{{result}}")],
                unit="opm",
            ),
        ],
    ),
]


def _thresholds(steps: list[tuple[float, str]], kind: str) -> dict[str, Any]:
    base = "red" if kind == "stat" and steps else "green"
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in steps],
    }


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = []
    for i, target in enumerate(panel.targets):
        t: dict[str, Any] = {
            "datasource": DATASOURCE,
            "expr": target.expr,
            "legendFormat": target.legend or "__auto",
            "refId": chr(ord("A") + i),
        }
        if target.instant:
            t.update({"instant": True, "range": False})
        if panel.kind == "table":
            t["format"] = "table"
        targets.append(t)
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": _thresholds(panel.thresholds, panel.kind),
    }
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line",
            "lineWidth": 1,
            "fillOpacity": 80 if panel.bars else 10,
            "showPoints": "never",
            "stacking": {"mode": "percent" if panel.stack_percent else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": targets,
    }
    if panel.kind == "timeseries":
        body["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        body["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                           "colorMode": "background", "textMode": "value_and_name"}
    elif panel.kind == "table":
        body["options"] = {"showHeader": True}
        body["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    return body


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0}


_NAMESPACE = _variable("namespace", "Namespace", "label_values(shoppulse_build_info, namespace)")
# Each dashboard links to the other (both are tagged shoppulse), keeping the time range.
_LINKS = [{"type": "dashboards", "tags": ["shoppulse"], "title": "shoppulse dashboards", "asDropdown": True,
           "includeVars": False, "keepTime": True, "targetBlank": False, "icon": "external link"}]

OVERVIEW = Dashboard(
    uid="shoppulse-overview",
    title="shoppulse",
    description="Throughput, lag, latency, batching, errors, model drift and profiles of the stream stages.",
    tags=["shoppulse", "kafka", "streaming"],
    output=OUTPUT,
    variables=[
        _datasource_variable(),
        _NAMESPACE,
        _variable("stage", "Stage", 'label_values(shoppulse_events_consumed_total{namespace=~"$namespace"}, stage)'),
    ],
    rows=OVERVIEW_ROWS,
)

BUSINESS = Dashboard(
    uid="shoppulse-business",
    title="shoppulse business",
    description="Stage 3 per category and interest tag: reviews and negative share, aspect complaints, GMV, "
    "conversion, alerts and late events.",
    tags=["shoppulse", "business", "insights"],
    output=BUSINESS_OUTPUT,
    variables=[
        _datasource_variable(),
        _NAMESPACE,
        _variable("tag", "Interest tag", f"label_values({_REVIEWS}{{{NS}}}, tag)"),
        _variable("category", "Category", f'label_values({_REVIEWS}{{{NS}, tag=~"$tag"}}, category)'),
    ],
    rows=BUSINESS_ROWS,
)

DASHBOARDS = (OVERVIEW, BUSINESS)


def build(dashboard: Dashboard = OVERVIEW) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    panel_id, y = 1, 0
    for row in dashboard.rows:
        panels.append({"id": panel_id, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id, y, x, row_height = panel_id + 1, y + 1, 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": dashboard.tags,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "annotations": {"list": []},
        "links": _LINKS,
        "templating": {"list": dashboard.variables},
        "panels": panels,
    }


def render(dashboard: Dashboard = OVERVIEW) -> str:
    return json.dumps(build(dashboard), indent=2, ensure_ascii=False) + "\n"


def markdown(dashboard: Dashboard = OVERVIEW) -> str:
    lines = []
    for row in dashboard.rows:
        lines.append(f"**{row.title}**\n")
        lines.extend(f"- *{p.title}*: {p.description}" for p in row.panels)
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the docs/observability.md panel lists instead")
    args = parser.parse_args()
    for dashboard in DASHBOARDS:
        if args.markdown:
            print(f"<!-- {dashboard.output.name} -->\n")
            print(markdown(dashboard))
        else:
            dashboard.output.write_text(render(dashboard), encoding="utf-8")
            print(f"wrote {dashboard.output}")


if __name__ == "__main__":
    main()
