"""``shoppulse run enrich|profiles|insights``: the three stream stages."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run a stream stage")
    stages = run.add_subparsers(dest="stage", required=True)

    from shoppulse.consumers.enrich import cli as enrich_cli

    enrich = stages.add_parser(
        "enrich", help="stage 1: reviews/clicks/orders → insights, signals, dead letters"
    )
    enrich_cli.add_arguments(enrich)
    enrich.set_defaults(func=enrich_cli.run)

    try:
        from shoppulse.consumers.profiles import cli as profiles_cli
    except ImportError:  # stage 2 not installed in this build
        return
    profiles = stages.add_parser("profiles", help="stage 2: user-signals → per-user profiles (faust)")
    profiles_cli.add_arguments(profiles)
    profiles.set_defaults(func=profiles_cli.run)

    from shoppulse.consumers.insights import cli as insights_cli

    insights = stages.add_parser(
        "insights", help="stage 3: review-insights + user-signals → product/category insights, alerts (faust)"
    )
    insights_cli.add_arguments(insights)
    insights.set_defaults(func=insights_cli.run)
