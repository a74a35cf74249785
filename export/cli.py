"""``shoppulse export``: a Hugging Face model folder → a verified bundle directory.

Only argparse at import time: ``shoppulse --help`` must not need torch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shoppulse.models.serving.bundle import TASKS

EPILOG = """\
examples:
  shoppulse export --model ./my-bert-base-chinese-finetuned --out ./bundles/mine \\
      --task sentiment --data reviews.csv
  shoppulse export --model ./multitask-model --out ./bundles/default --quantize int8 --max-length 128
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to a verified ONNX bundle (needs the export extra)",
        description=(
            "Export a Hugging Face model folder (a shoppulse multi-task model or any "
            "*ForSequenceClassification) to ONNX with dynamic batch/sequence axes, optionally "
            "quantise to INT8, check parity against torch, and write a bundle only if it passes."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, metavar="HF_DIR", help="model folder (config.json, weights, tokenizer)"
    )
    parser.add_argument("--out", required=True, metavar="BUNDLE_DIR", help="bundle directory to create")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="multi (default for a shoppulse multi-task folder) | sentiment (default otherwise) | interest",
    )
    parser.add_argument("--quantize", choices=("int8", "none"), default="int8", help="add model.int8.onnx (default)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per text incl. [CLS]/[SEP] (default 128)")
    parser.add_argument("--labels", default=None, help="comma-separated label names for a plain classifier")
    parser.add_argument(
        "--data", default=None, metavar="FILE.csv", help="CSV whose texts are used for the parity check"
    )
    parser.add_argument("--text-column", default="review", help="CSV column with the texts (default review)")
    parser.add_argument("--parity-samples", type=int, default=200, help="texts to check parity on (default 200)")
    parser.add_argument("--fp32-max-diff", type=float, default=1e-4, help="FP32 gate: max |logit diff| (1e-4)")
    parser.add_argument(
        "--int8-min-agreement", type=float, default=0.995, help="INT8 gate: min argmax agreement (0.995)"
    )
    parser.add_argument("--int8-max-prob-diff", type=float, default=None, help="INT8 gate: max |prob diff| (off)")
    parser.add_argument("--max-unk-rate", type=float, default=0.5, help="refuse when more [UNK] tokens than this (0.5)")
    parser.add_argument(
        "--fusion",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply ONNX Runtime transformer fusions to the saved graph (default: off, measured slower)",
    )
    parser.add_argument("--name", default=None, help="bundle name (default: the model folder's name)")
    parser.add_argument("--version", dest="bundle_version", default=None, help="bundle version (default: hash)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling/generating parity texts")
    parser.set_defaults(func=run)


def _quiet_transformers() -> None:
    """No weight-loading progress bars between the lines of the report."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def run(args: argparse.Namespace) -> int:
    from shoppulse.export.build import DEFAULT_FUSION, build_bundle
    from shoppulse.export.parity import ParityError, ParityThresholds, format_report, read_texts
    from shoppulse.export.source import ExportError

    _quiet_transformers()
    thresholds = ParityThresholds(
        fp32_max_abs_diff=args.fp32_max_diff,
        int8_min_argmax_agreement=args.int8_min_agreement,
        int8_max_prob_diff=args.int8_max_prob_diff,
        max_unk_rate=args.max_unk_rate,
    )
    try:
        texts = None
        origin = None
        if args.data:
            texts = read_texts(args.data, column=args.text_column, limit=args.parity_samples, seed=args.seed)
            origin = f"{args.data}:{args.text_column}"
        manifest = build_bundle(
            args.model,
            args.out,
            task=args.task,
            quantize=args.quantize,
            opset=args.opset,
            max_length=args.max_length,
            parity_texts=texts,
            parity_origin=origin,
            parity_samples=args.parity_samples,
            name=args.name,
            version=args.bundle_version,
            thresholds=thresholds,
            fusion=DEFAULT_FUSION if args.fusion is None else args.fusion,
            labels=[x.strip() for x in args.labels.split(",")] if args.labels else None,
            overwrite=args.overwrite,
            seed=args.seed,
        )
    except ParityError as exc:
        print(format_report(exc.report))
        print(f"no bundle written: {exc}", file=sys.stderr)
        return 1
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
    print(format_report(manifest["parity"]))
    for warning in manifest["export"]["warnings"]:
        print(f"warning: {warning}")
    heads = ", ".join(f"{h} ({len(labels)} labels)" for h, labels in manifest["heads"].items())
    print(
        f"bundle {manifest['name']} {manifest['version']} written to {args.out}: task {manifest['task']}, "
        f"heads {heads}, models {', '.join(manifest['models'].values())}"
    )
    if "interest" not in manifest["heads"]:
        print(
            "serving: `shoppulse run enrich --bundle` keeps the packaged default's interest tagging beside it "
            "(SHOPPULSE_ENRICH__DEFAULT_INTEREST=false for none, SHOPPULSE_ENRICH__INTEREST_BUNDLE_DIR for another)"
        )
    return 0
