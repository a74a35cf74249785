"""``shoppulse bench pipeline`` end to end on the shared broker: it runs and prints its JSON line.

Small and slow-rate on purpose: this checks the command and the shape of its report, not
speed (speed is measured by running the benchmark, never asserted).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoppulse.consumers.cli import build_parser

pytestmark = pytest.mark.integration

EVENTS = 3000


def test_bench_pipeline_reports_capacity_ratio_and_latency_levels(
    kafka_broker, tiny_bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Capacity is committed offsets over time; with the default 1 s commit interval the tiny model
    # can finish all events before the second commit, leaving no interval to measure (seen in CI).
    monkeypatch.setenv("SHOPPULSE_ENRICH__COMMIT_INTERVAL_MS", "100")
    args = build_parser().parse_args(
        [
            *("bench", "pipeline", "--bootstrap", kafka_broker.bootstrap, "--bundle", str(tiny_bundle)),
            *("--events", str(EVENTS), "--rate", "60", "--loads", "0.5", "--duration", "3", "--warmup", "0"),
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    report = json.loads(out[-1])
    assert report["pipeline_events_per_s"] > 0 and report["model_only_reviews_per_s"] > 0
    # ratios are rounded to 3 decimals; a tiny model makes them small, so compare with an absolute margin
    capacity, parts = report["pipeline_events_per_s"], report["setup"]["stage_parts_reviews_per_s"]
    assert report["ratio"] == pytest.approx(capacity / report["model_only_reviews_per_s"], rel=0.01, abs=6e-4)
    expected = capacity / parts["model_with_clauses"]
    assert report["ratio_vs_model_with_clauses"] == pytest.approx(expected, rel=0.01, abs=6e-4)
    [level] = report["levels"]
    assert level["load"] == 0.5 and level["offered_events_per_s"] == 30.0
    assert level["missing"] == 0 and level["measured"] > 0
    assert 0 <= level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"] <= level["max_ms"]
    setup = report["setup"]
    assert setup["outputs_after_capacity"]["review_insights"] == EVENTS  # every review enriched, none lost
    assert setup["outputs_after_capacity"]["user_signals"] == EVENTS
    assert setup["broker"].startswith("external")
    assert any(line.startswith("| ratio pipeline / model-only") for line in out)
    stage3 = report["insights"]  # stage 3 read every output of enrich, then ran along the load level
    assert stage3["input_records"] == 2 * EVENTS and stage3["records_per_event"] == 2.0
    assert 0 < stage3["insight_facts_records"] <= 3 * EVENTS  # at most product, category and tag per review
    [lag] = stage3["lag_by_level"]
    assert lag["load"] == 0.5 and lag["max"] is not None
    assert stage3["drained_after_load_s"] is not None
    assert any(line.startswith("| ratio stage 3 / enrich") for line in out)


def test_bench_soak_samples_the_three_stages_and_prints_its_summary(
    kafka_broker, tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(
        [
            *("bench", "soak", "--bootstrap", kafka_broker.bootstrap, "--bundle", str(tiny_bundle)),
            *("--minutes", "0.5", "--rate", "40", "--sample-s", "10"),
        ]
    )
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    samples, summary = report["samples"], report["summary"]
    assert len(samples) == 3 and summary["all_alive_throughout"] is True
    for sample in samples:
        assert sample["enrich_rss_mib"] > 50 and sample["profiles_rss_mib"] > 30 and sample["insights_rss_mib"] > 30
        assert None not in (sample["enrich_lag"], sample["profiles_lag"], sample["insights_lag"])
    assert summary["enrich_errors"] == 0 and summary["profiles_errors"] == 0 and summary["insights_errors"] == 0
    assert summary["enrich_lag_max"] < 40 * 30  # it kept up with the offered stream
