"""The ``shoppulse`` console script: one argparse tree, subcommands registered by their modules.

Modules are imported lazily per subcommand group so that ``shoppulse --help`` and the
runtime commands never import torch (only train/export/bench need it).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from shoppulse.consumers import __version__
from shoppulse.consumers.settings import Settings, describe_validation_error, load_settings, unknown_env_vars

# Modules exposing ``register(subparsers)``; a missing optional module is skipped with a note.
COMMAND_MODULES = (
    "shoppulse.consumers.topics",
    "shoppulse.consumers.config_cli",
    "shoppulse.consumers.run",
    "shoppulse.export.train_cli",
    "shoppulse.models.evaluation.evaluate",
    "shoppulse.export.cli",
)
# More command modules join through this entry-point group (the dev kit's broker, simulate, bench
# and demo: pyproject.toml), so the product never names them.
COMMAND_ENTRY_POINTS = "shoppulse.commands"


def command_modules() -> list[str]:
    """The product's command modules, then those registered under ``COMMAND_ENTRY_POINTS``."""
    plugged = sorted(importlib.metadata.entry_points(group=COMMAND_ENTRY_POINTS), key=lambda ep: ep.name)
    return [*COMMAND_MODULES, *(ep.value for ep in plugged if ep.value not in COMMAND_MODULES)]


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from file/env, then the common flags (``--bootstrap``) on top."""
    overrides: dict[str, Any] = {}
    bootstrap = getattr(args, "bootstrap", None)
    if bootstrap:
        overrides["kafka"] = {"bootstrap_servers": bootstrap}
    return load_settings(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoppulse",
        description="Streaming analytics for e-commerce: review sentiment, interest tags, user profiles.",
    )
    parser.add_argument("--version", action="version", version=f"shoppulse {__version__}")
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (default: settings log_level)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in command_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
                continue  # that part of the product is not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = unknown_env_vars(os.environ)
    if unknown:
        print(f"shoppulse: no setting reads {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        level = args.log_level or load_settings().log_level
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return int(args.func(args) or 0)
    except ValidationError as exc:  # a user's setting, not our bug: one line that names it
        print(f"shoppulse: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
