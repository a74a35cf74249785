"""``shoppulse config show`` redacts secrets; ``config check`` says per check what works, in its exit code too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shoppulse.consumers.cli import main
from shoppulse.consumers.config_cli import is_secret
from shoppulse.devkit.broker import free_port


def test_show_prints_the_resolved_settings_with_secrets_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPPULSE_KAFKA_OPT_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("SHOPPULSE_KAFKA_OPT_SASL_USERNAME", "shop")
    monkeypatch.setenv("SHOPPULSE_ENRICH__MAX_BATCH", "32")
    assert main(["config", "show", "--bootstrap", "kafka:9093"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["kafka"]["bootstrap_servers"] == "kafka:9093" and shown["enrich"]["max_batch"] == 32
    assert shown["kafka"]["options"] == {"sasl.password": "***", "sasl.username": "shop"}
    assert "hunter2" not in out


def test_what_counts_as_a_secret() -> None:
    secret = ("sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret", "ssl.key.pem", "sasl.jaas.config")
    assert all(is_secret(name) for name in secret)
    assert not any(is_secret(name) for name in ("sasl.username", "security.protocol", "ssl.ca.location"))


def test_check_passes_without_a_broker_and_fails_on_a_missing_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--no-broker"]) == 0
    assert "ok   bundle: " in capsys.readouterr().out
    monkeypatch.setenv("SHOPPULSE_ENRICH__BUNDLE_DIR", str(tmp_path / "nowhere"))
    assert main(["config", "check", "--no-broker"]) == 1
    assert capsys.readouterr().err.startswith("FAIL bundle: ")


def test_check_names_an_unreachable_broker_within_its_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["config", "check", "--bootstrap", f"127.0.0.1:{free_port()}", "--timeout", "2"]) == 1
    assert time.monotonic() - started < 10
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("FAIL broker: no Kafka broker answered at 127.0.0.1:")
