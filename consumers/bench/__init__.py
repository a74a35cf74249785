"""``shoppulse bench model``, ``bench pipeline`` and ``bench soak``: numbers, never assertions.

``register`` only builds the parsers; the benchmark modules (and torch, which only the
model benchmark's torch rows use, in their own processes) are imported when a command runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from consumers.bench import model, pipeline, soak

    bench = subparsers.add_parser("bench", help="benchmarks: model-only speed, the enrich pipeline, a soak")
    commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    model_parser = commands.add_parser(
        "model",
        help="naive pipeline vs torch vs ONNX Runtime FP32/INT8 on the same texts",
        description=model.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model.add_arguments(model_parser)
    model_parser.set_defaults(func=model.run)
    pipeline_parser = commands.add_parser(
        "pipeline",
        help="end-to-end events/s and latency of the enrich stage on an embedded broker",
        description=pipeline.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pipeline.add_arguments(pipeline_parser)
    pipeline_parser.set_defaults(func=pipeline.run)
    soak_parser = commands.add_parser(
        "soak",
        help="both stages at half the slower one's capacity for --minutes: memory, lag and errors per minute",
        description=soak.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    soak.add_arguments(soak_parser)
    soak_parser.set_defaults(func=soak.run)
