"""``shoppulse bench model``, ``bench pipeline`` and ``bench soak``: numbers, never assertions.

``register`` only builds the parsers; the benchmark modules (and torch, which only the
model benchmark's torch rows use, in their own processes) are imported when a command runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from shoppulse.devkit.bench import model, pipeline, soak

    bench = subparsers.add_parser("bench", help="benchmarks: model-only speed, the enrich pipeline, a soak")
    commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    for name, module, summary in (
        ("model", model, "naive pipeline vs torch vs ONNX Runtime FP32/INT8 on the same texts"),
        ("pipeline", pipeline, "end-to-end events/s and latency of the enrich stage on an embedded broker"),
        ("soak", soak, "both stages at half the slower one's capacity for --minutes: memory, lag and errors"),
    ):
        parser = commands.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)
