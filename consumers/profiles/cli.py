"""``shoppulse run profiles``: build the faust app from settings and flags and run one worker.

The worker runs programmatically (``faust.Worker``), not through faust's click CLI, so the
flags and settings are shoppulse's own. ``python -m shoppulse.consumers.profiles.cli`` runs the same
thing without the rest of the ``shoppulse`` tree (the integration tests start it that way so
that ``kill -9`` hits the worker itself).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from shoppulse.consumers.faust_stage import (
    add_worker_arguments,
    run_worker,
    topic_partitions,
    worker_main,
    worker_settings,
)
from shoppulse.consumers.settings import Settings
from shoppulse.consumers.tracing import stage_tracer

log = logging.getLogger(__name__)
PORT_SETTING = "profiles_port"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_worker_arguments(parser, "profiles", PORT_SETTING)
    parser.add_argument("--publish-interval", type=float, help="seconds between publishes of one user")


def settings_for(args: argparse.Namespace) -> Settings:
    return worker_settings(args, "profiles", PORT_SETTING, publish_interval_s=args.publish_interval)


def run(args: argparse.Namespace) -> int:
    from shoppulse.consumers.profiles.app import ProfilesStage

    settings = settings_for(args)
    tracer = stage_tracer(settings.tracing, "profiles")
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
    stage = ProfilesStage(settings, partitions, profiles_partitions=profiles_partitions, tracer=tracer)
    log.info(
        "profiles worker: app %s, %d partitions, store %s at %s, http %s:%d",
        settings.profiles.app_id,
        partitions,
        settings.profiles.store,
        settings.profiles.data_dir,
        settings.http.host,
        settings.http.profiles_port,
    )
    return run_worker(stage.app, settings, args)


def main(argv: Sequence[str] | None = None) -> int:
    return worker_main("python -m shoppulse.consumers.profiles.cli", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
