"""``shoppulse simulate``: produce the simulated stream into Kafka, optionally at a fixed rate."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer

from shoppulse.consumers.reachable import BrokerUnreachable, require_broker
from shoppulse.consumers.settings import Settings
from shoppulse.devkit.simulator.generator import KINDS, Simulator
from shoppulse.devkit.simulator.incident import Incident


def topic_for(settings: Settings, kind: str) -> str:
    return {
        "review": settings.topics.reviews,
        "click": settings.topics.clicks,
        "order": settings.topics.orders,
    }[kind]


def produce_stream(
    settings: Settings,
    simulator: Simulator,
    n: int,
    rate: float | None = None,
    kinds: tuple[str, ...] = KINDS,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> Counter[str]:
    """Produce ``n`` events; every record is acknowledged before this returns. Returns counts per topic.

    ``stop`` ends the stream early (what was produced is still flushed): the demo sets it before it
    stops the broker, so the producer is not left retrying against a broker that is gone.
    """
    producer = Producer(
        settings.librdkafka(
            **{
                "enable.idempotence": True,
                # One request in flight per broker: a fresh partition can refuse a first batch and take the
                # next; the retried first one is then acknowledged as a duplicate, never written (docs/reliability.md).
                "max.in.flight.requests.per.connection": 1,
                "linger.ms": 5,
                "compression.type": "lz4",
                "partitioner": "murmur2_random",  # like Java producers, which most shops run
            }
        )
    )
    counts: Counter[str] = Counter()
    failures: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    stop = stop or threading.Event()  # never set: the whole stream
    started = time.monotonic()
    for i, event in enumerate(simulator.events(n, kinds), start=1):
        if stop.is_set():
            break
        topic = topic_for(settings, event.kind)
        while True:
            try:
                producer.produce(topic, event.value, event.key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        counts[topic] += 1
        producer.poll(0)
        if rate:
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                stop.wait(ahead)
        if progress and i % 5_000 == 0:
            print(f"  produced {i}/{n}", file=sys.stderr, flush=True)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"{remaining} records not delivered; first errors: {failures[:3]}")
    return counts


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser("simulate", help="produce a deterministic, realistic e-commerce event stream")
    sim.add_argument("--bootstrap", help="HOST:PORT (default: settings kafka.bootstrap_servers)")
    sim.add_argument("--events", type=int, default=10_000, help="how many events (default 10000)")
    sim.add_argument("--users", type=int, default=1_000)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    sim.add_argument("--bad-fraction", type=float, default=0.0, help="share of malformed events, e.g. 0.01")
    sim.add_argument(
        "--pii-fraction",
        type=float,
        default=0.0,
        help="share of review texts and searches carrying a phone, e-mail, ID or card number (listed by --truth)",
    )
    sim.add_argument("--kinds", default="review,click,order", help="comma-separated subset of review,click,order")
    sim.add_argument("--start-ts", type=int, help="event time of the first event in epoch ms (default: wall clock)")
    sim.add_argument("--truth", type=Path, help="write the ground truth (JSON) to this file")
    sim.add_argument(
        "--incident",
        help="inject an incident: ASPECT[@START_S[+DURATION_S]] of event time, e.g. 物流@600 "
        "(one product's reviews turn into complaints about 物流, 包装 or 质量; stage 3 alerts on it)",
    )
    sim.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from shoppulse.consumers.cli import settings_from_args

    settings = settings_from_args(args)
    try:
        incident = Incident.parse(args.incident) if args.incident else None
    except ValueError as exc:
        print(f"shoppulse simulate: {exc}", file=sys.stderr)
        return 2
    try:
        require_broker(settings)
    except BrokerUnreachable as exc:
        print(f"shoppulse simulate: {exc}", file=sys.stderr)
        return 2
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(kinds) - set(KINDS)
    if unknown:
        print(f"unknown kinds: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    simulator = Simulator(
        seed=args.seed,
        users=args.users,
        start_ms=args.start_ts,
        bad_fraction=args.bad_fraction,
        pii_fraction=args.pii_fraction,
        incident=incident,
    )
    started = time.monotonic()
    counts = produce_stream(settings, simulator, args.events, args.rate, kinds, progress=True)
    took = time.monotonic() - started
    for topic, count in sorted(counts.items()):
        print(f"{topic}: {count}")
    print(f"total: {sum(counts.values())} events in {took:.1f}s ({len(simulator.truth.bad)} malformed)")
    if incident is not None:
        print(
            f"incident: product {simulator.incident_product.product_id}, {incident.aspect} from {incident.start_s:g}s"
        )
    if args.truth:
        args.truth.write_text(simulator.truth.to_json(), encoding="utf-8")
        print(f"ground truth: {args.truth}")
    return 0
