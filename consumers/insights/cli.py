"""``shoppulse run insights``: build the stage 3 faust app from settings and flags and run one worker.

``python -m consumers.insights.cli`` runs the same thing on its own (the integration tests start
it that way so that ``kill -9`` hits the worker itself).
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
    parser.add_argument("--app-id", help="faust app id = consumer group (default: shoppulse-insights)")
    parser.add_argument("--store", choices=("memory", "rocksdb"), help="table store (default: memory)")
    parser.add_argument("--data-dir", type=Path, help="local table store; one per worker")
    parser.add_argument("--http-host", help="address to bind the HTTP server (default: settings http.host)")
    parser.add_argument("--http-port", type=int, help="HTTP port (default: settings http.insights_port)")
    parser.add_argument("--advertised-host", help="host other workers use to reach this one")
    parser.add_argument("--window", type=int, help="window length in seconds (default: 3600)")


def settings_for(args: argparse.Namespace) -> Settings:
    from consumers.cli import settings_from_args

    settings = settings_from_args(args)
    settings.insights = with_updates(
        settings.insights,
        app_id=args.app_id,
        store=args.store,
        data_dir=args.data_dir,
        advertised_host=args.advertised_host,
        window_s=args.window,
    )
    settings.http = with_updates(settings.http, host=args.http_host, insights_port=args.http_port)
    return settings


def run(args: argparse.Namespace) -> int:
    import faust

    from consumers.insights.app import InsightsStage
    from consumers.profiles.cli import topic_partitions

    settings = settings_for(args)
    t = settings.topics
    partitions = topic_partitions(settings, t.user_signals)
    for name in (t.review_insights, t.insight_facts):
        if topic_partitions(settings, name) != partitions:
            raise SystemExit(f"{name} must have as many partitions as {t.user_signals} ({partitions})")
    stage = InsightsStage(settings, partitions)
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
    level = (getattr(args, "log_level", None) or settings.log_level).lower()
    worker = faust.Worker(stage.app, loglevel=level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consumers.insights.cli", description=__doc__)
    parser.add_argument("--log-level", default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
