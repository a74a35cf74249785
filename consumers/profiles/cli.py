"""``shoppulse run profiles``: build the faust app from settings and flags and run one worker.

The worker runs programmatically (``faust.Worker``), not through faust's click CLI, so the
flags and settings are shoppulse's own. ``python -m consumers.profiles.cli`` runs the same
thing without the rest of the ``shoppulse`` tree (the integration tests start it that way so
that ``kill -9`` hits the worker itself).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from consumers.settings import Settings, with_updates

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="HOST:PORT[,...] (default: settings kafka.bootstrap_servers)")
    parser.add_argument("--app-id", help="faust app id = consumer group (default: shoppulse-profiles)")
    parser.add_argument("--store", choices=("memory", "rocksdb"), help="table store (default: memory)")
    parser.add_argument("--data-dir", type=Path, help="local table store; one per worker")
    parser.add_argument("--http-host", help="address to bind the HTTP server (default: settings http.host)")
    parser.add_argument("--http-port", type=int, help="HTTP port (default: settings http.profiles_port)")
    parser.add_argument("--advertised-host", help="host other workers use to reach this one")
    parser.add_argument("--publish-interval", type=float, help="seconds between publishes of one user")


def settings_for(args: argparse.Namespace) -> Settings:
    from consumers.cli import settings_from_args

    settings = settings_from_args(args)
    settings.profiles = with_updates(
        settings.profiles,
        app_id=args.app_id,
        store=args.store,
        data_dir=args.data_dir,
        advertised_host=args.advertised_host,
        publish_interval_s=args.publish_interval,
    )
    settings.http = with_updates(settings.http, host=args.http_host, profiles_port=args.http_port)
    return settings


def topic_partitions(settings: Settings, topic: str, timeout_s: float = 30.0) -> int:
    """Partition count of ``topic`` (the table must have exactly as many)."""
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(settings.librdkafka()).list_topics(topic=topic, timeout=timeout_s)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        reason = info.error if info is not None else "missing"
        raise SystemExit(f"topic {topic!r} is not usable ({reason}): run `shoppulse topics ensure` first")
    return len(info.partitions)


def run(args: argparse.Namespace) -> int:
    import faust

    from consumers.profiles.app import ProfilesStage

    settings = settings_for(args)
    partitions = topic_partitions(settings, settings.topics.user_signals)
    profiles_partitions = topic_partitions(settings, settings.topics.user_profiles)
    if profiles_partitions != partitions:
        log.warning(
            "%s has %d partitions, %s has %d: profiles keep the signal's partition number only when equal",
            settings.topics.user_profiles,
            profiles_partitions,
            settings.topics.user_signals,
            partitions,
        )
    stage = ProfilesStage(settings, partitions, profiles_partitions=profiles_partitions)
    log.info(
        "profiles worker: app %s, %d partitions, store %s at %s, http %s:%d",
        settings.profiles.app_id,
        partitions,
        settings.profiles.store,
        settings.profiles.data_dir,
        settings.http.host,
        settings.http.profiles_port,
    )
    level = (getattr(args, "log_level", None) or settings.log_level).lower()
    worker = faust.Worker(stage.app, loglevel=level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consumers.profiles.cli", description=__doc__)
    parser.add_argument("--log-level", default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
