"""``shoppulse run insights``: build the stage 3 faust app from settings and flags and run one worker.

``python -m shoppulse.consumers.insights.cli`` runs the same thing on its own (the integration tests start
it that way so that ``kill -9`` hits the worker itself).
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
PORT_SETTING = "insights_port"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_worker_arguments(parser, "insights", PORT_SETTING)
    parser.add_argument("--window", type=int, help="window length in seconds (default: 3600)")


def settings_for(args: argparse.Namespace) -> Settings:
    return worker_settings(args, "insights", PORT_SETTING, window_s=args.window)


def run(args: argparse.Namespace) -> int:
    from shoppulse.consumers.insights.app import InsightsStage

    settings = settings_for(args)
    tracer = stage_tracer(settings.tracing, "insights")
    t = settings.topics
    partitions = topic_partitions(settings, t.user_signals)
    for name in (t.review_insights, t.insight_facts):
        if topic_partitions(settings, name) != partitions:
            raise SystemExit(f"{name} must have as many partitions as {t.user_signals} ({partitions})")
    stage = InsightsStage(settings, partitions, tracer=tracer)
    cfg = settings.insights
    log.info(
        "insights worker: app %s, %d partitions, %ds windows, store %s at %s, http %s:%d",
        cfg.app_id,
        partitions,
        cfg.window_s,
        cfg.store,
        cfg.data_dir,
        settings.http.host,
        settings.http.insights_port,
    )
    return run_worker(stage.app, settings, args)


def main(argv: Sequence[str] | None = None) -> int:
    return worker_main("python -m shoppulse.consumers.insights.cli", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
