"""``shoppulse bench model``: five ways to run the same model on the same texts, in one run.

Rows are interleaved (1, 2, 3, 4, 5, tokenize, 1, 2, ...) over ``--repeats`` rounds so that
a neighbour's burst of CPU use on this shared machine hits every row alike; each
measurement runs in a fresh spawned process (peak RSS per row, no shared caches). The
report gives the median and min–max reviews/s over the rounds, the ratio to row 1,
per-batch latency percentiles pooled over the rounds, and the argmax agreement of the
INT8 model with torch. Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from shoppulse.devkit.bench import rows as R
from shoppulse.devkit.bench.compute import EncoderShape, flops_per_review_batched, flops_per_sequence
from shoppulse.devkit.bench.stats import json_line, markdown_table, percentile, rounded, spread
from shoppulse.devkit.bench.texts import bundle_alphabet, generate_reviews, read_review_texts

REPO_ROOT = Path(__file__).resolve().parents[2]
GEMM_SIZE = 2048


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from shoppulse.consumers.settings import DEFAULT_BUNDLE

    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="model bundle (default: the packaged one)")
    parser.add_argument(
        "--model",
        type=Path,
        help="the Hugging Face model folder for the torch rows (default: the bundle's source.path)",
    )
    parser.add_argument(
        "--data", type=Path, help="reviews CSV (column review); default: generated texts of real lengths"
    )
    parser.add_argument("--n", type=int, default=1000, help="texts per measurement (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="torch/ORT intra-op threads (default: usable CPUs)")
    parser.add_argument("--seed", type=int, default=0, help="sampling / generation seed")
    parser.add_argument(
        "--gemm-size", type=int, default=GEMM_SIZE, help="matrix size for the GEMM ceiling (0: skip that measurement)"
    )
    parser.add_argument(
        "--rows", default=",".join(R.ALL_ROWS), help=f"comma-separated subset of {','.join(R.ALL_ROWS)}"
    )


def resolve_model_dir(explicit: Path | None, bundle: Any) -> tuple[Path | None, str]:
    """The HF model folder for the torch rows, and a sentence saying where it came from (or why not).

    In order: ``--model``; the folder the bundle was exported from (``source.path``), when it is
    on this machine; else the torch model rebuilt from the bundle's own FP32 graph
    (``models/recover.py``, parity-checked, cached), so a clean checkout can run every row.
    """
    if explicit is not None:
        if not (explicit / "config.json").is_file():
            raise SystemExit(f"--model {explicit}: not a Hugging Face model folder (no config.json)")
        return explicit, f"--model {explicit}"
    recorded = (bundle.manifest.get("source") or {}).get("path")
    for candidate in (Path(recorded), REPO_ROOT / recorded) if recorded else ():
        if (candidate / "config.json").is_file():
            return candidate, f"source.path of the bundle ({candidate})"
    return _recovered_model_dir(bundle, recorded)


def _recovered_model_dir(bundle: Any, recorded: str | None) -> tuple[Path | None, str]:
    from shoppulse.devkit.broker.kafka import cache_root
    from shoppulse.models.serving.bundle import sha256_file
    from shoppulse.models.training.recover import RECOVERY_NOTE, RecoveryError, recover_model

    if recorded:
        where = f"the bundle was exported from {recorded}, which is not on this machine"
    else:
        where = "the bundle's manifest records no source.path"

    lacking = [name for name in ("torch", "transformers", "onnx") if importlib.util.find_spec(name) is None]
    if lacking:
        return None, (
            f"{where}; torch rows (1-3) skipped: {', '.join(lacking)} not installed "
            "(pip install '.[export]'), or pass --model HF_DIR"
        )
    if "fp32" not in bundle.precisions:
        return None, f"{where}, and it has no FP32 graph to rebuild it from; torch rows (1-3) skipped: pass --model"
    out = cache_root() / "recovered" / f"{bundle.name}-{bundle.version}-{sha256_file(bundle.model_path('fp32'))[:12]}"
    if not (out / RECOVERY_NOTE).is_file():
        print(f"[bench] rebuilding the torch model from the bundle's FP32 graph into {out} ...", file=sys.stderr)
        try:
            # In a spawned process: torch in this one would raise every row's peak RSS (Linux
            # children start from their parent's high-water mark).
            with _spawn_pool() as pool:
                pool.submit(recover_model, str(bundle.path), str(out)).result()
        except (RecoveryError, OSError) as exc:
            why = f"cannot rebuild it from the bundle ({exc})"
            return None, f"{where}; torch rows (1-3) skipped: {why}; pass --model HF_DIR"
    note = json.loads((out / RECOVERY_NOTE).read_text(encoding="utf-8"))
    return out, (
        f"{where}: torch rows run the model rebuilt from the bundle's FP32 graph ({out}; same weights, "
        f"max |logit difference| vs model.onnx {note['max_abs_logit_diff_vs_fp32_onnx']:.1e})"
    )


def machine() -> dict[str, Any]:
    from shoppulse.models.serving.cpu import available_cpus

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "usable_cpus": available_cpus(), "gpu": None, "python": platform.python_version()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("onnxruntime", "tokenizers", "torch", "transformers", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _token_lengths(bundle: Any, texts: list[str]) -> list[int]:
    from tokenizers import Tokenizer

    from shoppulse.models.serving.text import clean_text

    tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=bundle.max_length)
    return [len(e.ids) for e in tokenizer.encode_batch_fast([clean_text(t) for t in texts])]


def agreement(reference: dict[str, list[int]], other: dict[str, list[int]]) -> dict[str, float]:
    """Share of texts whose argmax is the same, per head both models have."""
    return {
        head: sum(a == b for a, b in zip(reference[head], other[head], strict=True)) / len(reference[head])
        for head in reference
        if head in other and reference[head]
    }


def summarise(
    row: str, results: list[dict[str, Any]], naive_median: float | None, naive_best: float | None = None
) -> dict[str, Any]:
    rates = [r["texts"] / r["seconds"] for r in results]
    batch_ms = [ms for r in results for ms in r["batch_ms"]]
    middle = spread(rates)
    loads = [r["load_1min"] for r in results if "load_1min" in r]
    return {
        "name": row,
        "label": R.LABELS[row],
        "reviews_per_s": rounded(middle["median"]),
        "reviews_per_s_min": rounded(middle["min"]),
        "reviews_per_s_max": rounded(middle["max"]),
        "ratio_vs_naive": rounded(middle["median"] / naive_median, 2) if naive_median else None,
        # Best run against best run: on a shared machine the least-disturbed runs say most about the hardware.
        "ratio_vs_naive_best": rounded(middle["max"] / naive_best, 2) if naive_best else None,
        "p50_ms": rounded(percentile(batch_ms, 50), 2),
        "p99_ms": rounded(percentile(batch_ms, 99), 2),
        "peak_rss_mb": rounded(max(r["peak_rss_mb"] for r in results)),
        "runs": len(results),
        "load_1min_range": [round(min(loads), 2), round(max(loads), 2)] if loads else None,
    }


def _spawn_pool() -> ProcessPoolExecutor:
    # One process per task: a fresh interpreter for every measurement.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1)


def run(args: argparse.Namespace) -> int:
    from shoppulse.models.serving.bundle import BundleError, load_bundle
    from shoppulse.models.serving.cpu import available_cpus
    from shoppulse.models.serving.inference import SLICE

    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in R.ALL_ROWS]
    if unknown or args.n < 1 or args.repeats < 1:
        print(
            f"bad arguments: unknown rows {unknown}" if unknown else "--n and --repeats must be >= 1", file=sys.stderr
        )
        return 2
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        print(f"cannot load the bundle: {exc}", file=sys.stderr)
        return 2
    model_dir, model_origin = resolve_model_dir(args.model, bundle)
    notes: list[str] = []
    if model_dir is None:
        skipped = [r for r in wanted if r in R.TORCH_ROWS]
        wanted = [r for r in wanted if r not in R.TORCH_ROWS]
        if skipped:
            notes.append(model_origin)
            print(f"note: {model_origin}", file=sys.stderr)
    if R.ORT_FP32 in wanted and "fp32" not in bundle.precisions:
        wanted.remove(R.ORT_FP32)
        notes.append("the bundle has no FP32 model: row 4 skipped")
    threads = args.threads or available_cpus()

    if args.data:
        texts, text_origin = read_review_texts(args.data, args.n, args.seed), f"{args.data.name}, seeded sample"
    else:
        texts = generate_reviews(bundle_alphabet(bundle.tokenizer_path), args.n, args.seed)
        text_origin = "generated: log-normal lengths (median 36, p90 132 chars) from the bundle's vocabulary"
    lengths = _token_lengths(bundle, texts)
    sorted_batches = R.length_sorted_batches(lengths, 32)
    input_order_batches = [list(range(i, min(i + 32, len(texts)))) for i in range(0, len(texts), 32)]

    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {row: [] for row in wanted}
    with tempfile.TemporaryDirectory(prefix="shoppulse-bench-") as scratch:
        texts_file = Path(scratch) / "texts.json"
        texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        with _spawn_pool() as pool:
            gemm = pool.submit(R.gemm_rates, args.gemm_size, 3, threads).result() if args.gemm_size > 0 else {}
            for round_index in range(args.repeats):
                for row in wanted:
                    task = R.RowTask(
                        row, str(bundle.path), str(texts_file), threads, 32, str(model_dir) if model_dir else None
                    )
                    started = time.perf_counter()
                    load_at_start = os.getloadavg()[0]
                    result = pool.submit(R.measure, task).result()
                    result["load_1min"] = load_at_start
                    results[row].append(result)
                    print(
                        f"  round {round_index + 1}/{args.repeats} {row}: {result['texts'] / result['seconds']:.1f} "
                        f"reviews/s ({time.perf_counter() - started:.1f}s with start-up)",
                        file=sys.stderr,
                        flush=True,
                    )
    load_after = os.getloadavg()

    naive = results.get(R.PIPELINE_NAIVE)
    naive_spread = spread([r["texts"] / r["seconds"] for r in naive]) if naive else None
    naive_median = naive_spread["median"] if naive_spread else None
    naive_best = naive_spread["max"] if naive_spread else None
    table_rows = [summarise(row, results[row], naive_median, naive_best) for row in wanted]
    agreement_by_head: dict[str, float] = {}
    fp32_agreement: dict[str, float] = {}
    if results.get(R.TORCH_SORTED) and results.get(R.ORT_INT8):
        agreement_by_head = agreement(results[R.TORCH_SORTED][0]["argmax"], results[R.ORT_INT8][0]["argmax"])
    if results.get(R.TORCH_SORTED) and results.get(R.ORT_FP32):
        fp32_agreement = agreement(results[R.TORCH_SORTED][0]["argmax"], results[R.ORT_FP32][0]["argmax"])

    compute = compute_ceiling(model_dir, lengths, sorted_batches, gemm, table_rows, args.gemm_size)
    setup = {
        "bundle": {
            "path": str(bundle.path),
            "name": bundle.name,
            "version": bundle.version,
            "heads": {h: len(v) for h, v in bundle.heads.items()},
            "max_length": bundle.max_length,
            "fusion": (bundle.manifest.get("export") or {}).get("fusion"),
            "quantization": (bundle.manifest.get("export") or {}).get("quantization"),
        },
        "model_dir": str(model_dir) if model_dir else None,
        "model_origin": model_origin,
        "texts": {
            "n": len(texts),
            "origin": text_origin,
            "seed": args.seed,
            "token_length": {
                "median": percentile(lengths, 50),
                "mean": round(sum(lengths) / len(lengths), 1),
                "p90": percentile(lengths, 90),
                "p99": percentile(lengths, 99),
            },
            "padded_tokens_sorted_b32": R.padded_tokens(lengths, sorted_batches),
            "padded_tokens_input_order_b32": R.padded_tokens(lengths, input_order_batches),
            "real_tokens": sum(lengths),
        },
        "repeats": args.repeats,
        "order": "interleaved: " + ", ".join(wanted) + " per round",
        "threads": threads,
        "batch_size": 32,
        "warmup": f"{R.WARMUP_TEXTS} texts per process, untimed",
        "timing": (
            "reviews/s = texts / wall time of one pass (clean, tokenize, batch, run); "
            "latency per batch = one model call (one text in row 1; 32 texts incl. tokenization in row 2; "
            "32 pre-tokenized texts in rows 3-5, in rows 4-5 from a session taking the first slice to the "
            "last slice back; 32 texts in the tokenize row), pooled over rounds"
        ),
        "peak_rss": "ru_maxrss of a fresh spawned process that ran only that row (imports, model, texts)",
        "torch_attention": "transformers default (sdpa), torch eager mode",
        "onnx_runtime_layout": (
            f"as served: {threads} single-threaded sessions side by side, each sorted batch of 32 "
            f"cut into slices of at most {SLICE} (models/inference.py), the next batch submitted before the "
            f"previous one is collected (as the enrich stage does); torch rows: {threads} intra-op threads"
        ),
        "argmax_agreement_int8_by_head": {h: round(v, 4) for h, v in agreement_by_head.items()},
        "argmax_agreement_fp32_by_head": {h: round(v, 4) for h, v in fp32_agreement.items()},
        "compute": compute,
        "machine": machine(),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "versions": versions(),
        "notes": notes,
    }
    print_table(table_rows)
    print()
    print(f"argmax agreement INT8 vs torch: {agreement_by_head or 'n/a (no torch row)'}")
    if compute.get("ceiling_reviews_per_s_int8"):
        print(
            f"compute: {compute['gflop_per_review_median']:.3f} GFLOP/review at the median length "
            f"({compute['median_tokens']} tokens), {compute['gflop_per_review_as_run']:.3f} as run (padded); "
            f"INT8 GEMM {compute['gemm']['int8_torch_gops']:.0f} GOPS → ceiling "
            f"{compute['ceiling_reviews_per_s_int8']:.0f} reviews/s; row 5 reaches "
            f"{compute['int8_share_of_ceiling']:.0%} of it"
        )
    payload = {
        "rows": table_rows,
        "argmax_agreement_int8": round(min(agreement_by_head.values()), 4) if agreement_by_head else None,
        "setup": setup,
    }
    print(json_line(payload))
    return 0


def compute_ceiling(
    model_dir: Path | None,
    lengths: list[int],
    batches: list[list[int]],
    gemm: dict[str, float | None],
    table_rows: list[dict[str, Any]],
    gemm_size: int,
) -> dict[str, Any]:
    """FLOPs per review (median length, and as padded in sorted batches) against the measured GEMM rates."""
    out: dict[str, Any] = {"gemm": {k: rounded(v) for k, v in gemm.items()}, "gemm_size": gemm_size}
    if model_dir is None:
        out["note"] = "needs the HF model's config.json (--model) for the encoder shape"
        return out
    shape = EncoderShape.from_model_dir(model_dir)
    median_tokens = round(percentile(lengths, 50))
    at_median = flops_per_sequence(shape, median_tokens)
    as_run = flops_per_review_batched(shape, lengths, batches)
    out.update(
        {
            "encoder": {"layers": shape.layers, "hidden": shape.hidden, "ffn": shape.ffn},
            "median_tokens": median_tokens,
            "gflop_per_review_median": round(at_median / 1e9, 4),
            "gflop_per_review_as_run": round(as_run / 1e9, 4),
        }
    )
    int8_rate = gemm.get("int8_torch_gops")
    fp32_rate = gemm.get("fp32_numpy_gflops")
    if fp32_rate:
        out["ceiling_reviews_per_s_fp32"] = round(fp32_rate * 1e9 / as_run, 1)
    if int8_rate:
        out["ceiling_reviews_per_s_int8"] = round(int8_rate * 1e9 / as_run, 1)
        out["ceiling_reviews_per_s_int8_at_median"] = round(int8_rate * 1e9 / at_median, 1)
        row5 = next((r for r in table_rows if r["name"] == R.ORT_INT8), None)
        if row5 and row5["reviews_per_s"]:
            out["int8_share_of_ceiling"] = round(row5["reviews_per_s"] / out["ceiling_reviews_per_s_int8"], 3)
    row4 = next((r for r in table_rows if r["name"] == R.ORT_FP32), None)
    if fp32_rate and row4 and row4["reviews_per_s"]:
        out["fp32_share_of_ceiling"] = round(row4["reviews_per_s"] / out["ceiling_reviews_per_s_fp32"], 3)
    return out


def print_table(table_rows: list[dict[str, Any]]) -> None:
    headers = [
        "row",
        "reviews/s (median)",
        "min–max",
        "× row 1",
        "× row 1 (best runs)",
        "p50 ms/batch",
        "p99 ms/batch",
        "peak RSS MB",
    ]
    body = [
        [
            r["label"],
            r["reviews_per_s"],
            f"{r['reviews_per_s_min']:.1f}–{r['reviews_per_s_max']:.1f}",
            r["ratio_vs_naive"],
            r["ratio_vs_naive_best"],
            r["p50_ms"],
            r["p99_ms"],
            r["peak_rss_mb"],
        ]
        for r in table_rows
    ]
    print(markdown_table(headers, body))
