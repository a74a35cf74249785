"""`shoppulse demo` (what `make demo` runs) end to end: broker, simulator, three stages, an alert, clean stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration.enrich_harness import ROOT

pytestmark = pytest.mark.integration


SHOPPULSE = [sys.executable, "-m", "shoppulse.consumers.cli"]


def _targets_up(prometheus_url: str) -> int:
    """How many scrape targets the demo's Prometheus sees up."""
    query = prometheus_url.replace("/graph", "/api/v1/query?query=up")
    try:
        with urllib.request.urlopen(query, timeout=5) as resp:
            result = json.loads(resp.read())["data"]["result"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(1 for series in result if series["value"][1] == "1")


def test_demo_runs_the_pipeline_and_stops_cleanly_on_ctrl_c(kafka_broker, default_bundle: Path) -> None:
    # kafka_broker: the demo starts its own broker; requiring the fixture makes sure Java/Maven are there.
    require(shutil.which("prometheus") is not None, "prometheus", "run scripts/install-tools.sh (make tools)")
    # The default bundle: the incident's alert needs a model that reads the complaints.
    env = {**os.environ, "SHOPPULSE_ENRICH__BUNDLE_DIR": str(default_bundle), "SHOPPULSE_ENRICH__INTRA_OP_THREADS": "1"}
    proc = subprocess.Popen(
        [*SHOPPULSE, "demo", "--rate", "300", "--users", "50", "--with-prometheus"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # librdkafka logs to stderr: a clean stop logs no client errors
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        profile_seen = alert_seen = False
        while time.monotonic() < deadline and not (profile_seen and alert_seen):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            # insights, signals and a profile served over HTTP: stages 1 and 2 work
            profile_seen |= "profile u" in line and "top tags" in line
            alert_seen |= "ALERT negative_spike on product" in line  # stage 3 caught the incident
        printed = r"\[demo\] (enrich metrics|profiles metrics|profile lookup|insights|prometheus) +(http\S+)"
        urls = dict(re.findall(printed, "".join(lines)))
        assert set(urls) == {"enrich metrics", "profiles metrics", "profile lookup", "insights", "prometheus"}, lines
        up_deadline = time.monotonic() + 60
        while _targets_up(urls["prometheus"]) < 3 and time.monotonic() < up_deadline:
            time.sleep(1)
        assert _targets_up(urls["prometheus"]) == 3, "the demo's Prometheus does not scrape the three stages"
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = proc.communicate(timeout=90)
        lines.extend(rest.splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert proc.returncode == 0, text[-3000:]
    assert "latest review" in text and "top tags" in text, text[-3000:]
    alerts = [line for line in text.splitlines() if "ALERT" in line]
    assert alerts and all("p000037" in line for line in alerts), alerts or text[-3000:]  # the incident's product
    start = next(i for i, line in enumerate(text.splitlines()) if "ALERT" in line)
    # The incident starts at second 30 and the alert came at 36-38 s on an idle machine; a loaded CI
    # machine may lag the stages by tens of seconds, so the bound here is looser than the promise.
    assert float(text.splitlines()[start].split("s ALERT")[0].split()[-1]) < 90, "no alert within 90 s"
    assert "[demo] stopped cleanly" in text
    stopping = text[text.index("[demo] stopping") :]
    assert not [line for line in stopping.splitlines() if line.startswith(("%3|", "%4|"))], stopping[-3000:]
