"""``shoppulse bench soak``: the three stages under a steady load for minutes; memory, lag and errors per minute.

1. Starts the embedded broker (or uses ``--bootstrap``) with fresh topics, then the enrich,
   profiles and insights stages as child processes (exactly as deployed).
2. Without ``--rate``: measures each stage's capacity on ``--capacity-events`` preloaded events
   (committed offsets over time, as ``bench pipeline`` does: enrich on the inputs, then profiles on
   the signals enrich wrote, then insights on the insights and signals: its fold of the
   re-keyed facts runs in the same process, and its lag below covers ``insight-facts`` too) and
   offers half of the slowest one.
3. Offers the simulated mixed stream at that rate for ``--minutes``, stamped with the wall clock,
   and once a minute samples each stage's resident memory, each group's lag (end offsets minus
   committed offsets, summed over partitions), the stages' error counters (produce errors and
   dead letters, from their ``/metrics``), and whether both processes are alive.

A line per minute on stderr; last line one JSON object with every minute and a summary. What a
healthy run looks like: memory flat after the first minutes, lag bounded (a few seconds of
events), zero errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from shoppulse.devkit.bench.pipeline import (
    CommittedCounter,
    embedded_or_given_broker,
    measure_capacity,
    proc_status_mib,
    stage_command,
    start_stage,
    stop_process,
    topic_counts,
)
from shoppulse.devkit.bench.stats import json_line

STAGES = ("enrich", "profiles", "insights")
ERROR_SERIES = re.compile(r"^shoppulse_(produce_errors|events_dead_lettered)_total\{[^}]*\} (\S+)$", re.M)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from shoppulse.consumers.settings import DEFAULT_BUNDLE

    parser.add_argument("--minutes", type=float, default=30.0, help="minutes under load (default 30)")
    parser.add_argument("--rate", type=float, help="events/s offered (default: half the slower stage's capacity)")
    parser.add_argument(
        "--capacity-events", type=int, default=20_000, help="events for the capacity runs (default 20000)"
    )
    parser.add_argument("--kinds", default="review,click,order", help="event kinds (default: the mixed stream)")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="model bundle (default: the packaged one)")
    parser.add_argument("--backend", choices=["kafka", "tansu"], help="embedded broker (default: kafka if Java)")
    parser.add_argument("--bootstrap", help="use this running cluster instead of an embedded broker")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (default 3)")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples (default 60)")


def soak_settings(bootstrap: str, args: argparse.Namespace, run_id: str) -> Any:
    from shoppulse.consumers.settings import load_settings
    from shoppulse.devkit.broker import free_port

    names = ("reviews", "clicks", "orders", "review_insights", "user_signals", "user_profiles", "dead_letter")
    names += ("insight_facts", "product_insights", "category_insights", "alerts")
    return load_settings(
        kafka={"bootstrap_servers": bootstrap, "partitions": args.partitions, "session_timeout_ms": 6000},
        topics={name: f"soak-{run_id}-{name}" for name in names},
        enrich={"bundle_dir": str(args.bundle), "group_id": f"soak-enrich-{run_id}"},
        profiles={"app_id": f"soak-profiles-{run_id}", "data_dir": str(Path(args.work) / "profiles")},
        insights={"app_id": f"soak-insights-{run_id}", "data_dir": str(Path(args.work) / "insights")},
        http={
            "enrich_port": free_port(),
            "profiles_port": free_port(),
            "insights_port": free_port(),
            "host": "127.0.0.1",
        },
    )


class Lag:
    """End offsets minus a group's committed offsets, summed over a set of topics."""

    def __init__(self, settings: Any, group: str, topics: list[str]) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(settings.librdkafka(**{"group.id": group}))
        self.parts = [TopicPartition(t, p) for t in topics for p in range(settings.kafka.partitions)]

    def total(self) -> int | None:
        from confluent_kafka import KafkaException, TopicPartition

        try:
            committed = self.consumer.committed(self.parts, timeout=10)
            ends = [
                self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)[1]
                for tp in self.parts
            ]
        except KafkaException:
            return None
        return sum(end - max(0, tp.offset) for end, tp in zip(ends, committed, strict=True))

    def close(self) -> None:
        self.consumer.close()


class SumLag:
    """Several groups' lags added up (stage 3: its re-key group on the inputs, its fold's on ``insight-facts``)."""

    def __init__(self, *lags: Lag) -> None:
        self.lags = lags

    def total(self) -> int | None:
        totals = [lag.total() for lag in self.lags]
        return None if any(t is None for t in totals) else sum(t for t in totals if t is not None)

    def close(self) -> None:
        for lag in self.lags:
            lag.close()


def stage3_lag(settings: Any) -> SumLag:
    from shoppulse.consumers.insights.rekey import rekey_group

    t = settings.topics
    return SumLag(
        Lag(settings, rekey_group(settings), [t.review_insights, t.user_signals]),
        Lag(settings, settings.insights.app_id, [t.insight_facts]),
    )


def metrics_text(port: int, timeout_s: float = 5.0) -> str | None:
    """A stage's ``/metrics`` page on this machine, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as resp:
            return resp.read().decode("utf-8")
    except OSError:
        return None


def error_count(port: int) -> float | None:
    """Produce errors plus dead letters the stage reports on /metrics (the stream has no bad events)."""
    text = metrics_text(port)
    return None if text is None else sum(float(value) for _, value in ERROR_SERIES.findall(text))


def rss_mib(pid: int) -> float | None:
    rss = proc_status_mib(pid, "VmRSS")
    return round(rss, 1) if rss is not None else None


def summarise(minutes: list[dict[str, Any]]) -> dict[str, Any]:
    """Growth of memory after the first sample, the largest lags, and the errors at the end."""

    def series(key: str) -> list[float]:
        return [m[key] for m in minutes if m.get(key) is not None]

    out: dict[str, Any] = {}
    for stage in STAGES:
        rss = series(f"{stage}_rss_mib")
        out[f"{stage}_rss_mib_first"] = rss[0] if rss else None
        out[f"{stage}_rss_mib_last"] = rss[-1] if rss else None
        out[f"{stage}_rss_mib_max"] = max(rss) if rss else None
        lag = series(f"{stage}_lag")
        out[f"{stage}_lag_max"] = max(lag) if lag else None
        errors = series(f"{stage}_errors")
        out[f"{stage}_errors"] = errors[-1] if errors else None
    out["all_alive_throughout"] = all(m["alive"] for m in minutes)
    return out


def run(args: argparse.Namespace) -> int:
    from shoppulse.consumers.insights.rekey import rekey_group
    from shoppulse.consumers.topics import ensure_topics
    from shoppulse.devkit.simulator import Simulator
    from shoppulse.devkit.simulator.produce import produce_stream

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if args.minutes <= 0 or (args.rate is not None and args.rate <= 0):
        print("--minutes and --rate must be positive", file=sys.stderr)
        return 2
    run_id = f"{os.getpid()}-{int(time.time())}"
    args.work = tempfile.mkdtemp(prefix="shoppulse-bench-soak-")
    broker = enrich = profiles = insights = None
    stop = threading.Event()
    try:
        broker, bootstrap = embedded_or_given_broker(args, "soak")
        settings = soak_settings(bootstrap, args, run_id)
        ensure_topics(settings)
        work = Path(args.work)
        enrich = start_stage(settings, work / "enrich.log")
        profiles = start_stage(settings, work / "profiles.log", stage_command("profiles"))
        insights_command = stage_command("insights")
        t = settings.topics
        stage3_inputs = [t.review_insights, t.user_signals]
        rate = args.rate
        capacities: dict[str, float] = {}
        if rate is None:
            print(f"[soak] capacity run on {args.capacity_events} events ...", file=sys.stderr, flush=True)
            produce_stream(settings, Simulator(seed=args.seed + 1, users=args.users), args.capacity_events, None, kinds)
            for stage, group, topics, proc in (
                ("enrich", settings.enrich.group_id, t.inputs(), enrich),
                ("profiles", settings.profiles.app_id, [t.user_signals], profiles),
                ("insights", rekey_group(settings), stage3_inputs, None),
            ):
                if proc is None:  # stage 3 starts on the finished backlog: run alongside, it would not be measured
                    proc = insights = start_stage(settings, work / "insights.log", insights_command)
                counter = CommittedCounter(settings, group, topics)
                # Enrich and profiles read one record per input event; stage 3 every insight and signal.
                target = sum(topic_counts(settings, topics).values()) if stage == "insights" else args.capacity_events
                capacity, _ = measure_capacity(counter, target, proc, timeout_s=900)
                counter.close()
                if capacity is None:
                    raise RuntimeError(f"{stage} capacity could not be measured: raise --capacity-events")
                capacities[stage] = capacity
            rate = min(capacities.values()) / 2
            shown = ", ".join(f"{stage} {c:.0f}" for stage, c in capacities.items())
            print(f"[soak] capacity (events/s) {shown}: offering {rate:.0f}/s", file=sys.stderr, flush=True)
        if insights is None:
            insights = start_stage(settings, work / "insights.log", insights_command)
        total = int(rate * args.minutes * 60) + 1
        sim = Simulator(seed=args.seed, users=args.users)
        producer = threading.Thread(
            target=produce_stream, args=(settings, sim, total, rate, kinds), kwargs={"stop": stop}, daemon=True
        )
        lags = {
            "enrich": Lag(settings, settings.enrich.group_id, settings.topics.inputs()),
            "profiles": Lag(settings, settings.profiles.app_id, [settings.topics.user_signals]),
            "insights": stage3_lag(settings),
        }
        http = settings.http
        ports = {"enrich": http.enrich_port, "profiles": http.profiles_port, "insights": http.insights_port}
        procs = {"enrich": enrich, "profiles": profiles, "insights": insights}
        minutes: list[dict[str, Any]] = []
        started = time.monotonic()
        producer.start()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
            sample: dict[str, Any] = {"minute": round((time.monotonic() - started) / 60, 2)}
            for stage, proc in procs.items():
                sample[f"{stage}_rss_mib"] = rss_mib(proc.pid)
                sample[f"{stage}_lag"] = lags[stage].total()
                sample[f"{stage}_errors"] = error_count(ports[stage])
            sample["alive"] = all(p.poll() is None for p in procs.values())
            minutes.append(sample)
            print(f"[soak] {json.dumps(sample)}", file=sys.stderr, flush=True)
            if not sample["alive"]:
                break
        stop.set()
        producer.join(60)
        for lag in lags.values():
            lag.close()
        payload = {
            "rate": round(rate, 1),
            "capacities": {k: round(v, 1) for k, v in capacities.items()},
            "minutes_requested": args.minutes,
            "kinds": list(kinds),
        }
        payload |= {"summary": summarise(minutes), "samples": minutes}
        print(json_line(payload), flush=True)
        return 0 if payload["summary"]["all_alive_throughout"] else 1
    finally:
        stop.set()
        for proc in (enrich, profiles, insights):
            stop_process(proc)
        if broker is not None:
            broker.stop()
        shutil.rmtree(args.work, ignore_errors=True)
