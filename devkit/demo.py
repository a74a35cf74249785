"""``shoppulse demo``: the whole pipeline on one machine, with live progress, stopped cleanly.

Starts the embedded broker, creates the topics, starts the three stages as child processes
(exactly as in production: ``shoppulse run enrich`` / ``run profiles`` / ``run insights``),
feeds the simulator's stream at a steady rate with an incident from second 30 (one product's
reviews turn into 物流 complaints), and prints what flows out, alerts as they fire. Stage 3 runs
with 10-second windows and a 30-second baseline here, so the alert comes within the first
minute; production defaults are an hour and a day. Ctrl-C (or ``--duration``) stops everything
in reverse order and removes the broker's data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Consumer

from shoppulse.consumers.settings import Settings, load_settings, to_env
from shoppulse.consumers.topics import ensure_topics
from shoppulse.devkit.broker import free_port, make_broker
from shoppulse.devkit.simulator import Simulator
from shoppulse.devkit.simulator.incident import Incident
from shoppulse.devkit.simulator.produce import produce_stream


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run broker, simulator and both stages locally with live progress"
    )
    demo.add_argument(
        "--backend", choices=["kafka", "tansu"], help="embedded broker (default: kafka if Java)"
    )
    demo.add_argument("--rate", type=float, default=200.0, help="simulated events per second (default 200)")
    demo.add_argument(
        "--events", type=int, default=0, help="stop producing after N events (default: endless)"
    )
    demo.add_argument(
        "--duration", type=float, default=0.0, help="stop after N seconds (default: until Ctrl-C)"
    )
    demo.add_argument("--users", type=int, default=500)
    demo.add_argument("--bad-fraction", type=float, default=0.01)
    demo.add_argument("--no-profiles", action="store_true", help="run stage 1 only")
    demo.add_argument(
        "--incident",
        default="物流@30+60",
        help="ASPECT@START_S+DURATION_S of wall time (default 物流@30+60); 'none' for a quiet stream",
    )
    demo.add_argument(
        "--with-prometheus", action="store_true", help="also run a local Prometheus scraping both"
    )
    demo.set_defaults(func=run)


class _OutputWatcher(threading.Thread):
    """Counts records on the output topics and keeps the latest insight, for the progress line."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self.latest_insight: dict[str, Any] | None = None
        self.latest_user: str | None = None
        self.alerts: list[dict[str, Any]] = []  # appended as they arrive; the main loop prints new ones
        self.stop = threading.Event()

    def run(self) -> None:
        t = self.settings.topics
        consumer = Consumer(
            self.settings.librdkafka(
                **{
                    "group.id": f"demo-watch-{os.getpid()}",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                }
            )
        )
        consumer.subscribe([t.review_insights, t.user_signals, t.dead_letter, t.user_profiles, t.alerts])
        try:
            while not self.stop.is_set():
                for msg in consumer.consume(500, 0.5):
                    if msg.error() is not None:
                        continue
                    self.counts[msg.topic()] += 1
                    if msg.topic() == t.review_insights:
                        self.latest_insight = json.loads(msg.value())
                    elif msg.topic() == t.user_profiles and msg.key():
                        self.latest_user = msg.key().decode()
                    elif msg.topic() == t.alerts:
                        self.alerts.append(json.loads(msg.value()))
        finally:
            consumer.close()


def _start_stage(name: str, settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "shoppulse.consumers.cli", "run", name],
        env={**os.environ, **to_env(settings)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 40) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError, ConnectionError):
        return None


def _start_prometheus(settings: Settings, work: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus not installed (make tools installs it); continuing without", flush=True)
        return None
    port = free_port()
    http = settings.http
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 5s, evaluation_interval: 5s}\n"
        "scrape_configs:\n"
        f"  - job_name: shoppulse\n    static_configs:\n      - targets: ['{http.host}:{http.enrich_port}', "
        f"'{http.host}:{http.profiles_port}', '{http.host}:{http.insights_port}']\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, port


# Stage 3 at demo speed: 10-second windows, a 30-second baseline, alerts within the first minute.
DEMO_INSIGHTS = {
    "window_s": 10,
    "rolling_s": 60,
    "retention_s": 300,
    "grace_s": 5,
    "alert_baseline_windows": 3,
    "alert_min_baseline_reviews": 30,
    "alert_min_reviews": 20,
}
# The incident's product: 2 reviews a second, then 15 a second during the burst.
DEMO_INCIDENT_RATES = {"baseline_per_min": 120.0, "burst_per_min": 900.0}


def _describe_alert(alert: dict[str, Any], elapsed_s: float) -> str:
    seen, base = alert["observed"], alert["baseline"]
    what = alert.get("product_id") or alert.get("category") or alert.get("tag")
    aspect = f" {alert['aspect']}" if alert.get("aspect") else ""
    return (
        f"[demo] {elapsed_s:5.0f}s ALERT {alert['kind']}{aspect} on {alert['scope']} {what}: "
        f"{seen['negative']}/{seen['reviews']} negative in this window "
        f"(baseline {base['negative']}/{base['reviews']}); "
        f"top complaints {alert['top_complaint_aspects']}, keywords {alert['negative_keywords']}, "
        f"examples {alert['examples'][:3]}"
    )


def run(args: argparse.Namespace) -> int:
    try:
        incident = None
        if args.incident and args.incident != "none":
            parsed = Incident.parse(args.incident)
            incident = dataclasses.replace(parsed, **DEMO_INCIDENT_RATES)
    except ValueError as exc:
        print(f"shoppulse demo: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    work = Path(tempfile.mkdtemp(prefix="shoppulse-demo-"))
    broker = make_broker(args.backend)
    print(f"[demo] starting the embedded {broker.name} broker ...", flush=True)
    broker.start()
    base = load_settings()
    settings = load_settings(
        kafka={"bootstrap_servers": broker.bootstrap, "partitions": 3, "session_timeout_ms": 6000},
        http={
            "enrich_port": free_port(),
            "profiles_port": free_port(),
            "insights_port": free_port(),
            "host": "127.0.0.1",
        },
        profiles={"data_dir": str(work / "profiles"), "store": "memory"},
        insights=DEMO_INSIGHTS | {"data_dir": str(work / "insights")},
        enrich={"bundle_dir": str(base.enrich.bundle_dir)},
    )
    procs: list[subprocess.Popen[bytes]] = []
    stop_producing = threading.Event()
    producer: threading.Thread | None = None
    watcher = _OutputWatcher(settings)
    prometheus: tuple[subprocess.Popen[bytes], int] | None = None
    code = 1
    try:
        ensure_topics(settings)
        print(f"[demo] broker {broker.bootstrap}; topics ready; logs in {work}", flush=True)
        procs.append(_start_stage("enrich", settings, work))
        if not args.no_profiles:
            procs.append(_start_stage("profiles", settings, work))
            procs.append(_start_stage("insights", settings, work))
        http = settings.http
        print(f"[demo] enrich metrics   http://{http.host}:{http.enrich_port}/metrics  (/healthz, /readyz)")
        if not args.no_profiles:
            print(f"[demo] profiles metrics http://{http.host}:{http.profiles_port}/metrics")
            print(f"[demo] profile lookup   http://{http.host}:{http.profiles_port}/profiles/<user_id>")
            print(f"[demo] insights         http://{http.host}:{http.insights_port}/alerts  (/products/<id>/insights)")
        if args.with_prometheus:
            prometheus = _start_prometheus(settings, work)
            if prometheus:
                print(f"[demo] prometheus       http://127.0.0.1:{prometheus[1]}/graph", flush=True)
        watcher.start()
        sim = Simulator(seed=7, users=args.users, bad_fraction=args.bad_fraction, incident=incident)
        if incident is not None:
            print(
                f"[demo] incident: from {incident.start_s:g}s, {incident.aspect} complaints about product "
                f"{sim.incident_product.product_id} ({sim.incident_product.title})",
                flush=True,
            )
        shown_alerts = 0
        total = args.events or 10**12
        producer = threading.Thread(
            target=lambda: produce_stream(settings, sim, total, args.rate, stop=stop_producing),
            daemon=True,
            name="simulator",
        )
        producer.start()
        started = time.monotonic()
        while not stop.wait(2.0):
            for proc in procs:
                if proc.poll() is not None:
                    print(
                        f"[demo] a stage exited with code {proc.returncode}; see logs in {work}", flush=True
                    )
                    return 1
            t = settings.topics
            c = watcher.counts
            produced = sum(sim.truth.counts.values()) + len(sim.truth.bad)
            line = (
                f"[demo] {time.monotonic() - started:5.0f}s produced {produced}  insights {c[t.review_insights]}  "
                f"signals {c[t.user_signals]}  dead-letter {c[t.dead_letter]}  profiles {c[t.user_profiles]}"
            )
            print(line, flush=True)
            insight = watcher.latest_insight
            if insight and insight.get("sentiment"):
                # Each verdict beside the clause it was read from, so a reader can check that they agree.
                aspects = ", ".join(
                    f"{a['aspect']} 「{a['clause']}」 {(a['sentiment'] or {}).get('label', 'no verdict')}"
                    for a in insight["aspects"]
                )
                category = (insight.get("interest") or {}).get("category")
                print(
                    f"         latest review {insight['event_id']}: {insight['sentiment']['label']} "
                    f"({insight['sentiment']['probability']:.2f}), {category}, keywords {insight['keywords']}, "
                    f"aspects [{aspects}]",
                    flush=True,
                )
            if watcher.latest_user and not args.no_profiles:
                profile = _get_json(f"http://{http.host}:{http.profiles_port}/profiles/{watcher.latest_user}")
                if profile:
                    top = ", ".join(
                        f"{t['tag']} {t['score']:.2f}" for t in (profile.get("top_tags") or []) if "tag" in t
                    )
                    print(
                        f"         profile {watcher.latest_user}: top tags [{top}], version {profile.get('version')}"
                    )
            for alert in watcher.alerts[shown_alerts:]:
                print(_describe_alert(alert, time.monotonic() - started), flush=True)
            shown_alerts = len(watcher.alerts)
            if args.duration and time.monotonic() - started >= args.duration:
                break
            if args.events and not producer.is_alive() and c[t.user_signals] + c[t.dead_letter] >= produced:
                break
        code = 0
        return code
    finally:
        print("[demo] stopping: the simulator, then the stages drain and commit, then the broker", flush=True)
        stop_producing.set()
        if producer is not None:
            producer.join(30)  # it flushes what it produced, while the broker is still up
        watcher.stop.set()
        if watcher.is_alive():
            watcher.join(10)  # its consumer leaves the group while the broker is up
        for proc in reversed(procs):
            _stop(proc)
        if prometheus:
            _stop(prometheus[0])
        broker.stop()
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)
            print("[demo] stopped cleanly", flush=True)
        else:
            print(f"[demo] stopped; logs kept in {work}", flush=True)
