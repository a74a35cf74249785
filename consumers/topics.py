"""Create the topics shoppulse uses, with explicit partitions, replication and configs, idempotently.

Why explicit: auto-created topics get broker defaults (one partition, no compaction),
which silently breaks co-partitioning and the compacted ``user-profiles`` contract.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from shoppulse.consumers.headers import DEAD_LETTER_RETENTION_MS
from shoppulse.consumers.reachable import BrokerUnreachable, require_broker
from shoppulse.consumers.settings import Settings, with_updates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def min_insync_replicas(replication_factor: int) -> int:
    """Copies a write needs: 2 of 3, so one broker may fail without losing or blocking a write (1 below 3)."""
    return max(1, min(2, replication_factor - 1))


def topic_specs(settings: Settings, partitions: int | None = None) -> list[TopicSpec]:
    """Every topic with its config. Inputs and user-signals share a partition count (co-partitioning)."""
    k, t = settings.kafka, settings.topics
    n = partitions or k.partitions
    rf = k.replication_factor
    durability = {"min.insync.replicas": str(min_insync_replicas(rf))}
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000", **durability}
    retention = {"retention.ms": str(k.input_retention_ms), "cleanup.policy": "delete", **durability}
    dead_letters = {"retention.ms": str(DEAD_LETTER_RETENTION_MS), "cleanup.policy": "delete", **durability}
    return [
        TopicSpec(t.reviews, n, rf, dict(retention)),
        TopicSpec(t.clicks, n, rf, dict(retention)),
        TopicSpec(t.orders, n, rf, dict(retention)),
        TopicSpec(t.review_insights, n, rf, dict(retention)),
        TopicSpec(t.user_signals, n, rf, dict(retention)),
        TopicSpec(t.dead_letter, n, rf, dead_letters),
        TopicSpec(t.user_profiles, n, rf, dict(compacted)),
        TopicSpec(t.insight_facts, n, rf, dict(retention)),
        *(TopicSpec(name, n, rf, dict(compacted)) for name in (t.product_insights, t.category_insights, t.alerts)),
    ]


def ensure_topics(settings: Settings, partitions: int | None = None, timeout_s: float = 30.0) -> dict[str, str]:
    """Create what is missing, grow partitions that are too few; return {topic: created|exists|grown}."""
    admin = AdminClient(settings.librdkafka())
    specs = topic_specs(settings, partitions)
    existing = admin.list_topics(timeout=timeout_s).topics
    result: dict[str, str] = {}
    to_create = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor, config=s.config)
        for s in specs
        if s.name not in existing
    ]
    if to_create:
        for name, future in admin.create_topics(to_create, request_timeout=timeout_s).items():
            try:
                future.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
                result[name] = "exists"
    # Fresh metadata, asked per topic: a topic may just have been created by a concurrent `ensure`, and
    # a cluster-wide listing right after creating topics can still miss their partitions.
    grow = []
    for spec in specs:
        if result.get(spec.name) == "created":
            continue
        info = admin.list_topics(topic=spec.name, timeout=timeout_s).topics.get(spec.name)
        if info is not None and info.error is None and len(info.partitions) < spec.partitions:
            grow.append(NewPartitions(spec.name, spec.partitions))
    if grow:
        for name, future in admin.create_partitions(grow, request_timeout=timeout_s).items():
            future.result()
            result[name] = "grown"
    for s in specs:
        result.setdefault(s.name, "exists")
    changed = [s for s in specs if result[s.name] in ("created", "grown")]
    if changed:
        _wait_for_leaders(admin, changed, timeout_s)
    return result


def _wait_for_leaders(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> None:
    """Return once every partition of ``specs`` has a leader in fresh metadata.

    Why: ``create_topics`` returns when the controller has recorded the topic, before the brokers
    serve it. Producers that write into a partition in that window lost acknowledged records now
    and then (likely a first batch refused, the next accepted, the retried first one then taken as
    a duplicate); waiting here made it rarer (docs/reliability.md, which has the numbers).
    """
    deadline = time.monotonic() + timeout_s
    pending = {s.name: s.partitions for s in specs}
    while pending:
        for name in list(pending):
            info = admin.list_topics(topic=name, timeout=timeout_s).topics.get(name)
            if (
                info is not None
                and info.error is None
                and len(info.partitions) >= pending[name]
                and all(p.leader >= 0 and p.error is None for p in info.partitions.values())
            ):
                del pending[name]
        if pending and time.monotonic() > deadline:
            raise KafkaException(f"no leader for every partition after {timeout_s:.0f} s: {sorted(pending)}")
        if pending:
            time.sleep(0.1)


def register(subparsers: argparse._SubParsersAction) -> None:
    topics = subparsers.add_parser("topics", help="manage the topics shoppulse uses")
    sub = topics.add_subparsers(dest="topics_command", required=True)
    ensure = sub.add_parser("ensure", help="create missing topics with explicit partitions and configs")
    ensure.add_argument("--bootstrap", help="HOST:PORT (default: settings kafka.bootstrap_servers)")
    ensure.add_argument("--partitions", type=int, help="partitions per topic (default: settings)")
    ensure.add_argument("--replication-factor", type=int)
    ensure.set_defaults(func=_run_ensure)


def _run_ensure(args: argparse.Namespace) -> int:
    from shoppulse.consumers.cli import settings_from_args

    settings = settings_from_args(args)
    settings.kafka = with_updates(settings.kafka, replication_factor=args.replication_factor)
    try:
        require_broker(settings)
    except BrokerUnreachable as exc:
        print(f"shoppulse topics: {exc}", file=sys.stderr)
        return 2
    for name, state in ensure_topics(settings, args.partitions).items():
        print(f"{name}: {state}")
    return 0
