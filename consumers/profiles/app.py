"""The faust app of stage 2: ``user-signals`` → profile table (changelog-backed) → ``user-profiles``.

Why faust: the profile state is partitioned by ``user_id`` exactly like its input, and faust's
table gives us the partition-local store (memory or RocksDB), its changelog topic and the
recovery from it on restart or rebalance, with Kafka's consumer group as the distributor.

Semantics, and why they hold:

- The table key is the raw ``user-signals`` key (``user_id`` as UTF-8 bytes), so each table
  write goes to the changelog partition of the signal it came from (co-partitioning), and
  faust's HTTP router finds the owner by hashing the same bytes.
- faust runs at-least-once: the changelog write and the input offset commit are not atomic
  (faust flushes the producer, then commits). After a crash some signals are replayed onto a
  state that already contains them; the per-input-partition offset marks stored *inside the
  row* (``consumers.profiles.profile``) make any replay a no-op, however far back it starts.
- ``user-signals`` is read ``read_committed`` (faust only does so in its own exactly-once
  mode): with enrich in exactly-once mode, records of an aborted transaction are never seen,
  and the transaction markers between committed ones are handed to faust's gap tracking so
  its committed offset moves past them.
- Each change marks the user in a ``Coalescer``; the agent publishes at once after a quiet
  period, a timer publishes the rest once their interval has passed, reading the current row.
- A crash can lose a pending publish. So after a rebalance completes (recovery done) the
  worker republishes every profile of the partitions it newly owns: ``user-profiles`` is
  compacted and a profile carries its ``version``, so a repeat is harmless to readers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from shoppulse.consumers import metrics
from shoppulse.consumers.contracts import (
    R_BAD_JSON,
    R_EMPTY,
    R_FOLD_FAILED,
    R_KEY_MISMATCH,
    R_MISSING_KEY,
    R_PARSE_FAILED,
    dumps,
)
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.faust_stage import (
    broker_reachable,
    finish_recovery,
    publish_tick,
    send_dead_letter,
    watched_agent,
)
from shoppulse.consumers.headers import child_traceparent, output_headers, record_timestamp_ms
from shoppulse.consumers.profiles.connection import faust_connection
from shoppulse.consumers.profiles.gaps import Hole, OrderedInput, PartitionProgress, TailWatch, committed_offset
from shoppulse.consumers.profiles.profile import PROFILE_SCHEMA_VERSION, FoldParams, ProfileState, apply_signal, render
from shoppulse.consumers.profiles.publish import Coalescer
from shoppulse.consumers.profiles.transport import read_committed
from shoppulse.consumers.profiles.watchdog import StallWatch
from shoppulse.consumers.records import Signal, SignalError
from shoppulse.consumers.settings import Settings
from shoppulse.consumers.tracing import NoTracer, traced_handler

log = logging.getLogger(__name__)

STAGE = "profiles"
TABLE_NAME = "profiles"
LAG_INTERVAL_S = 5.0
STALL_TIMEOUT_S = 120.0  # lag with no progress for this long fails /healthz (the pod is restarted)


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client, aiokafka and faust's router pick for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def make_faust_app(settings: Settings, partitions: int, stage: Any = None, port: int | None = None) -> faust.App:
    """A ``faust.App`` configured from the one settings object (broker, TLS/SASL, store, web).

    ``stage`` is the stage's settings group (app id, store, data dir, advertised host; default
    ``settings.profiles``) and ``port`` its HTTP port: stage 3 builds its app here too.
    """
    conn = faust_connection(settings)
    p, http = stage or settings.profiles, settings.http
    store = "rocksdb://" if p.store == "rocksdb" else "memory://"
    session_s = settings.kafka.session_timeout_ms / 1000
    p.data_dir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        p.app_id,
        broker=conn.brokers,
        broker_credentials=conn.credentials,
        store=store,
        datadir=str(p.data_dir),
        autodiscover=False,
        web_enabled=True,
        web_bind=http.host,
        web_host=p.advertised_host or http.host,
        web_port=http.profiles_port if port is None else port,
        web_in_thread=False,
        # Only our pages: faust's /table would serve raw rows (dedup sets included), /router the topology.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        processing_guarantee="at_least_once",
        producer_linger=0.005,  # batch changelog and profile writes: one produce request per record costs most
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(session_s / 4, 0.5),
        broker_max_poll_interval=settings.kafka.max_poll_interval_ms / 1000,
        table_standby_replicas=1,
        key_serializer="raw",
        value_serializer="raw",
    )
    return read_committed(app)


class ProfilesStage:
    """Owns the faust app, its table, the agent, the timers and the publishing."""

    def __init__(
        self,
        settings: Settings,
        partitions: int,
        profiles_partitions: int | None = None,
        app: faust.App | None = None,
        tracer: NoTracer | None = None,
    ) -> None:
        self.settings = settings
        self.tracer = tracer or NoTracer()  # consumers.tracing: a span per record when configured
        self.partitions = partitions
        # Profiles keep their signal's partition number when the counts agree (co-partitioned output).
        self.same_partitioning = profiles_partitions in (None, partitions)
        self.params = FoldParams.from_settings(settings.profiles)
        self.app = app or make_faust_app(settings, partitions)
        topics = settings.topics
        self.signals_topic_name = topics.user_signals
        self.signals_topic = self.app.topic(
            topics.user_signals, key_type=bytes, value_type=bytes, partitions=partitions
        )
        self.profiles_topic = self.app.topic(topics.user_profiles, key_type=bytes, value_type=bytes)
        self.dead_letter_topic = self.app.topic(topics.dead_letter, key_type=bytes, value_type=bytes)
        self.table = self.app.Table(
            TABLE_NAME,
            default=None,
            partitions=partitions,
            key_type=bytes,  # faust picks the raw codec for bytes keys (json for the values)
            help="per-user profile rows (see consumers.profiles.profile.ProfileState)",
        )
        self.coalescer = Coalescer(settings.profiles.publish_interval_s)
        self.stall = StallWatch(STALL_TIMEOUT_S)
        self.signals_input = OrderedInput(settings, topics.user_signals, STAGE)
        self.offsets = self.signals_input.offsets
        self.tail_watch = TailWatch()
        self.gap_reader = self.signals_input.reader
        self.partitioner_mismatches = 0
        self.broker_up: bool | None = None
        self.agent_failure: str | None = None  # set when the fold agent died: /healthz fails
        self._republished: set[int] = set()
        self._recovered = asyncio.Event()
        self._init_metrics()
        self._wire()

    def _init_metrics(self) -> None:
        """Create every series at zero so dashboards and alerts see them before the first signal."""
        for counter in (metrics.PROFILES_UPDATED, metrics.PROFILES_PUBLISHED, metrics.SIGNALS_DUPLICATE):
            counter.labels(STAGE)
        metrics.EVENTS_CONSUMED.labels(STAGE, self.signals_topic_name)
        metrics.EVENTS_PRODUCED.labels(STAGE, self.settings.topics.user_profiles)
        metrics.PRODUCE_ERRORS.labels(STAGE, self.settings.topics.user_profiles)
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(0)
        metrics.BROKER_UP.labels(STAGE).set(0)

    # --- wiring ---------------------------------------------------------------------------------
    def _wire(self) -> None:
        app = self.app

        app.agent(self.signals_topic, name=f"{self.settings.profiles.app_id}.fold")(
            watched_agent(
                traced_handler(self.tracer, "profiles.signal", self.handle, batch=False),
                self._agent_stopped,
                "the profiles agent",
            )
        )
        app.on_before_shutdown.connect(self._stop_tracer)
        app.timer(publish_tick(self.settings.profiles.publish_interval_s), name="publish-due")(self.publish_due)
        app.timer(LAG_INTERVAL_S, name="lag")(self.update_gauges)

        async def on_revoked(sender: Any, revoked: Iterable[Any], **_: Any) -> None:
            gone = {tp.partition for tp in revoked if tp.topic == self.signals_topic_name}
            self._republished -= gone
            self.offsets.forget(gone)
            dropped = self.coalescer.drop_partitions(gone)
            self._recovered.clear()
            log.info("partitions revoked %s (%d pending publishes left to the new owner)", gone, dropped)

        async def on_rebalance_complete(sender: Any, **_: Any) -> None:
            await finish_recovery(self.republish_new_partitions, self._recovered, "profiles")

        # Strong references: mode's signals keep the callables alive only if connected weak=False.
        self._handlers = (on_revoked, on_rebalance_complete)
        app.on_partitions_revoked.connect(on_revoked)
        app.on_rebalance_complete.connect(on_rebalance_complete)

        from shoppulse.consumers.profiles.web import register_pages

        register_pages(self)

    async def _stop_tracer(self, sender: Any = None, **_: Any) -> None:
        self.tracer.shutdown()  # flushes the spans still queued

    def _agent_stopped(self, reason: str) -> None:
        self.agent_failure = reason

    # --- the fold -------------------------------------------------------------------------------
    async def handle(self, event: Any) -> None:
        """Apply one ``user-signals`` record to its user's row and maybe publish.

        First, any records of this partition that faust skipped before this one (a hole in the
        delivered offsets, see ``consumers.profiles.gaps``) are read back and applied.
        """
        message = event.message
        await self.signals_input.catch_up(self.app, message, self._apply_reread)
        await self._apply(event.key, event.value, message.topic, message.partition, message.offset)

    async def _apply_reread(self, record: Any) -> None:
        """Apply a record faust skipped, re-read from the broker (in this event's context, same partition)."""
        if await self._apply(record.key(), record.value(), record.topic(), record.partition(), record.offset()):
            log.warning(
                "%s[%d] offset %d was skipped by the stream; re-read from the broker and applied",
                self.signals_topic_name,
                record.partition(),
                record.offset(),
            )
            metrics.SIGNALS_REREAD.labels(STAGE).inc()

    async def _apply(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int) -> bool:
        """Fold one record into its user's row; False when it was not applied (dead letter, replay)."""
        metrics.EVENTS_CONSUMED.labels(STAGE, topic).inc()
        try:
            if not key:
                raise SignalError(R_MISSING_KEY, "user-signals records must be keyed by user_id")
            signal = Signal.from_json(load_json(value))
            if signal.user_id.encode("utf-8") != key:
                raise SignalError(R_KEY_MISMATCH, "the record key differs from user_id")
        except SignalError as err:
            await self._dead_letter(value, key, topic, partition, offset, err)
            return False
        except Exception as exc:  # a validator bug must not stop the agent (faust would skip the record)
            log.exception("validating %s[%d]@%d failed; dead-lettered", topic, partition, offset)
            err = SignalError(R_PARSE_FAILED, f"the validator failed: {type(exc).__name__}")
            await self._dead_letter(value, key, topic, partition, offset, err)
            return False
        if murmur2_partition(key, self.partitions) != partition:
            self.partitioner_mismatches += 1
            if self.partitioner_mismatches == 1:
                log.warning(
                    "user-signals key %r is on partition %d, murmur2 says %d: produce user-signals with "
                    "the murmur2 partitioner or HTTP lookups are routed to the wrong worker",
                    key,
                    partition,
                    murmur2_partition(key, self.partitions),
                )
        row = self.table.get(key)
        state = ProfileState.from_row(row) if row is not None else ProfileState(user_id=signal.user_id)
        try:
            applied = apply_signal(state, signal, self.params)
        except SignalError as err:  # refused by the fold (e.g. too many input partitions for one user)
            await self._dead_letter(value, key, topic, partition, offset, err)
            return False
        except Exception as exc:  # a fold bug must not crash the agent (faust would skip the record)
            log.exception("folding %s[%d]@%d failed; dead-lettered, profile unchanged", topic, partition, offset)
            await self._dead_letter(
                value, key, topic, partition, offset, SignalError(R_FOLD_FAILED, f"the fold failed: {exc!r}")
            )
            return False
        if not applied:
            metrics.SIGNALS_DUPLICATE.labels(STAGE).inc()
            return False
        state.partition = partition
        self.table[key] = state.to_row()
        metrics.PROFILES_UPDATED.labels(STAGE).inc()
        lag_s = time.time() - signal.ts / 1000
        if lag_s >= 0:
            metrics.END_TO_END_SECONDS.labels(STAGE, topic).observe(lag_s)
        if self.coalescer.changed(key, partition):
            await self.publish(key)
        return True

    async def _dead_letter(
        self, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int, err: SignalError
    ) -> None:
        await send_dead_letter(
            self.dead_letter_topic, STAGE, raw, key, RecordCoordinates(topic, partition, offset), err.reason, str(err)
        )

    # --- publishing -----------------------------------------------------------------------------
    def active_partitions(self) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.signals_topic_name}

    def profile_json(self, key: bytes, as_of: int | None = None) -> dict[str, Any] | None:
        """The rendered profile of ``key`` from the local table, or None if unknown here."""
        row = self.table.get(key)
        if row is None:
            return None
        return render(ProfileState.from_row(row), self.params, as_of=as_of)

    async def publish(self, key: bytes) -> None:
        row = self.table.get(key)
        if row is None:
            return
        state = ProfileState.from_row(row)
        if state.partition not in self.active_partitions():
            return  # revoked meanwhile: the new owner republishes it
        value = dumps(render(state, self.params))
        try:
            await self.profiles_topic.send(
                key=key,
                value=value,
                partition=state.partition if self.same_partitioning else None,
                # Event time, the latest signal's, never ahead of now (faust takes seconds); a new trace, as one profile
                # record sums many inputs.
                timestamp=record_timestamp_ms(state.as_of, int(time.time() * 1000)) / 1000 if state.as_of else None,
                headers=output_headers(PROFILE_SCHEMA_VERSION, None, child_traceparent(None)),
                callback=self._count_published,
            )
        except Exception as exc:  # the row is kept and goes out on its next change; the agent goes on
            metrics.PRODUCE_ERRORS.labels(STAGE, self.settings.topics.user_profiles).inc()
            log.error("publishing a profile (%d bytes) failed: %r", len(value), exc)

    def _count_published(self, _: Any) -> None:
        """Delivery callback of a profile record (faust calls it once the broker acknowledged it)."""
        metrics.PROFILES_PUBLISHED.labels(STAGE).inc()
        metrics.EVENTS_PRODUCED.labels(STAGE, self.settings.topics.user_profiles).inc()

    async def publish_due(self) -> None:
        for key in self.coalescer.due():
            await self.publish(key)  # type: ignore[arg-type]

    async def republish_new_partitions(self) -> None:
        """Queue every profile of the partitions this worker newly owns (a crash may have lost them)."""
        active = self.active_partitions()
        new = active - self._republished
        self._republished = active
        if not new:
            return
        queued = 0
        for i, (key, row) in enumerate(self.table.items()):
            if row and row.get("partition") in new:
                self.coalescer.force([(key, row["partition"])])
                queued += 1
            if i % 1000 == 999:
                await asyncio.sleep(0)
        log.info("partitions %s recovered: %d profiles queued for republishing", sorted(new), queued)

    # --- gauges ---------------------------------------------------------------------------------
    async def update_gauges(self) -> None:
        tps = [tp for tp in self.app.assignor.assigned_actives() if tp.topic == self.signals_topic_name]
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(len(tps))
        consumer = self.app.consumer
        total_lag = 0
        progress: list[PartitionProgress] = []
        for tp in tps:
            try:
                # aiokafka asserts the partition is assigned; mid-rebalance the assignor may disagree.
                highwater = consumer.highwater(tp)
            except Exception:
                continue
            handled_next = self._handled_next(tp)
            if highwater is None or handled_next is None:
                continue  # no position yet (recovery still seeking): no lag figure rather than a wrong one
            read = getattr(consumer, "_read_offset", {}).get(tp)
            progress.append(PartitionProgress(tp.partition, handled_next, highwater, read))
            total_lag += progress[-1].lag
            metrics.CONSUMER_LAG.labels(STAGE, tp.topic, str(tp.partition)).set(progress[-1].lag)
        broker_up = await broker_reachable(self.app)
        metrics.BROKER_UP.labels(STAGE).set(1 if broker_up else 0)
        self.broker_up = broker_up
        ready, _ = self.readiness()
        if ready:
            await self._settle_still_tails(progress)
        was_stalled = self.stall.stalled()
        self.stall.observe(ready and broker_up and total_lag > 0, self.offsets.positions())
        if self.stall.stalled() and not was_stalled:
            log.error("no progress for %.0fs with %d signals waiting: failing /healthz", STALL_TIMEOUT_S, total_lag)

    def _handled_next(self, tp: Any) -> int | None:
        """The next offset of ``tp`` the agent has yet to apply: after its last record, else the committed one.

        Lag is measured from here. Counting from "nothing handled" instead made a restarted worker
        whose partitions stay quiet report the whole partition as lag, and fail /healthz as stalled.
        """
        handled = self.offsets.next(tp.partition)
        return handled if handled is not None else committed_offset(self.app, tp)

    async def _settle_still_tails(self, progress: list[PartitionProgress]) -> None:
        """Look at partitions with lag that did not move for a tick (``TailWatch``): markers or a skip."""
        for p in self.tail_watch.check(progress):
            hole = Hole(p.partition, p.handled_next, p.highwater)
            try:
                first = await asyncio.to_thread(self.gap_reader.first_offset, hole)
                if first is None:  # transaction markers only: nothing is waiting
                    self.offsets.advance(p.partition, p.highwater)
                    metrics.OFFSET_HOLES.labels(STAGE, "empty").inc()
                    continue
                if p.stream_read is None or p.stream_read < first:
                    continue  # faust has not read it yet: it is still on its way
                log.warning(
                    "%s[%d]: the stream read past offset %d but the agent never got it; seeking back to deliver it",
                    self.signals_topic_name,
                    p.partition,
                    first,
                )
                tp = next(
                    tp
                    for tp in self.app.assignor.assigned_actives()
                    if tp.topic == self.signals_topic_name and tp.partition == p.partition
                )
                await self.app.consumer.seek(tp, p.handled_next)
                metrics.OFFSET_HOLES.labels(STAGE, "redelivered").inc()
            except Exception as exc:  # StopIteration (revoked meanwhile), a failed read or seek
                metrics.OFFSET_HOLES.labels(STAGE, "failed").inc()
                log.error(
                    "could not settle the tail of %s[%d] at %d..%d: %r",
                    self.signals_topic_name,
                    p.partition,
                    p.handled_next,
                    p.highwater - 1,
                    exc,
                )

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready = table recovered and broker reachable (unknown until the first gauge tick counts as reachable:
        the worker just got its partitions from it)."""
        recovered = self._recovered.is_set() and not self.app.rebalancing
        return recovered and self.broker_up is not False, {
            "recovered": recovered,
            "broker_reachable": self.broker_up,
            "assigned_partitions": sorted(self.active_partitions()) if recovered else [],
            "pending_publishes": len(self.coalescer),
            "partitioner_mismatches": self.partitioner_mismatches,
        }


def load_json(raw: bytes | None) -> Any:
    """A record's JSON value; ``SignalError`` (a dead letter) for anything that is not JSON we read."""
    if raw is None:
        raise SignalError(R_EMPTY, "the record has no value")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignalError(R_BAD_JSON, f"not JSON: {exc}") from None
    except RecursionError:
        raise SignalError(R_BAD_JSON, "not JSON: nested too deep") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's int/str limit)
        raise SignalError(R_BAD_JSON, f"not JSON: {exc}") from None
