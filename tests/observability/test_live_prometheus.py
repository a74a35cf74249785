"""A real Prometheus scrapes the three running stages while simulated events flow: every panel query
of both dashboards must return data, and each live exposition must pass ``promtool check metrics``.

Enrich turns the simulated reviews, clicks and orders into ``review-insights`` and ``user-signals``;
profiles and insights read them. The simulator's clicks and order lines carry catalog categories,
its reviews get the (tiny test) model's category. An alert needs a product with a history, which a
short live stream does not build, so the test also writes one incident straight into
``review-insights``: a product's 24 quiet hours, then an hour of complaints about 物流. That raises
a ``negative_spike`` and an ``aspect_surge`` (docs/insights.md), so *Alerts raised* has data too.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from shoppulse.consumers.settings import Settings
from shoppulse.devkit.broker import free_port
from shoppulse.devkit.simulator import Simulator
from shoppulse.devkit.simulator.produce import produce_stream
from tests.conftest import isolated_settings
from tests.integration.enrich_harness import start_enrich, start_profiles, stop, wait_for
from tests.integration.profiles_harness import Worker
from tests.observability.promql import BUSINESS_DASHBOARD, DASHBOARDS, dashboard_queries

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _query(port: int, expr: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.loads(_get(url))
    assert body["status"] == "success", body
    return body["data"]["result"]


def incident_reviews(product: str, category: str, now_ms: int) -> list[dict[str, Any]]:
    """``review-insights`` records (enrich's form) of one product: 2 positive reviews in each of the 24
    hourly windows before the current one, then 30 negative ones about 物流 in the current window.

    They name one input partition of their own (``source``) with rising offsets, and one user, so they
    stay in order on one ``review-insights`` partition (the exact deduplication relies on it).
    """
    start = now_ms - now_ms % HOUR_MS
    reviews = [(start - (24 - w) * HOUR_MS + i * 60_000, False) for w in range(24) for i in range(2)]
    reviews += [(min(start + i * 1000, now_ms), True) for i in range(30)]
    records = []
    for offset, (ts, negative) in enumerate(reviews):
        label = "negative" if negative else "positive"
        records.append(
            {
                "schema_version": 1,
                "event_id": f"{product}-r{offset}",
                "user_id": f"{product}-user",
                "product_id": product,
                "rating": 1 if negative else 5,
                "ts": ts,
                "sentiment": {"label": label, "probability": 0.9, "p_positive": 0.1 if negative else 0.9},
                "interest": {"category": category, "probability": 0.9, "top_categories": {}, "tags": {}},
                "keywords": ["太慢"] if negative else ["不错"],
                "aspects": [{"aspect": "物流", "clause": "…", "sentiment": {"label": label, "probability": 0.9}}],
                "source": {"topic": f"{product}-reviews", "partition": 0, "offset": offset},
            }
        )
    return records


def produce_review_insights(settings: Settings, records: list[dict[str, Any]]) -> None:
    producer = Producer(settings.librdkafka(partitioner="murmur2_random", **{"enable.idempotence": True}))
    for record in records:
        producer.produce(
            settings.topics.review_insights,
            json.dumps(record, ensure_ascii=False).encode("utf-8"),
            record["user_id"].encode("utf-8"),
        )
    assert producer.flush(30) == 0, "incident reviews not delivered"


def test_every_dashboard_panel_returns_data_from_a_real_prometheus(
    kafka_broker, tiny_bundle: Path, prometheus_bin: str, promtool: str, tmp_path: Path
) -> None:
    suffix = str(time.monotonic_ns())
    settings = isolated_settings(
        kafka_broker.bootstrap,
        enrich={"group_id": f"obs-{suffix}"},
        profiles={"app_id": f"obs-profiles-{suffix}", "data_dir": str(tmp_path / "profiles")},
        insights={"app_id": f"obs-insights-{suffix}", "publish_interval_s": 0.5},
    )
    enrich_port, profiles_port, prom_port = free_port(), free_port(), free_port()
    stop_producing = threading.Event()
    sim = Simulator(seed=3, users=100, bad_fraction=0.05)  # live timestamps: real end-to-end latency

    def feed() -> None:
        while not stop_producing.is_set():
            produce_stream(settings, sim, 100, rate=200)

    enrich = start_enrich(settings, tiny_bundle, log_path=tmp_path / "enrich.log", http_port=enrich_port)
    profiles = start_profiles(settings, tmp_path / "profiles.log", profiles_port)
    insights_cli = "shoppulse.consumers.insights.cli"
    insights = Worker(settings, tmp_path, "insights", stage="insights", module=insights_cli).start()
    stages = {"enrich": enrich_port, "profiles": profiles_port, "insights": insights.port}
    config = tmp_path / "prometheus.yml"
    targets = ", ".join(f"'127.0.0.1:{port}'" for port in stages.values())
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: shoppulse\n"
        f"    static_configs: [{{targets: [{targets}]}}]\n",
        encoding="utf-8",
    )
    prometheus = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=open(tmp_path / "prometheus.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    running = [enrich, profiles, insights.proc]
    try:
        wait_for(lambda: _ready(prom_port), 30, "prometheus to be ready", procs=[prometheus])
        wait_for(insights.ready, 120, "the insights worker to be ready", procs=running)
        product = f"obs-incident-{uuid.uuid4().hex[:6]}"
        produce_review_insights(settings, incident_reviews(product, "手机", int(time.time() * 1000)))
        wait_for(
            lambda: len(_query(prom_port, "up == 1")) == len(stages), 90, "every stage to be scraped", procs=running
        )
        for name, port in stages.items():
            exposition = _get(f"http://127.0.0.1:{port}/metrics")
            check = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True)
            assert check.returncode == 0, (name, check.stdout.decode(), check.stderr.decode())

        # Every target of every panel of both dashboards (a panel may have several: p50/p95/p99).
        queries = {(path.name, title, expr) for path in DASHBOARDS for title, expr in dashboard_queries(path)}
        empty = set(queries)
        deadline = time.monotonic() + 180
        while empty and time.monotonic() < deadline:
            for item in sorted(empty):
                if _query(prom_port, item[2]):
                    empty.discard(item)
            if empty:
                time.sleep(1)
        assert not empty, (
            f"{len(empty)} of {len(queries)} panel queries returned no data: {sorted(empty)}\n"
            f"--- insights\n{insights.diagnosis()}\n{insights.log_tail(2000)}"
        )
        # A share shows 0 for a category without a negative review (without an order), not nothing:
        # every category with a rate of reviews (of views) is on the panel. The rates are read
        # first, as a category that gains its second sample in between may appear in the share only.
        business = dict(dashboard_queries(BUSINESS_DASHBOARD))

        def categories(expr: str) -> set[str]:
            return {r["metric"]["category"] for r in _query(prom_port, expr)}

        reviewed = categories(business["Reviews per minute by category"])
        viewed = categories('sum by (category) (rate(shoppulse_category_actions_total{action="view"}[1m]))')
        assert reviewed and viewed
        assert categories(business["Negative review share by category"]) >= reviewed
        assert categories(business["Conversion (orders per view) by category"]) >= viewed
        raised = _query(prom_port, "shoppulse_alerts_raised_total")
        alerts = {(r["metric"]["kind"], r["metric"]["scope"]) for r in raised if r["metric"]["scope"] == "product"}
        assert alerts == {("negative_spike", "product"), ("aspect_surge", "product")}, raised
    finally:
        stop_producing.set()
        feeder.join(30)
        stop(prometheus)
        stop(enrich)
        stop(profiles)
        insights.stop()


def _ready(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/-/ready", timeout=1).strip() != b""
    except OSError:
        return False
