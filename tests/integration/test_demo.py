"""`shoppulse demo` (what `make demo` runs) end to end: broker, simulator, both stages, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.enrich_harness import ROOT

pytestmark = pytest.mark.integration


def test_demo_runs_the_pipeline_and_stops_cleanly_on_ctrl_c(kafka_broker, tiny_bundle: Path) -> None:
    # kafka_broker: the demo starts its own broker; requiring the fixture makes sure Java/Maven are there.
    env = {**os.environ, "SHOPPULSE_ENRICH__BUNDLE_DIR": str(tiny_bundle), "SHOPPULSE_ENRICH__INTRA_OP_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "consumers.cli", "demo", "--rate", "300", "--users", "50"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "profile u" in line and "top tags" in line:
                break  # insights, signals and a profile served over HTTP: the whole pipeline works
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = proc.communicate(timeout=90)
        lines.extend(rest.splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert proc.returncode == 0, text[-3000:]
    assert "latest review" in text and "top tags" in text, text[-3000:]
    assert "[demo] stopped cleanly" in text
