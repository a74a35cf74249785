"""``shoppulse config show`` and ``shoppulse config check``: the resolved settings, and whether they work.

``show`` prints the settings every process would run with (defaults, ``SHOPPULSE_CONFIG`` file,
``SHOPPULSE_*`` variables and ``--bootstrap``, in that order of precedence) as JSON, with secrets
redacted, so a person can see what a pod was given. ``check`` validates them, loads the model
bundle and asks the broker for its metadata, one line per check; its exit code (0 all good, 1 a
check failed) makes it an init container or a CI step. An invalid setting ends both with one line
and exit 2, as every command does (``shoppulse.consumers.cli``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shoppulse.consumers.settings import Settings

REDACTED = "***"
_SECRET_WORDS = ("password", "secret", "token", "credential", "private", "key.pem", "jaas")


def is_secret(option: str) -> bool:
    """A librdkafka/aiokafka option whose value must not be shown (``sasl.password``, ``ssl.key.password``...)."""
    name = option.lower()
    return any(word in name for word in _SECRET_WORDS)


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready data, every secret option replaced by ``***``."""
    data = settings.model_dump(mode="json")
    options = data.get("kafka", {}).get("options", {})
    for name in options:
        if is_secret(name):
            options[name] = REDACTED
    return data


def register(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="show the resolved settings, or check that they work")
    commands = config.add_subparsers(dest="config_command", required=True, metavar="{show,check}")
    show = commands.add_parser("show", help="the settings a process would run with, secrets redacted (JSON)")
    show.add_argument("--bootstrap", help="HOST:PORT (default: settings kafka.bootstrap_servers)")
    show.set_defaults(func=_show)
    check = commands.add_parser("check", help="validate the settings, load the bundle, reach the broker")
    check.add_argument("--bootstrap", help="HOST:PORT (default: settings kafka.bootstrap_servers)")
    check.add_argument("--no-broker", action="store_true", help="skip the broker (e.g. in CI without one)")
    check.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker (default 5)")
    check.set_defaults(func=_check)


def _show(args: argparse.Namespace) -> int:
    from shoppulse.consumers.cli import settings_from_args

    print(json.dumps(redacted(settings_from_args(args)), ensure_ascii=False, indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    from shoppulse.consumers.cli import settings_from_args

    settings = settings_from_args(args)  # an invalid setting ends here: one line, exit 2
    results = [("settings", True, "valid")]
    results.append(_check_bundle(settings))
    if not args.no_broker:
        results.append(_check_broker(settings, args.timeout))
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", file=sys.stdout if ok else sys.stderr)
    return 0 if all(ok for _, ok, _ in results) else 1


def _check_bundle(settings: Settings) -> tuple[str, bool, str]:
    """Load every bundle the enrich stage would serve, and say which head comes from which."""
    from shoppulse.models.serving.bundle import BundleError
    from shoppulse.models.serving.composed import load_sources

    enrich = settings.enrich
    try:
        sources = load_sources(enrich.bundle_dir, enrich.interest_bundle_dir, enrich.default_interest)
    except (BundleError, OSError, ValueError) as exc:
        return "bundle", False, str(exc)
    served = "; ".join(f"{', '.join(heads)} from {b.name} {b.version} at {b.path}" for b, heads in sources)
    return "bundle", True, served


def _check_broker(settings: Settings, timeout_s: float) -> tuple[str, bool, str]:
    from shoppulse.consumers.reachable import BrokerUnreachable, require_broker
    from shoppulse.consumers.topics import topic_specs

    try:
        metadata = require_broker(settings, timeout_s)
    except BrokerUnreachable as exc:
        return "broker", False, str(exc)
    missing = [spec.name for spec in topic_specs(settings) if spec.name not in metadata.topics]
    if missing:
        return (
            "broker",
            False,
            (
                f"{settings.kafka.bootstrap_servers} answered; topics missing: {', '.join(missing)} "
                "(`shoppulse topics ensure` creates them)"
            ),
        )
    return "broker", True, f"{settings.kafka.bootstrap_servers}: {len(metadata.brokers)} broker(s), every topic there"
