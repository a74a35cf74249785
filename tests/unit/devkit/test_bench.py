"""The benchmarks' untimed parts: generated lengths, maths, formats, argument parsing, the JSON line.

No assertion here is about speed (a shared 2-core machine makes timings noise); the one
end-to-end test checks that ``bench model`` runs on a tiny bundle and prints the promised
JSON shape, with figures that are internally consistent.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from shoppulse.devkit.bench import register
from shoppulse.devkit.bench import rows as R
from shoppulse.devkit.bench.compute import EncoderShape, flops_per_review_batched, flops_per_sequence
from shoppulse.devkit.bench.model import agreement, resolve_model_dir, summarise
from shoppulse.devkit.bench.pipeline import (
    capacity_from_samples,
    latency_summary,
    parse_kinds,
    parse_loads,
    phase_marker,
    pregenerate,
    restamp,
)
from shoppulse.devkit.bench.stats import json_line, markdown_table, percentile, spread
from shoppulse.devkit.bench.texts import (
    MAX_CHARS,
    PUNCTUATION,
    alphabet_from_vocab,
    generate_reviews,
    read_review_texts,
    review_lengths,
)

ROW_KEYS = {"name", "reviews_per_s", "ratio_vs_naive", "p50_ms", "p99_ms", "peak_rss_mb"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shoppulse")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


# --- generated texts --------------------------------------------------------------------------
def test_generated_lengths_follow_the_review_distribution() -> None:
    lengths = review_lengths(20_000, seed=3)
    # The real data: median 36, p90 132, p99 374 characters.
    assert 33 <= statistics.median(lengths) <= 39
    assert 120 <= percentile(lengths, 90) <= 145
    assert 330 <= percentile(lengths, 99) <= MAX_CHARS
    assert min(lengths) >= 1
    assert max(lengths) == MAX_CHARS  # the long tail is clipped, and reached


def test_generated_reviews_have_those_lengths_and_only_alphabet_characters() -> None:
    alphabet = list("好差快慢质量物流价格")
    texts = generate_reviews(alphabet, 300, seed=5)
    assert [len(t) for t in texts] == review_lengths(300, seed=5)
    allowed = set(alphabet) | set(PUNCTUATION)
    assert all(set(t) <= allowed for t in texts)
    assert generate_reviews(alphabet, 300, seed=5) == texts
    assert generate_reviews(alphabet, 300, seed=6) != texts


def test_alphabet_keeps_single_cjk_characters_only() -> None:
    vocab = ["[PAD]", "[CLS]", "##好", "好", "差", "ab", "物流", "1", *"快慢质量价格便宜贵"]
    assert alphabet_from_vocab(vocab) == sorted(["好", "差", *"快慢质量价格便宜贵"])
    with pytest.raises(ValueError, match="--data"):
        alphabet_from_vocab(["[PAD]", "a", "好"])


def test_reviews_csv_is_sampled_with_a_seed(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:  # BOM, like the real file
        writer = csv.writer(handle)
        writer.writerow(["cat", "label", "review"])
        for i in range(50):
            writer.writerow(["书籍", i % 2, f"第{i}条评论"])
        writer.writerow(["书籍", 1, "   "])
    sample = read_review_texts(path, 10, seed=1)
    assert len(sample) == len(set(sample)) == 10
    assert sample == read_review_texts(path, 10, seed=1)
    assert len(read_review_texts(path, 500)) == 50  # all non-empty rows when fewer than asked


def test_reviews_csv_without_a_text_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("cat,label\n书籍,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="review"):
        read_review_texts(path, 5)


# --- statistics and formats ---------------------------------------------------------------------
def test_percentile_interpolates_between_order_statistics() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile([7], 99) == 7
    assert percentile([0, 10], 99) == pytest.approx(9.9)
    values = [random.Random(1).random() for _ in range(101)]
    for q in (1, 50, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_spread_and_markdown_table() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}
    table = markdown_table(["a", "b"], [["x", None], ["y", 1234.5]]).splitlines()
    assert table[0] == "| a | b |"
    assert table[2] == "| x | — |"
    assert table[3] == "| y | 1,234.5 |"


def test_json_line_is_one_line_that_round_trips() -> None:
    payload = {"rows": [{"name": "x", "text": "多行\n文本"}], "value": 1.5}
    line = json_line(payload)
    assert "\n" not in line
    assert json.loads(line) == payload


def test_summary_of_a_row() -> None:
    runs = [
        {"texts": 100, "seconds": 2.0, "batch_ms": [1.0, 2.0, 3.0], "peak_rss_mb": 100.0},
        {"texts": 100, "seconds": 1.0, "batch_ms": [4.0], "peak_rss_mb": 120.0},
        {"texts": 100, "seconds": 4.0, "batch_ms": [5.0], "peak_rss_mb": 90.0},
    ]
    row = summarise(R.ORT_INT8, runs, naive_median=10.0, naive_best=20.0)
    assert row.keys() >= ROW_KEYS
    assert (row["reviews_per_s"], row["reviews_per_s_min"], row["reviews_per_s_max"]) == (50.0, 25.0, 100.0)
    assert row["ratio_vs_naive"] == 5.0
    assert row["ratio_vs_naive_best"] == 5.0  # best 100 against the naive row's best 20
    assert row["p50_ms"] == 3.0  # pooled over runs
    assert row["peak_rss_mb"] == 120.0
    assert summarise(R.ORT_INT8, runs, naive_median=None)["ratio_vs_naive"] is None


def test_agreement_per_head() -> None:
    reference = {"sentiment": [0, 1, 1, 0], "interest": [2, 2, 3, 1]}
    other = {"sentiment": [0, 1, 0, 0], "interest": [2, 2, 3, 1], "extra": [0, 0, 0, 0]}
    assert agreement(reference, other) == {"sentiment": 0.75, "interest": 1.0}


# --- batching and compute -------------------------------------------------------------------------
def test_length_sorted_batches_cover_every_text_once_and_pad_less() -> None:
    rng = random.Random(2)
    lengths = [rng.randint(1, 128) for _ in range(200)]
    batches = R.length_sorted_batches(lengths, 32)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert all(len(b) <= 32 for b in batches)
    input_order = [list(range(i, min(i + 32, 200))) for i in range(0, 200, 32)]
    assert sum(lengths) <= R.padded_tokens(lengths, batches) < R.padded_tokens(lengths, input_order)


def test_flops_of_a_layer_by_hand() -> None:
    shape = EncoderShape(layers=1, hidden=2, ffn=4)
    # 8·s·h² + 4·s·h·f + 4·s²·h at s=3: 96 + 96 + 72
    assert flops_per_sequence(shape, 3) == 264
    assert flops_per_sequence(EncoderShape(2, 2, 4), 3) == 528
    # Two reviews padded to 3 tokens cost twice one of 3 tokens; per review: one.
    assert flops_per_review_batched(shape, [1, 3], [[0, 1]]) == 264
    assert EncoderShape.from_config({"num_hidden_layers": 4, "hidden_size": 256, "intermediate_size": 1024}) == (
        EncoderShape(4, 256, 1024)
    )


# --- pipeline maths -------------------------------------------------------------------------------
def test_capacity_counts_from_the_first_commit_to_the_last() -> None:
    samples = [(0.0, 0), (5.0, 0), (6.0, 100), (8.0, 600), (10.0, 1100)]
    assert capacity_from_samples(samples, 1100) == pytest.approx(1000 / 4.0)
    assert capacity_from_samples(samples, 5000) is None  # never finished
    assert capacity_from_samples([(0.0, 0), (1.0, 0)], 10) is None


def test_latency_summary() -> None:
    summary = latency_summary([float(x) for x in range(1, 101)])
    assert summary["p50_ms"] == 50.5
    assert summary["p99_ms"] == pytest.approx(99.0, abs=0.1)
    assert summary["max_ms"] == 100.0
    assert latency_summary([])["p99_ms"] is None


def test_phase_marker_matches_simulator_event_ids() -> None:
    from shoppulse.devkit.simulator import Simulator

    ids = [e.event_id for e in Simulator(seed=123, users=20, start_ms=0).events(30)]
    assert ids and all(phase_marker(123) in i for i in ids)
    assert not any(phase_marker(12) in i for i in ids)


def test_pregenerated_events_are_restamped_at_send() -> None:
    from shoppulse.consumers.contracts import parse_event

    events = pregenerate(seed=5, users=30, n=40, kinds=("review", "click", "order"))
    assert len(events) == 40 and {kind for kind, *_ in events} <= {"review", "click", "order"}
    for kind, _, value, event_id in events:
        stamped = restamp(value, 1_795_000_000_123)
        event = parse_event(kind, stamped, now=1_795_000_000_500)  # type: ignore[arg-type]
        assert event.ts_ms == 1_795_000_000_123
        assert event.event_id == event_id
        assert json.loads(stamped) == {**json.loads(value), "ts": 1_795_000_000_123}


def test_loads_and_kinds_are_validated() -> None:
    assert parse_loads("0.5,0.8") == [0.5, 0.8]
    assert parse_kinds("review, click") == ("review", "click")
    for bad in ("", "0", "-1", "3"):
        with pytest.raises(ValueError):
            parse_loads(bad)
    with pytest.raises(ValueError):
        parse_kinds("review,refund")


# --- argument parsing ---------------------------------------------------------------------------
def test_bench_arguments() -> None:
    args = parse(["bench", "model", "--bundle", "b", "--data", "d.csv", "--n", "50"])
    assert (args.bundle, args.data, args.n, args.repeats, args.model) == (Path("b"), Path("d.csv"), 50, 5, None)
    assert args.func.__module__ == "shoppulse.devkit.bench.model"
    args = parse(["bench", "pipeline", "--events", "500", "--rate", "120"])
    assert (args.events, args.rate, args.kinds, args.loads, args.warmup) == (500, 120.0, "review", "0.5,0.8", 10.0)
    assert args.func.__module__ == "shoppulse.devkit.bench.pipeline"
    with pytest.raises(SystemExit):
        parse(["bench"])


def test_the_console_script_lists_bench() -> None:
    from shoppulse.consumers.cli import build_parser

    args = build_parser().parse_args(["bench", "model", "--n", "3"])
    assert args.n == 3


def _manifest_only(manifest: dict, precisions: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(manifest=manifest, precisions=list(precisions), name="b", version="0", path=Path("."))


def test_torch_rows_need_the_source_model(tmp_path: Path) -> None:
    model_dir, why = resolve_model_dir(None, _manifest_only({"source": {"path": str(tmp_path / "gone")}}))
    assert model_dir is None  # no FP32 graph to rebuild it from either
    assert "--model" in why and "gone" in why
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}", encoding="utf-8")
    found = resolve_model_dir(None, _manifest_only({"source": {"path": str(tmp_path / "hf")}}))
    assert found[0] == tmp_path / "hf"
    with pytest.raises(SystemExit, match=r"config\.json"):
        resolve_model_dir(tmp_path / "gone", _manifest_only({}))


# --- end to end on a tiny bundle ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.models.bundle_fixtures import export_tiny_bundle

    return export_tiny_bundle(tmp_path_factory.mktemp("bench"), "bert", multitask=True)


@pytest.mark.slow  # two fresh processes import torch
def test_bench_model_prints_the_json_line(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [R.PIPELINE_NAIVE, R.TORCH_SORTED, R.ORT_INT8, R.TOKENIZE]
    args = parse(
        [
            "bench",
            "model",
            "--bundle",
            str(tiny_bundle),
            "--n",
            "40",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--gemm-size",
            "0",
            "--rows",
            ",".join(rows),
        ]
    )
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert set(report) == {"rows", "argmax_agreement_int8", "setup"}
    assert [r["name"] for r in report["rows"]] == rows
    for row in report["rows"]:
        assert row.keys() >= ROW_KEYS
        assert row["reviews_per_s_min"] <= row["reviews_per_s"] <= row["reviews_per_s_max"]
        assert row["p50_ms"] <= row["p99_ms"]
        assert row["peak_rss_mb"] > 0
    naive = report["rows"][0]
    assert naive["ratio_vs_naive"] == 1.0
    int8 = report["rows"][2]
    assert int8["ratio_vs_naive"] == pytest.approx(int8["reviews_per_s"] / naive["reviews_per_s"], rel=0.01)
    assert 0.0 <= report["argmax_agreement_int8"] <= 1.0
    setup = report["setup"]
    assert setup["texts"]["n"] == 40
    assert set(setup["argmax_agreement_int8_by_head"]) == {"sentiment", "interest"}
    assert report["argmax_agreement_int8"] == min(setup["argmax_agreement_int8_by_head"].values())
    assert setup["compute"]["encoder"]["layers"] == 2  # read from the source model's config
    assert any(line.startswith("| 1. transformers pipeline") for line in lines)  # the markdown table


def _bench_moved_bundle(moved: Path, rows: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    args = parse(
        [
            *("bench", "model", "--bundle", str(moved), "--n", "20", "--repeats", "1", "--threads", "1"),
            *("--gemm-size", "0", "--rows", ",".join(rows)),
        ]
    )
    assert args.func(args) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def _moved(tiny_bundle: Path, to: Path, drop_config: bool = False) -> Path:
    from tests.unit.models.bundle_fixtures import copy_bundle

    moved = copy_bundle(tiny_bundle, to)
    manifest = json.loads((moved / "manifest.json").read_text(encoding="utf-8"))
    manifest["source"]["path"] = str(to.parent / "elsewhere" / "model")
    if drop_config:  # as bundles exported before the manifest recorded it
        del manifest["source"]["config"]
    (moved / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return moved


@pytest.mark.slow  # a fresh process imports torch
def test_bench_model_rebuilds_the_torch_model_when_the_source_is_gone(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPPULSE_CACHE_DIR", str(tmp_path / "cache"))
    moved = _moved(tiny_bundle, tmp_path / "moved")
    report, err = _bench_moved_bundle(moved, [R.TORCH_SORTED, R.ORT_FP32], capsys)
    assert [r["name"] for r in report["rows"]] == [R.TORCH_SORTED, R.ORT_FP32]
    assert "rebuilt from the bundle's FP32 graph" in report["setup"]["model_origin"]
    # the rebuilt torch model is the exported one: FP32 ONNX agrees with it on every text
    assert set(report["setup"]["argmax_agreement_fp32_by_head"].values()) == {1.0}
    assert "rebuilding the torch model" in err
    assert list((tmp_path / "cache" / "recovered").iterdir())  # cached for the next run


def test_bench_model_without_a_recoverable_source_runs_the_onnx_rows(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPPULSE_CACHE_DIR", str(tmp_path / "cache"))
    moved = _moved(tiny_bundle, tmp_path / "moved", drop_config=True)
    report, err = _bench_moved_bundle(moved, [R.PIPELINE_NAIVE, R.ORT_INT8], capsys)
    assert [r["name"] for r in report["rows"]] == [R.ORT_INT8]
    assert report["rows"][0]["ratio_vs_naive"] is None
    assert report["argmax_agreement_int8"] is None
    assert "--model" in err and "source.config" in err
    assert math.isfinite(report["rows"][0]["reviews_per_s"])
