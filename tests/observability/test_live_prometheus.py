"""A real Prometheus scrapes both running stages while simulated events flow: every dashboard
panel's query must return data, and the live exposition must pass ``promtool check metrics``."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from consumers.broker import free_port
from consumers.simulator import Simulator
from consumers.simulator.produce import produce_stream
from tests.conftest import isolated_settings
from tests.integration.enrich_harness import start_enrich, start_profiles, stop, wait_for
from tests.observability.promql import dashboard_queries

pytestmark = pytest.mark.integration


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _query(port: int, expr: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.loads(_get(url))
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_every_dashboard_panel_returns_data_from_a_real_prometheus(
    kafka_broker, tiny_bundle: Path, prometheus_bin: str, promtool: str, tmp_path: Path
) -> None:
    suffix = str(time.monotonic_ns())
    settings = isolated_settings(
        kafka_broker.bootstrap,
        enrich={"group_id": f"obs-{suffix}"},
        profiles={"app_id": f"obs-profiles-{suffix}", "data_dir": str(tmp_path / "profiles")},
    )
    enrich_port, profiles_port, prom_port = free_port(), free_port(), free_port()
    stop_producing = threading.Event()
    sim = Simulator(seed=3, users=100, bad_fraction=0.05)  # live timestamps: real end-to-end latency

    def feed() -> None:
        while not stop_producing.is_set():
            produce_stream(settings, sim, 100, rate=200)

    enrich = start_enrich(settings, tiny_bundle, log_path=tmp_path / "enrich.log", http_port=enrich_port)
    profiles = start_profiles(settings, tmp_path / "profiles.log", profiles_port)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: shoppulse\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{enrich_port}', '127.0.0.1:{profiles_port}']}}]\n",
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
    try:
        wait_for(lambda: _ready(prom_port), 30, "prometheus to be ready", procs=[prometheus])
        wait_for(
            lambda: len(_query(prom_port, "up == 1")) == 2, 90, "both stages to be scraped", procs=[enrich, profiles]
        )
        for port in (enrich_port, profiles_port):
            exposition = _get(f"http://127.0.0.1:{port}/metrics")
            check = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True)
            assert check.returncode == 0, (port, check.stdout.decode(), check.stderr.decode())

        queries = dashboard_queries()
        # Every target of every panel (a panel may have several: p50/p95/p99), not one per title.
        empty = set(queries)
        deadline = time.monotonic() + 150
        while empty and time.monotonic() < deadline:
            for title, expr in sorted(empty):
                if _query(prom_port, expr):
                    empty.discard((title, expr))
            if empty:
                time.sleep(1)
        assert not empty, f"{len(empty)} of {len(queries)} panel queries returned no data: {sorted(empty)}"
    finally:
        stop_producing.set()
        feeder.join(30)
        stop(prometheus)
        stop(enrich)
        stop(profiles)


def _ready(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/-/ready", timeout=1).strip() != b""
    except OSError:
        return False
