"""A mistake in the settings ends in one line on stderr that names it, and exit code 2 (no traceback)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from shoppulse.consumers.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("SHOPPULSE_ENRCH__MAX_BATCH", "did you mean SHOPPULSE_ENRICH__MAX_BATCH?"),  # a typo in the group
        ("SHOPPULSE_ENRICH__MAX_BATCHH", "did you mean SHOPPULSE_ENRICH__MAX_BATCH?"),
        ("SHOPPULSE_NOTHING_LIKE_IT", "no setting reads SHOPPULSE_NOTHING_LIKE_IT"),
    ],
)
def test_an_unknown_variable_is_named_with_the_likely_one(
    variable: str, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, "5")
    code, err = _run(["topics", "ensure", "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], err


def test_a_bad_value_names_the_setting_and_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPPULSE_ENRICH__MAX_BATCH", "0")
    code, err = _run(["topics", "ensure", "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("shoppulse: setting enrich.max_batch: ") and "SHOPPULSE_ENRICH__MAX_BATCH" in err[0]


def test_a_bad_flag_names_the_setting_in_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    """A flag is applied to one settings group: its error still names the group (it said
    ``setting replication_factor``, from ``SHOPPULSE_REPLICATION_FACTOR``, a variable that does not exist)."""
    code, err = _run(["topics", "ensure", "--bootstrap", "127.0.0.1:1", "--replication-factor", "0"], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("shoppulse: setting kafka.replication_factor: ")
    assert "SHOPPULSE_KAFKA__REPLICATION_FACTOR" in err[0]


def test_a_check_across_a_group_names_the_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPPULSE_INSIGHTS__RETENTION_S", "10")
    code, err = _run(["topics", "ensure", "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("shoppulse: setting insights: ") and "SHOPPULSE_INSIGHTS__*" in err[0]


def test_an_unknown_key_in_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "shoppulse.yaml"
    config.write_text("enrich:\n  max_batchh: 8\n", encoding="utf-8")
    monkeypatch.setenv("SHOPPULSE_CONFIG", str(config))
    code, err = _run(["topics", "ensure", "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and len(err) == 1 and "enrich.max_batchh" in err[0], err


def test_as_a_user_types_it_from_an_empty_directory(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "shoppulse.consumers.cli", "simulate", "--bootstrap", "127.0.0.1:1", "--events", "1"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "SHOPPULSE_ENRCH__MAX_BATCH": "5"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "did you mean SHOPPULSE_ENRICH__MAX_BATCH?" in proc.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("command", [["topics", "ensure"], ["simulate", "--events", "3"]])
def test_nothing_listening_is_one_line_within_seconds(command: list[str], tmp_path: Path) -> None:
    """`topics ensure` printed ~580 librdkafka lines over 30 s and a traceback; `simulate` hung."""
    from shoppulse.devkit.broker import free_port

    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "shoppulse.consumers.cli", *command, "--bootstrap", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "no Kafka broker answered" in lines[0] and "shoppulse broker" in lines[0]
    assert took < 20, took


def test_evaluate_with_a_missing_bundle_or_the_wrong_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoppulse.consumers.settings import DEFAULT_BUNDLE

    csv = tmp_path / "reviews.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    for bundle, data, expected in (
        (tmp_path / "nope", csv, "does not exist"),
        (DEFAULT_BUNDLE, csv, "needs a 'review' column"),
        (DEFAULT_BUNDLE, tmp_path / "missing.csv", "No such file"),
    ):
        code, err = _run(["evaluate", "--bundle", str(bundle), "--data", str(data), "--task", "sentiment"], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("shoppulse evaluate: ") and expected in err[0], err


def test_a_faust_stage_without_a_broker_ends_its_start_in_one_line() -> None:
    from shoppulse.consumers.faust_stage import topic_partitions
    from shoppulse.consumers.settings import load_settings

    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"})
    started = time.monotonic()
    with pytest.raises(SystemExit) as stopped:
        topic_partitions(settings, "user-signals", timeout_s=2)
    assert time.monotonic() - started < 10
    message = str(stopped.value.code)
    assert message.startswith("no Kafka broker answered at 127.0.0.1:1") and "\n" not in message
