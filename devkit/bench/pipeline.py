"""``shoppulse bench pipeline``: what the enrich stage sustains end to end, and its latency under load.

1. Starts the embedded broker (or uses ``--bootstrap``), creates fresh topics, and preloads
   ``--events`` simulated events (reviews only by default; ``--kinds review,click,order``
   for the mixed stream).
2. Model only: the same bundle's ``Predictor`` on the same review texts, in this process,
   before and after the stage runs (so both sides of the ratio see the same machine).
3. Capacity: starts ``shoppulse run enrich`` as a child process (exactly as deployed) and
   polls the group's committed offsets. The stage commits an input only after all its
   outputs are acknowledged, so committed offsets count events done end to end. The rate
   is taken from the first commit to the last (model loading and the group join excluded).
4. Latency: with the stage caught up, offers a steady load of 50% and 80% of the measured
   capacity (or of ``--rate``) for ``--duration`` seconds each; a reader on ``user-signals``
   records arrival time − the event's ``ts`` (stamped when the event was produced) for
   every event of that phase; the first second of each phase is dropped as ramp-up.

Optionally ``--py-spy FILE`` records a profile of the stage during the capacity phase.
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from shoppulse.devkit.bench.stats import json_line, markdown_table, percentile, rounded, spread

DEFAULT_LOADS = (0.5, 0.8)
PARTS_MAX_REVIEWS = 2_000  # the stage parts are timed on at most this many of the stream's reviews
RAMP_UP_MS = 1_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from shoppulse.consumers.settings import DEFAULT_BUNDLE

    parser.add_argument(
        "--events", type=int, default=20_000, help="events preloaded for the capacity run (default 20000)"
    )
    parser.add_argument(
        "--rate", type=float, help="events/s that the load levels are fractions of (default: the measured capacity)"
    )
    parser.add_argument(
        "--kinds", default="review", help="comma-separated subset of review,click,order (default review)"
    )
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="model bundle (default: the packaged one)")
    parser.add_argument(
        "--backend",
        choices=["kafka", "tansu"],
        help="embedded broker (default: kafka if Java; on tansu the output counts are approximate)",
    )
    parser.add_argument("--bootstrap", help="use this running cluster instead of an embedded broker")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (default 3)")
    parser.add_argument("--loads", default="0.5,0.8", help="offered loads as fractions of capacity (default 0.5,0.8)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load level (default 20)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds of unrecorded load at the first level before measuring (default 10; 0: none)",
    )
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-batch", type=int, help="stage max_batch (default: settings)")
    parser.add_argument("--max-wait-ms", type=int, help="stage max_wait_ms (default: settings)")
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads, stage and model-only (0: CPUs)")
    parser.add_argument(
        "--stage-command",
        help="run this instead of `python -m shoppulse.consumers.cli run enrich` (same environment; A/B trials)",
    )
    parser.add_argument(
        "--insights-command",
        help="run this instead of `python -m shoppulse.consumers.cli run insights` (same environment; for A/B trials)",
    )
    parser.add_argument(
        "--no-insights",
        dest="insights",
        action="store_false",
        help="leave stage 3 out (default: measure it on enrich's outputs, and keep it running under the load levels)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        help="py-spy profile of the stage's capacity phase: .svg flame graph, .json speedscope, .txt collapsed stacks",
    )


def parse_loads(text: str) -> list[float]:
    loads = [float(x) for x in text.split(",") if x.strip()]
    if not loads or any(not 0 < x <= 2 for x in loads):
        raise ValueError(f"loads must be fractions in (0, 2], got {text!r}")
    return loads


def parse_kinds(text: str) -> tuple[str, ...]:
    from shoppulse.devkit.simulator.generator import KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = set(kinds) - set(KINDS)
    if not kinds or unknown:
        raise ValueError(f"kinds must be a subset of {','.join(KINDS)}, got {text!r}")
    return kinds


def capacity_from_samples(samples: list[tuple[float, int]], total: int) -> float | None:
    """Events/s from (time, committed) samples: first sample with progress → first sample at ``total``.

    Excludes start-up (model load, group join) but counts everything after the first commit.
    """
    start = next(((t, c) for t, c in samples if c > 0), None)
    end = next(((t, c) for t, c in samples if c >= total), None)
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) / (end[0] - start[0])


def latency_summary(latencies_ms: list[float]) -> dict[str, float | None]:
    if not latencies_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": rounded(percentile(latencies_ms, 50)),
        "p95_ms": rounded(percentile(latencies_ms, 95)),
        "p99_ms": rounded(percentile(latencies_ms, 99)),
        "max_ms": rounded(max(latencies_ms)),
    }


def phase_marker(seed: int) -> str:
    """The part of every event id the simulator with ``seed`` writes (``{kind}-{seed}-{n}``)."""
    return f"-{seed}-"


# --- pieces that talk to Kafka --------------------------------------------------------------------
def embedded_or_given_broker(args: argparse.Namespace, tag: str) -> tuple[Any, str]:
    """``--bootstrap`` when given (no broker of ours), else a started embedded ``--backend`` broker."""
    if args.bootstrap:
        return None, args.bootstrap
    from shoppulse.devkit.broker import make_broker

    broker = make_broker(args.backend)
    print(f"[{tag}] starting the embedded {broker.name} broker ...", file=sys.stderr, flush=True)
    return broker, broker.start()


def bench_settings(bootstrap: str, args: argparse.Namespace, run_id: str) -> Any:
    from shoppulse.consumers.settings import load_settings
    from shoppulse.devkit.broker import free_port

    topics = {
        name: f"bench-{run_id}-{name}"
        for name in ("reviews", "clicks", "orders", "review_insights", "user_signals", "user_profiles", "dead_letter")
    }
    enrich: dict[str, Any] = {
        "bundle_dir": str(args.bundle),
        "group_id": f"bench-enrich-{run_id}",
        "intra_op_threads": args.threads,
    }
    if args.max_batch:
        enrich["max_batch"] = args.max_batch
    if args.max_wait_ms is not None:
        enrich["max_wait_ms"] = args.max_wait_ms
    return load_settings(
        kafka={"bootstrap_servers": bootstrap, "partitions": args.partitions, "session_timeout_ms": 6000},
        topics=topics,
        enrich=enrich,
        http={"enrich_port": free_port(), "host": "127.0.0.1"},
    )


class CommittedCounter:
    """Sum of a group's committed offsets (an offset fetch; it does not join the group): by default
    the enrich group's over the input topics."""

    def __init__(self, settings: Any, group: str | None = None, topics: list[str] | None = None) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(settings.librdkafka(**{"group.id": group or settings.enrich.group_id}))
        names = topics or settings.topics.inputs()
        self.parts = [TopicPartition(t, p) for t in names for p in range(settings.kafka.partitions)]

    def total(self) -> int | None:
        """The committed total, or None while the group coordinator is still loading (a transient error)."""
        from confluent_kafka import KafkaException

        try:
            return sum(max(0, tp.offset) for tp in self.consumer.committed(self.parts, timeout=10))
        except KafkaException:
            return None

    def close(self) -> None:
        self.consumer.close()


class SignalReader(threading.Thread):
    """Reads ``user-signals`` from its current end; records arrival − ts per event id of a phase."""

    def __init__(self, settings: Any, marker: str) -> None:
        super().__init__(daemon=True, name="signal-reader")
        self.settings = settings
        self.marker = marker
        self.arrivals: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            self.settings.librdkafka(
                **{
                    "group.id": f"bench-reader-{os.getpid()}-{time.monotonic_ns()}",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 5,  # the default 500 ms would add to every measured latency
                    "fetch.min.bytes": 1,
                }
            )
        )
        topic = self.settings.topics.user_signals
        parts = []
        for p in range(self.settings.kafka.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            parts.append(TopicPartition(topic, p, high))
        consumer.assign(parts)
        self.ready.set()
        try:
            while not self.stop_event.is_set():
                msg = consumer.poll(0.05)  # poll returns at the first record; consume(n) waits for n or timeout
                if msg is None or msg.error() is not None:
                    continue
                arrived_ms = time.time() * 1000.0
                record = json.loads(msg.value())
                event_id = record.get("event_id") or ""
                if self.marker in event_id and event_id not in self.arrivals:
                    self.arrivals[event_id] = arrived_ms - float(record["ts"])
        finally:
            consumer.close()


def topic_counts(settings: Any, names: list[str]) -> dict[str, int]:
    """Records per topic (sum of high watermarks): a sanity check that outputs, not dead letters, were made.

    On Tansu the high watermark comes from its ListOffsets lookup, which answers the start of the last
    batch + 1, so these counts are low there (the latencies are not affected: the reader only uses
    that lookup as a start position and filters the run's own events by their marker).
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(settings.librdkafka(**{"group.id": f"bench-count-{os.getpid()}"}))
    try:
        counts = {}
        for name in names:
            counts[name] = sum(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                for p in range(settings.kafka.partitions)
            )
        return counts
    finally:
        consumer.close()


def stage_command(stage: str) -> str:
    """``shoppulse run STAGE`` as this interpreter runs it (the installed package, no PATH lookup)."""
    return f"{shlex.quote(sys.executable)} -m shoppulse.consumers.cli run {stage}"


def start_stage(settings: Any, log_path: Path, command: str | None = None) -> subprocess.Popen[bytes]:

    from shoppulse.consumers.settings import to_env

    env = {**os.environ, **to_env(settings)}
    argv = shlex.split(command or stage_command("enrich"))
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 40) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def proc_status_mib(pid: int, field: str) -> float | None:
    """A memory figure of a live process from /proc (``VmHWM``: peak resident set, ``VmRSS``: now), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def peak_rss_mb_of(pid: int) -> float | None:
    return proc_status_mib(pid, "VmHWM")


def review_texts(seed: int, users: int, n: int, kinds: tuple[str, ...]) -> list[str]:
    """The review texts of the preloaded stream (the simulator is deterministic per seed)."""
    from shoppulse.devkit.simulator import Simulator

    sim = Simulator(seed=seed, users=users, start_ms=0)
    return [json.loads(e.value)["text"] for e in sim.events(n, kinds) if e.kind == "review"]


def stage_parts(settings: Any, texts: list[str], rounds: int = 3) -> dict[str, list[float]]:
    """Reviews/s of the stage's parts alone, on ``texts``: where the stage's time can go.

    ``model_reviews``: the serving ``Predictor`` on one text per review (clean, tokenize,
    sorted batches) — the issue's "model only". ``model_with_clauses``: the same plus the
    aspect clauses the enricher also classifies. ``keywords``: jieba keywords per review.
    """
    from shoppulse.models.serving.inference import Predictor
    from shoppulse.models.serving.keywords import keywords, load_aspects

    rates: dict[str, list[float]] = {"model_reviews": [], "model_with_clauses": [], "keywords": []}
    texts = texts[:PARTS_MAX_REVIEWS]
    if not texts:
        return rates
    predictor = Predictor.from_dir(settings.enrich.bundle_dir, intra_op_threads=settings.enrich.intra_op_threads)
    batch = min(settings.enrich.max_batch, 64)  # what the stage's Enricher uses
    aspects = load_aspects()
    with_clauses = list(texts) + [m.clause for t in texts for m in aspects.find(t)]
    top_k = settings.enrich.keywords_top_k
    predictor.predict(texts[:64], batch_size=batch)
    keywords(texts[0], top_k)
    for _ in range(rounds):
        rates["model_reviews"].append(_rate(len(texts), lambda: predictor.predict(texts, batch_size=batch)))
        rates["model_with_clauses"].append(_rate(len(texts), lambda: predictor.predict(with_clauses, batch_size=batch)))
        rates["keywords"].append(_rate(len(texts), lambda: [keywords(t, top_k) for t in texts]))
    return rates


def _rate(count: int, work: Any) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def serial_bound(parts: dict[str, float | None]) -> float | None:
    """Reviews/s if the stage did nothing but the model (with clauses) and the keywords, one after the other."""
    model, words = parts.get("model_with_clauses"), parts.get("keywords")
    if not model or not words:
        return None
    return 1.0 / (1.0 / model + 1.0 / words)


def wait_until(predicate: Any, timeout_s: float, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the enrich stage exited with {proc.returncode} while waiting for {what}")
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def measure_capacity(
    counter: CommittedCounter, total: int, proc: subprocess.Popen[bytes], timeout_s: float
) -> tuple[float | None, list[tuple[float, int]]]:
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        done = counter.total()
        if done is not None:
            samples.append((time.monotonic(), done))
        if done is not None and done >= total:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"the stage (pid {proc.pid}) exited with {proc.returncode} during the capacity run")
        if time.monotonic() > deadline:
            raise RuntimeError(f"capacity run timed out after {timeout_s:.0f}s at {done}/{total} committed")
        time.sleep(0.1)
    return capacity_from_samples(samples, total), samples


_TS_FIELD = re.compile(rb'"ts":-?\d+')


def restamp(value: bytes, ts_ms: int) -> bytes:
    """The event with its ``ts`` set to ``ts_ms`` (the first top-level ``"ts":`` of the compact JSON)."""
    return _TS_FIELD.sub(b'"ts":%d' % ts_ms, value, count=1)


def pregenerate(seed: int, users: int, n: int, kinds: tuple[str, ...]) -> list[tuple[str, bytes, bytes, str]]:
    """(kind, key, value, event_id) of ``n`` events, generated before the timed phase.

    Why: a review-only stream is ~4% of the simulated sessions, so generating it live costs
    the load generator a good part of a core, taken from the stage it measures.
    """
    from shoppulse.devkit.simulator import Simulator

    sim = Simulator(seed=seed, users=users, start_ms=1)
    return [(e.kind, e.key, e.value, e.event_id or "") for e in sim.events(n, kinds)]


def offer(settings: Any, events: list[tuple[str, bytes, bytes, str]], rate: float) -> float:
    """Produce ``events`` at ``rate``/s, each stamped with the wall clock as it is sent; returns seconds taken."""
    from confluent_kafka import Producer

    from shoppulse.devkit.simulator.produce import topic_for

    producer = Producer(settings.librdkafka(**{"enable.idempotence": True, "linger.ms": 5, "compression.type": "lz4"}))
    failures: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    started = time.monotonic()
    for i, (kind, key, value, _) in enumerate(events, start=1):
        stamped = restamp(value, int(time.time() * 1000))
        while True:
            try:
                producer.produce(topic_for(settings, kind), stamped, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        ahead = i / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    took = time.monotonic() - started
    if producer.flush(60) or failures:
        raise RuntimeError(f"load phase: records not delivered; first errors: {failures[:3]}")
    return took


def run_load_level(
    settings: Any,
    level: float,
    rate: float,
    duration_s: float,
    seed: int,
    users: int,
    kinds: tuple[str, ...],
    proc: subprocess.Popen[bytes],
) -> dict[str, Any]:
    n = max(1, int(rate * duration_s))
    events = pregenerate(seed, users, n, kinds)
    reader = SignalReader(settings, phase_marker(seed))
    reader.start()
    reader.ready.wait(30)
    started_ms = time.time() * 1000.0
    offered_for = offer(settings, events, rate)
    ordered_ids = [event_id for _, _, _, event_id in events]
    expected = set(ordered_ids)
    with contextlib.suppress(RuntimeError):
        wait_until(lambda: expected <= reader.arrivals.keys(), 30, proc, "the last outputs of the load phase")
    reader.stop_event.set()
    reader.join(10)
    # Event ids of the seeded simulator are unique; the first second of sends is ramp-up.
    cutoff = n * RAMP_UP_MS / 1000.0 / max(duration_s, 1e-9)
    kept_ids = [e for i, e in enumerate(ordered_ids) if i >= cutoff and e in reader.arrivals]
    kept = [reader.arrivals[e] for e in kept_ids]
    return {
        "load": level,
        "offered_events_per_s": rounded(rate),
        "achieved_offer_events_per_s": rounded(n / offered_for),
        "events": n,
        "measured": len(kept),
        "missing": len(expected - reader.arrivals.keys()),
        **latency_summary(kept),
        "started_ms": int(started_ms),
    }


def warm_up(
    settings: Any,
    counter: CommittedCounter,
    rate: float,
    seconds: float,
    seed: int,
    users: int,
    kinds: tuple[str, ...],
    proc: subprocess.Popen[bytes],
) -> None:
    """Offer live load, unrecorded, then wait until the stage has committed all of it.

    Why: the capacity phase exercises the broker with large fetches; live load is many small
    produce and fetch requests, which the embedded JVM broker JIT-compiles during its first
    ~10 s (measured: broker CPU 0.9-1.0 core at first, 0.2-0.4 once warm, at the same 450 events/s),
    and the first level measured the broker's warm-up instead of the stage (p99 504 → 319 → 273 ms
    for three identical 50% levels in one run). A production broker is warm and on other machines.
    """
    before = counter.total() or 0
    events = pregenerate(seed, users, max(1, int(rate * seconds)), kinds)
    print(f"[bench] warm-up: {rate:.1f} events/s for {seconds:.0f}s (not recorded) ...", file=sys.stderr, flush=True)
    offer(settings, events, rate)
    target = before + len(events)
    wait_until(lambda: (counter.total() or 0) >= target, 60, proc, "the stage to commit the warm-up load")


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists() and shutil.which(binary) is None:
        print("py-spy is not installed (pip install py-spy); no profile", file=sys.stderr)
        return None
    fmt = {".json": "speedscope", ".txt": "raw"}.get(out.suffix, "flamegraph")
    return subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--output", str(out), "--format", fmt, "--rate", "100", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run(args: argparse.Namespace) -> int:
    from shoppulse.consumers.topics import ensure_topics
    from shoppulse.devkit.simulator import Simulator
    from shoppulse.devkit.simulator.produce import produce_stream

    try:
        loads = parse_loads(args.loads)
        kinds = parse_kinds(args.kinds)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.events < 100:
        print("--events must be at least 100", file=sys.stderr)
        return 2
    run_id = f"{os.getpid()}-{int(time.time())}"
    work = Path(tempfile.mkdtemp(prefix="shoppulse-bench-pipeline-"))
    broker = None
    stage: subprocess.Popen[bytes] | None = None
    counter: CommittedCounter | None = None
    stage3: Any = None
    stage3_result: dict[str, Any] = {}
    load_before = os.getloadavg()
    try:
        broker, bootstrap = embedded_or_given_broker(args, "bench")
        settings = bench_settings(bootstrap, args, run_id)
        if args.insights:
            from shoppulse.devkit.bench.insights import InsightsBench, with_insights

            settings = with_insights(settings, run_id, work)
        ensure_topics(settings)

        print(f"[bench] preloading {args.events} events ({','.join(kinds)}) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        sim = Simulator(seed=args.seed, users=args.users, start_ms=None)
        counts = produce_stream(settings, sim, args.events, None, kinds)
        preload_s = time.monotonic() - started
        texts = review_texts(args.seed, args.users, args.events, kinds)

        print(f"[bench] model only on the stream's {len(texts)} reviews ...", file=sys.stderr, flush=True)
        parts_before = stage_parts(settings, texts)

        print("[bench] capacity: starting the enrich stage ...", file=sys.stderr, flush=True)
        stage_log = work / "enrich.log"
        stage = start_stage(settings, stage_log, args.stage_command)
        counter = CommittedCounter(settings)
        spy = start_py_spy(stage.pid, args.py_spy) if args.py_spy else None
        capacity, samples = measure_capacity(counter, args.events, stage, timeout_s=max(300.0, args.events / 20))
        if spy is not None:
            stop_process(spy, signal.SIGINT, timeout=30)
        if capacity is None:
            raise RuntimeError(
                "capacity could not be measured: every event was committed in one commit interval "
                "(capacity counts committed offsets); raise --events or lower SHOPPULSE_ENRICH__COMMIT_INTERVAL_MS"
            )
        first = next(t for t, c in samples if c > 0)
        print(f"[bench] capacity {capacity:.1f} events/s ({samples[-1][0] - first:.1f}s)", file=sys.stderr, flush=True)

        topics = settings.topics
        outputs = topic_counts(settings, [topics.review_insights, topics.user_signals, topics.dead_letter])
        if args.insights:
            print("[bench] stage 3: starting the insights stage on enrich's outputs ...", file=sys.stderr, flush=True)
            stage3 = InsightsBench(settings, work, args.insights_command)
            stage3_result = stage3.measure_capacity(capacity, args.events, timeout_s=max(300.0, args.events / 10))
            print(
                f"[bench] stage 3 capacity {stage3_result['capacity_records_per_s']} records/s "
                f"({stage3_result['ratio_to_enrich']} of what enrich writes at its capacity)",
                file=sys.stderr,
                flush=True,
            )
        basis = args.rate or capacity
        if args.warmup > 0:
            warm_up(settings, counter, basis * loads[0], args.warmup, args.seed + 99, args.users, kinds, stage)
        levels = []
        for i, level in enumerate(loads):
            rate = basis * level
            print(
                f"[bench] latency at {level:.0%} load: {rate:.1f} events/s for {args.duration:.0f}s ...",
                file=sys.stderr,
                flush=True,
            )
            started_level = time.monotonic()
            levels.append(
                run_load_level(settings, level, rate, args.duration, args.seed + 100 + i, args.users, kinds, stage)
            )
            if stage3 is not None:
                stage3_result.setdefault("lag_by_level", []).append(
                    {"load": level, **stage3.sampler.between(started_level, time.monotonic())}
                )
        if stage3 is not None:
            stage3_result["drained_after_load_s"] = stage3.drain(120)
            stage3_result["peak_rss_mb"] = rounded(peak_rss_mb_of(stage3.proc.pid))
        stage_rss = peak_rss_mb_of(stage.pid)
        stop_process(stage)
        stage = None
        parts_after = stage_parts(settings, texts)
    except (RuntimeError, OSError) as exc:
        print(f"bench pipeline failed: {exc}; stage log: {work / 'enrich.log'}", file=sys.stderr)
        return 1
    finally:
        stop_process(stage)
        if stage3 is not None:
            stage3.close()
        if counter is not None:
            counter.close()
        if broker is not None:
            broker.stop()

    parts = {k: parts_before[k] + parts_after[k] for k in parts_before}
    part_medians = {k: (spread(v)["median"] if v else None) for k, v in parts.items()}
    model_only = part_medians["model_reviews"]
    bound = serial_bound(part_medians)
    reviews = counts.get(settings.topics.reviews, 0)
    payload = {
        "pipeline_events_per_s": rounded(capacity),
        "model_only_reviews_per_s": rounded(model_only),
        "ratio": rounded(capacity / model_only, 3) if model_only else None,
        # The model work the stage must do: each review's aspect clauses are classified too.
        "ratio_vs_model_with_clauses": (
            rounded(capacity / part_medians["model_with_clauses"], 3) if part_medians["model_with_clauses"] else None
        ),
        "levels": levels,
        "insights": stage3_result or None,
        "setup": {
            "kinds": list(kinds),
            "events": args.events,
            "events_by_topic": {k.removeprefix(f"bench-{run_id}-"): v for k, v in counts.items()},
            "review_share": round(reviews / max(1, args.events), 3),
            "preload_s": round(preload_s, 1),
            "outputs_after_capacity": {k.removeprefix(f"bench-{run_id}-"): v for k, v in outputs.items()},
            "capacity_window_s": round(samples[-1][0] - next(t for t, c in samples if c > 0), 2),
            "capacity_definition": "committed input offsets per second (committed only after every output is acked)",
            "model_only": {
                "reviews": min(len(texts), PARTS_MAX_REVIEWS),
                "rounds_before_after": [rounded(r) for r in parts["model_reviews"]],
                "batch_size": min(settings.enrich.max_batch, 64),
            },
            "stage_parts_reviews_per_s": {k: rounded(v) for k, v in part_medians.items()},
            "stage_parts_serial_bound_reviews_per_s": rounded(bound),
            "stage_parts_note": "medians of 3 rounds before and 3 after the stage ran, in the bench process; "
            "model_with_clauses = reviews/s when each review's aspect clauses are classified too",
            "load_basis_events_per_s": rounded(basis),
            "load_basis": "--rate" if args.rate else "measured capacity",
            "warmup_s": args.warmup,
            "latency_definition": "arrival on user-signals at a reader (fetch.wait.max.ms=5) minus the event ts "
            "stamped when produced (events generated before the level, stamped at send); first second dropped; "
            f"{args.warmup:g} s of unrecorded load at the first level's rate before any level is measured",
            "stage": {
                "max_batch": settings.enrich.max_batch,
                "max_wait_ms": settings.enrich.max_wait_ms,
                "intra_op_threads": settings.enrich.intra_op_threads or "auto",
                "sessions": settings.enrich.sessions or "auto (one per CPU)",
                "exactly_once": settings.enrich.exactly_once,
                "peak_rss_mb": rounded(stage_rss),
            },
            "partitions": args.partitions,
            "broker": broker.name if broker is not None else f"external {args.bootstrap}",
            "bundle": str(args.bundle),
            "py_spy": str(args.py_spy) if args.py_spy else None,
            "stage_command": args.stage_command or "python -m shoppulse.consumers.cli run enrich",
            "insights_command": (args.insights_command or "python -m shoppulse.consumers.cli run insights")
            if args.insights
            else None,
            "load_average_before": round(load_before[0], 2),
            "usable_cpus": _cpus(),
        },
    }
    print_report(payload)
    print(json_line(payload))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _cpus() -> int:
    from shoppulse.models.serving.cpu import available_cpus

    return available_cpus()


def print_report(payload: dict[str, Any]) -> None:
    print(
        markdown_table(
            ["measure", "value"],
            [
                ["pipeline events/s (end to end, committed)", payload["pipeline_events_per_s"]],
                ["model-only reviews/s (same bundle, same reviews)", payload["model_only_reviews_per_s"]],
                ["ratio pipeline / model-only", payload["ratio"]],
                ["ratio pipeline / model incl. aspect clauses", payload["ratio_vs_model_with_clauses"]],
                [
                    "stage part alone: model incl. aspect clauses, reviews/s",
                    payload["setup"]["stage_parts_reviews_per_s"]["model_with_clauses"],
                ],
                [
                    "stage part alone: jieba keywords, reviews/s",
                    payload["setup"]["stage_parts_reviews_per_s"]["keywords"],
                ],
                [
                    "both parts one after the other (bound), reviews/s",
                    payload["setup"]["stage_parts_serial_bound_reviews_per_s"],
                ],
            ],
        )
    )
    print()
    print(
        markdown_table(
            ["offered load", "events/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "measured", "missing"],
            [
                [
                    f"{lv['load']:.0%}",
                    lv["offered_events_per_s"],
                    lv["p50_ms"],
                    lv["p95_ms"],
                    lv["p99_ms"],
                    lv["max_ms"],
                    lv["measured"],
                    lv["missing"],
                ]
                for lv in payload["levels"]
            ],
        )
    )
    stage3 = payload.get("insights")
    if stage3:
        print()
        rows = [
            ["stage 3 capacity, enrich output records/s", stage3["capacity_records_per_s"]],
            ["... as input events/s", stage3["capacity_events_per_s"]],
            ["what enrich writes at its capacity, records/s", stage3["enrich_output_records_per_s"]],
            ["ratio stage 3 / enrich", stage3["ratio_to_enrich"]],
        ]
        rows += [
            [f"stage 3 lag at {lv['load']:.0%} load: max, last (records)", f"{lv['max']}, {lv['last']}"]
            for lv in stage3.get("lag_by_level", [])
        ]
        rows.append(["stage 3 lag zero after the load stopped (s)", stage3.get("drained_after_load_s")])
        print(markdown_table(["stage 3", "value"], rows))
