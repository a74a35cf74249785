"""What the two faust stages (profiles, insights) share: the worker command line, dead letters,
the broker probe, and the HTTP probes and forwarding helpers.

Why one module: the two stages run the same engine the same way; a fix to how a worker starts,
how a refused record is dead-lettered (masked, bounded: ``consumers.deadletter``) or how
``/healthz`` answers belongs to both at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from shoppulse.consumers import metrics
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.deadletter import dead_letter_message
from shoppulse.consumers.settings import Settings, with_updates

log = logging.getLogger(__name__)


# --- the worker command line ------------------------------------------------------------------
def add_worker_arguments(parser: argparse.ArgumentParser, stage: str, port_setting: str) -> None:
    """The flags every faust stage takes (``stage``: its settings group, e.g. ``profiles``)."""
    parser.add_argument("--bootstrap", help="HOST:PORT[,...] (default: settings kafka.bootstrap_servers)")
    parser.add_argument("--app-id", help=f"faust app id = consumer group (default: shoppulse-{stage})")
    parser.add_argument("--store", choices=("memory", "rocksdb"), help="table store (default: memory)")
    parser.add_argument("--data-dir", type=Path, help="local table store; one per worker")
    parser.add_argument("--http-host", help="address to bind the HTTP server (default: settings http.host)")
    parser.add_argument("--http-port", type=int, help=f"HTTP port (default: settings http.{port_setting})")
    parser.add_argument("--advertised-host", help="host other workers use to reach this one")


def worker_settings(args: argparse.Namespace, stage: str, port_setting: str, **stage_updates: Any) -> Settings:
    """Settings from file and env, with the worker flags (and ``stage_updates``) applied to group ``stage``."""
    from shoppulse.consumers.cli import settings_from_args

    settings = settings_from_args(args)
    group = getattr(settings, stage)
    updated = with_updates(
        group,
        app_id=args.app_id,
        store=args.store,
        data_dir=args.data_dir,
        advertised_host=args.advertised_host,
        **stage_updates,
    )
    setattr(settings, stage, updated)
    settings.http = with_updates(settings.http, host=args.http_host, **{port_setting: args.http_port})
    return settings


def topic_partitions(settings: Settings, topic: str, timeout_s: float = 30.0) -> int:
    """Partition count of ``topic`` (the table must have exactly as many).

    A worker cannot start without it, so an unreachable broker ends the start in one line (exit 1;
    Kubernetes restarts the pod) instead of a traceback after librdkafka's connection log.
    """
    from shoppulse.consumers.reachable import BrokerUnreachable, require_broker

    try:
        metadata = require_broker(settings, timeout_s)
    except BrokerUnreachable as exc:
        raise SystemExit(str(exc)) from None
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        reason = info.error if info is not None else "missing"
        raise SystemExit(f"topic {topic!r} is not usable ({reason}): run `shoppulse topics ensure` first")
    return len(info.partitions)


def run_worker(app: Any, settings: Settings, args: argparse.Namespace) -> int:
    """Run one faust worker programmatically (our flags, not faust's click CLI) until it stops."""
    import faust

    level = (getattr(args, "log_level", None) or settings.log_level).lower()
    worker = faust.Worker(app, loglevel=level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def worker_main(
    prog: str,
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """``python -m shoppulse.consumers.<stage>.cli``: the stage on its own (tests ``kill -9`` the worker itself)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--log-level", default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run(args)


# --- agents, timers, recovery -----------------------------------------------------------------
def watched_agent(
    handle: Callable[[Any], Awaitable[Any]], stopped: Callable[[str], None], what: str
) -> Callable[[Any], Awaitable[None]]:
    """A faust agent applying ``handle`` to each event; if it dies, ``stopped(reason)`` is called first.

    faust would log an agent's exception and go on without it; the stages record the reason so
    ``/healthz`` fails and the pod is restarted.
    """

    async def each(stream: Any) -> None:
        async for event in stream.events():
            await handle(event)

    return _watched(each, stopped, what)


def watched_batch_agent(
    handle: Callable[[list[Any]], Awaitable[Any]],
    stopped: Callable[[str], None],
    what: str,
    max_events: int,
    within_s: float,
) -> Callable[[Any], Awaitable[None]]:
    """``watched_agent`` for a handler of batches: up to ``max_events`` events, or what came in ``within_s``.

    faust acks a batch's events only once ``handle`` returned, so no commit passes an event whose
    effects the handler has not yet written (or sent).
    """

    async def batches(stream: Any) -> None:
        async for events in stream.take_events(max_events, within=within_s):
            await handle(list(events))

    return _watched(batches, stopped, what)


@contextlib.contextmanager
def as_current_event(event: Any) -> Iterator[None]:
    """Write a table as if ``event`` were the record being processed.

    faust takes a table write's changelog partition (and, with rocksdb, its store partition) from
    the event the stream is processing, and a batch handler has none (faust-streaming issue #497:
    "Cannot modify table key from outside of stream iteration"). The event given must come from
    the partition the row lives in: the record that brought the change.
    """
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _watched(
    consume: Callable[[Any], Awaitable[None]], stopped: Callable[[str], None], what: str
) -> Callable[[Any], Awaitable[None]]:
    async def run(stream: Any) -> None:
        try:
            await consume(stream)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            stopped(f"{type(exc).__name__}: {exc}"[:500])
            log.critical("%s stopped (%s): failing /healthz so the pod is restarted", what, exc)
            raise

    return run


def publish_tick(interval_s: float) -> float:
    """How often the coalesced publishes are looked at: a publish is late by at most one tick."""
    return min(max(interval_s / 2, 0.1), 1.0)


async def finish_recovery(republish: Callable[[], Awaitable[None]], recovered: asyncio.Event, what: str) -> None:
    """After a rebalance: queue the republishing, then mark the worker recovered.

    This runs inside faust's recovery, before it resumes the streams: an exception here would
    leave the worker "ready" but never consuming again, so none may escape.
    """
    try:
        await republish()
    except Exception:
        log.exception("republishing after recovery failed; %s go out on their next change", what)
    recovered.set()


# --- records out ------------------------------------------------------------------------------
async def send_dead_letter(
    topic: Any,
    stage: str,
    raw: bytes | None,
    key: bytes | None,
    source: RecordCoordinates,
    reason: str,
    message: str,
) -> None:
    """Count, log and send one refused record in the one envelope both stages write."""
    letter_key, value, headers = dead_letter_message(stage, raw, key, source, reason, message)
    destination = topic.get_topic_name()
    await topic.send(
        key=letter_key,
        value=value,
        headers=headers,
        callback=lambda _: metrics.EVENTS_PRODUCED.labels(stage, destination).inc(),
    )


async def broker_reachable(app: Any, timeout_s: float = 5.0) -> bool:
    """One metadata request through the faust app's own producer: can this worker reach the brokers now?"""
    producer = getattr(app.producer, "_producer", None)  # the AIOKafkaProducer under faust
    try:
        if producer is None:
            raise RuntimeError("producer not started")
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=timeout_s)
        return True
    except Exception as exc:  # any failure means "not reachable now"; the gauge says so
        log.debug("broker metadata request failed: %s", exc)
        return False
