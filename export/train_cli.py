"""``shoppulse train``: the recipe (``shoppulse.models.training.train``), then the bundle (``shoppulse.export.build``).

The command is registered here rather than in models: export imports models, so models never
imports export and the two packages have no import cycle; the recipe receives the bundle step.
"""

from __future__ import annotations

import argparse
from typing import Any

from shoppulse.models.training import train


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help=train.HELP, description=train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    train.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shoppulse.export.build import build_bundle  # torch: only once the command runs

    return train.run(args, bundler=build_bundle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoppulse.export.train_cli", description=train.__doc__)
    train.add_arguments(parser)
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else None  # the command the manifest records
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
