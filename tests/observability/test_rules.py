"""The shipped Prometheus rules: valid (promtool check), behaving as specified (promtool test),
and built only from metrics that consumers/metrics.py defines."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.promql import RULES, TARGET_LABELS, defined_series, recorded_names, usage

RULE_TESTS = Path(__file__).with_name("shoppulse.rules.test.yaml")
# Every alert the issue asks for, by the condition it names.
REQUIRED_ALERTS = {
    "ShoppulseConsumerLagGrowing",  # lag growing for N minutes
    "ShoppulseDeadLetterRateHigh",  # dead-letter rate above x%
    "ShoppulseNoEventsConsumed",  # no events consumed
    "ShoppulseEndToEndLatencyHigh",  # p99 latency above budget
    "ShoppulseModelNotLoaded",  # model not loaded
}


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def all_rules(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"]]


def promtool_run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(promtool: str) -> None:
    proc = promtool_run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules(promtool: str) -> None:
    proc = promtool_run(promtool, "test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_firing_case_in_the_rule_tests(rules: dict[str, Any]) -> None:
    alerts = {rule["alert"] for rule in all_rules(rules) if "alert" in rule}
    assert alerts >= REQUIRED_ALERTS
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts <= fired, f"alerts without a firing test: {sorted(alerts - fired)}"


def test_rules_use_only_defined_metrics_and_their_labels(rules: dict[str, Any]) -> None:
    series = defined_series()
    recorded = recorded_names(rules)
    for rule in all_rules(rules):
        name = rule.get("record") or rule["alert"]
        used = usage(rule["expr"])
        unknown = used.metrics - set(series) - recorded
        assert not unknown, f"{name}: metrics not in consumers/metrics.py: {sorted(unknown)}"
        labels = set(TARGET_LABELS).union(*(series.get(m, set()) for m in used.metrics))
        if used.metrics & recorded:
            labels |= {"namespace", "stage", "topic", "reason"}
        assert used.grouping_labels <= labels, f"{name}: unknown labels {used.grouping_labels - labels}"
        for metric, label in used.matchers:
            assert label in series.get(metric, labels) | TARGET_LABELS, f"{name}: {metric}{{{label}}}"


def test_alerts_carry_severity_and_text(rules: dict[str, Any]) -> None:
    for rule in all_rules(rules):
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            assert "for" in rule, f"{rule['alert']}: fires on a single bad scrape without `for`"


def test_every_alert_links_its_runbook_section(rules: dict[str, Any]) -> None:
    """Each alert's runbook_url points at a section of docs/runbooks.md with the three parts."""
    import re

    runbooks = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", runbooks, re.S | re.M))
    alerts = [rule for rule in all_rules(rules) if "alert" in rule]
    assert alerts and set(sections) == {rule["alert"] for rule in alerts}
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        assert url == f"https://github.com/shoppulse/shoppulse/blob/main/docs/runbooks.md#{rule['alert'].lower()}"
        for part in ("**Means**", "**Check**", "**Do**"):
            assert part in sections[rule["alert"]], (rule["alert"], part)
