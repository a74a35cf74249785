"""``shoppulse config check`` against real Kafka: every topic there passes; missing topics are named."""

from __future__ import annotations

import pytest

from shoppulse.consumers.cli import main
from shoppulse.consumers.settings import to_env
from shoppulse.devkit.broker import EmbeddedBroker
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration


def test_check_passes_with_the_topics_and_names_the_missing_ones(
    kafka_broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = isolated_settings(kafka_broker.bootstrap)  # creates every topic under unique names
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "ok   broker: " in out and "every topic there" in out
    monkeypatch.setenv("SHOPPULSE_TOPICS__ALERTS", "alerts-nobody-made")
    assert main(["config", "check"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("FAIL broker: ") and "alerts-nobody-made" in line and "topics ensure" in line
