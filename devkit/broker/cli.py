"""``shoppulse broker``: run an embedded broker (one node, or a local Kafka cluster) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from shoppulse.devkit.broker.base import BrokerError
from shoppulse.devkit.broker.select import make_broker


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broker", help="start a broker on 127.0.0.1 (Kafka or Tansu; --brokers N: a Kafka cluster)"
    )
    parser.add_argument("--backend", choices=["kafka", "tansu"], help="default: kafka when Java 17+ and Maven exist")
    parser.add_argument("--port", type=int, help="listener port (default: a free one)")
    parser.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="KRaft nodes (Kafka only; 3: replication factor 3, min.insync.replicas 2, topics likewise)",
    )
    parser.add_argument("--data-dir", type=Path, help="keep broker storage here (Kafka only; default: a temp dir)")
    parser.add_argument("--ensure-topics", action="store_true", help="create shoppulse's topics once it is up")
    parser.add_argument("--partitions", type=int, help="with --ensure-topics")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        broker = make_broker(args.backend, args.port, args.data_dir, args.brokers)
    except BrokerError as exc:
        print(f"shoppulse broker: {exc}", file=sys.stderr)
        return 2
    what = f"a {args.brokers}-node {broker.name} cluster" if args.brokers > 1 else f"{broker.name} broker"
    print(f"starting {what} on 127.0.0.1 ...", flush=True)
    broker.start()
    try:
        if args.ensure_topics:
            from shoppulse.consumers.settings import load_settings
            from shoppulse.consumers.topics import ensure_topics

            settings = load_settings(
                kafka={"bootstrap_servers": broker.bootstrap, "replication_factor": args.brokers}
            )
            for name, state in ensure_topics(settings, args.partitions).items():
                print(f"  topic {name}: {state}", flush=True)
        print(f"bootstrap: {broker.bootstrap}", flush=True)
        while not stop.wait(0.5):
            if not broker.running():
                print(f"broker exited; log: {broker.log_path}", flush=True)
                return 1
    finally:
        broker.stop()
        print("broker stopped", flush=True)
    return 0
