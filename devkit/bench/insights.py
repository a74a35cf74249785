"""Stage 3 in ``shoppulse bench pipeline``: does it keep up with what enrich produces?

1. Capacity: once enrich has drained the preloaded backlog, ``shoppulse run insights`` starts
   as a child process on enrich's outputs (``review-insights`` and ``user-signals``). The rate
   is input records per second from the first record it read until both steps are done: the
   forward step has read every input record and the fold every ``insight-facts`` record (its
   read counters on ``/metrics``; faust commits only every few seconds). It is compared with
   enrich's capacity in the same unit: enrich's events/s times the records each event became.
2. Under load: stage 3 keeps running while the latency levels offer their load to enrich, all
   processes on the same cores; its lag (end offsets minus committed, over its inputs and
   ``insight-facts``) is sampled every second. Then: how long it took to reach zero.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from shoppulse.devkit.bench.pipeline import stage_command, start_stage, stop_process, topic_counts
from shoppulse.devkit.bench.soak import SumLag, metrics_text, stage3_lag
from shoppulse.devkit.bench.stats import rounded

INSIGHTS_COMMAND = stage_command("insights")
_CONSUMED = re.compile(r'^shoppulse_events_consumed_total\{stage="insights",topic="([^"]+)"\} (\S+)$', re.M)
LAG_SAMPLE_S = 1.0


def with_insights(settings: Any, run_id: str, work: Path) -> Any:
    """The bench's settings with stage 3's own topics, group, store directory and HTTP port."""
    from shoppulse.devkit.broker import free_port

    t = settings.topics.model_copy(
        update={
            name: f"bench-{run_id}-{name}"
            for name in ("insight_facts", "product_insights", "category_insights", "alerts")
        }
    )
    insights = settings.insights.model_copy(
        update={"app_id": f"bench-insights-{run_id}", "data_dir": str(work / "insights")}
    )
    http = settings.http.model_copy(update={"insights_port": free_port()})
    return settings.model_copy(update={"topics": t, "insights": insights, "http": http})


class LagSampler(threading.Thread):
    """Stage 3's lag every ``LAG_SAMPLE_S`` seconds, as (monotonic time, lag) samples."""

    def __init__(self, lag: SumLag) -> None:
        super().__init__(daemon=True, name="insights-lag")
        self.lag = lag
        self.samples: list[tuple[float, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(LAG_SAMPLE_S):
            value = self.lag.total()
            if value is not None:
                self.samples.append((time.monotonic(), value))

    def between(self, start: float, end: float) -> dict[str, Any]:
        inside = [lag for t, lag in self.samples if start <= t <= end]
        return {"max": max(inside) if inside else None, "last": inside[-1] if inside else None}


class InsightsBench:
    """Stage 3 as a child process, measured on the backlog and sampled under load."""

    def __init__(self, settings: Any, work: Path, command: str | None = None) -> None:
        self.settings = settings
        self.work = work
        self.command = command or INSIGHTS_COMMAND
        t = settings.topics
        self.inputs = [t.review_insights, t.user_signals]
        self.proc: Any = None
        self.lag = stage3_lag(settings)
        self.sampler = LagSampler(self.lag)

    @property
    def log_path(self) -> Path:
        return self.work / "insights.log"

    def consumed(self) -> dict[str, float]:
        """What stage 3 has read so far, per topic (its ``/metrics``; empty while it is not serving)."""
        text = metrics_text(self.settings.http.insights_port, timeout_s=2)
        return {topic: float(n) for topic, n in _CONSUMED.findall(text or "")}

    def measure_capacity(self, enrich_events_per_s: float, events: int, timeout_s: float) -> dict[str, Any]:
        """Start stage 3 on the backlog enrich wrote and time it from its first record read until the fold
        has read every ``insight-facts`` record the forward step wrote (its read counters, sampled every
        0.1 s: commits come only every few seconds, too coarse for a backlog of seconds)."""
        from shoppulse.consumers.topics import ensure_topics

        ensure_topics(self.settings)
        t = self.settings.topics
        records = sum(topic_counts(self.settings, self.inputs).values())
        self.proc = start_stage(self.settings, self.log_path, self.command)
        first: float | None = None
        facts = 0  # insight-facts records written, counted again only once the fold has read as many
        deadline = time.monotonic() + timeout_s
        while True:
            read = self.consumed()
            inputs_read = sum(read.get(name, 0.0) for name in self.inputs)
            if first is None and inputs_read > 0:
                first = time.monotonic()
            if inputs_read >= records and read.get(t.insight_facts, 0.0) >= facts:
                facts = sum(topic_counts(self.settings, [t.insight_facts]).values())
                if read.get(t.insight_facts, 0.0) >= facts:
                    break
            if self.proc.poll() is not None:
                raise RuntimeError(f"the insights stage exited with {self.proc.returncode}; log: {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"stage 3 capacity run timed out after {timeout_s:.0f}s at {inputs_read}/{records}")
            time.sleep(0.1)
        took = time.monotonic() - first if first is not None else 0.0
        records_per_event = records / max(1, events)
        per_s = records / took if took > 0 else None
        needed = enrich_events_per_s * records_per_event
        self.sampler.start()
        return {
            "input_records": records,
            "records_per_event": round(records_per_event, 3),
            "insight_facts_records": facts,
            "capacity_records_per_s": rounded(per_s),
            "capacity_events_per_s": rounded(per_s / records_per_event) if per_s else None,
            "enrich_output_records_per_s": rounded(needed),
            "ratio_to_enrich": rounded(per_s / needed, 3) if per_s and needed else None,
            "window_s": round(took, 2),
            "definition": "enrich's outputs (review-insights + user-signals records) per second, from stage 3's "
            "first record read until its fold has read every insight-facts record (its read counters)",
        }

    def drain(self, timeout_s: float) -> float | None:
        """Seconds until stage 3's lag is zero after the load stopped (None: not within ``timeout_s``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.lag.total() == 0:
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        return None

    def close(self) -> None:
        self.sampler.stop_event.set()
        stop_process(self.proc)
        self.lag.close()
