"""`shoppulse run enrich` serves its probes and metrics while the model bundle loads."""

from __future__ import annotations

import argparse
import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from shoppulse.consumers.enrich import cli
from shoppulse.devkit.broker.base import free_port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_readyz_and_model_loaded_say_loading_until_the_stage_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    loading, release = threading.Event(), threading.Event()

    class Stage:
        def readiness(self) -> tuple[bool, dict[str, Any]]:
            return True, {"model_loaded": True}

        def run(self) -> int:
            return 0

    def slow_build(settings: Any) -> Stage:
        loading.set()
        assert release.wait(30)
        return Stage()

    monkeypatch.setattr(cli, "build_stage", slow_build)
    port = free_port()
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--http-port", str(port)])
    args.config = None
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(cli.run(args)), daemon=True)
    runner.start()
    try:
        assert loading.wait(30)
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and json.loads(body)["model_loaded"] is False, body
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and 'shoppulse_model_loaded{stage="enrich"} 0.0' in text
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # alive: no restart while loading
    finally:
        release.set()
        runner.join(30)
    assert result == [0]
