"""Test-only launcher: the profiles worker with faust made to skip chosen records, once each.

Why: faust-streaming 0.15.3 sometimes marks a ``user-signals`` record read without handing it to
the agent (docs/profiles.md). It happens in a few percent of restarts, so the tests cannot wait
for it. This launcher makes faust do exactly that for named records: the message callback that
would hand the record to the stream returns without doing so, and faust's drain loop marks the
offset read as it does after the real skip. The product code is unchanged.

    SHOPPULSE_TEST_DROP="topic:partition:offset[,topic:partition:offset...]" \\
        python -m tests.integration.faust_drop --log-level INFO
"""

from __future__ import annotations

import os
import runpy
from typing import Any

from faust.transport import consumer as faust_consumer


def install(spec: str) -> None:
    targets: set[tuple[str, int, int]] = set()
    for item in spec.split(","):
        topic, partition, offset = item.rsplit(":", 2)
        targets.add((topic, int(partition), int(offset)))
    original = faust_consumer.Consumer.__init__

    def __init__(self: Any, transport: Any, callback: Any, *args: Any, **kwargs: Any) -> None:
        async def dropping(message: Any) -> None:
            where = (message.topic, message.partition, message.offset)
            if where in targets:
                targets.discard(where)  # once: a re-delivery after a seek goes through
                print(f"test drop: {where[0]}[{where[1]}]@{where[2]} not handed to the stream", flush=True)
                return
            await callback(message)

        original(self, transport, dropping, *args, **kwargs)

    faust_consumer.Consumer.__init__ = __init__  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ["SHOPPULSE_TEST_DROP"])
    runpy.run_module("shoppulse.consumers.profiles.cli", run_name="__main__")
