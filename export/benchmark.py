"""Measure whether ONNX Runtime's transformer fusions pay off, to choose ``DEFAULT_FUSION``.

    python -m shoppulse.export.benchmark --layers 4 --hidden 312 --heads 12 --texts 1000

Builds a randomly initialised BERT of the given size (weights do not change speed), exports
it once, derives the fused graph and the INT8 variants of both, and times the serving path
(``Predictor``: clean, tokenize, length-sorted batches of 32) on generated review-length
texts. Runs are interleaved and the median of ``--repeats`` is printed, since the machine
is shared. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _random_bert(directory: Path, layers: int, hidden: int, heads: int, vocab_chars: int) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(0x4E00 + i) for i in range(vocab_chars)]
    BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}).save_pretrained(str(directory))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 4,
        max_position_embeddings=512,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(str(directory))
    return directory


def _bundle_dir(base: Path, name: str, model_file: Path, tokenizer_dir: Path, inputs: list[str]) -> Path:
    """A minimal bundle around one ONNX file, so timing goes through the real Predictor."""
    from shoppulse.models.serving.bundle import FORMAT, sha256_file

    out = base / name
    out.mkdir()
    shutil.copyfile(model_file, out / "model.onnx")
    shutil.copyfile(tokenizer_dir / "tokenizer.json", out / "tokenizer.json")
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": "bench",
        "task": "sentiment",
        "heads": {"sentiment": ["negative", "positive"]},
        "max_length": 128,
        "inputs": inputs,
        "outputs": ["logits_sentiment"],
        "models": {"fp32": "model.onnx"},
        "files": {n: sha256_file(out / n) for n in ("model.onnx", "tokenizer.json")},
    }
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=312)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--vocab-chars", type=int, default=6000)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: available_cpus())")
    args = parser.parse_args(argv)

    from shoppulse.export.graph import export_onnx, fuse, quantize_int8
    from shoppulse.export.parity import generate_texts
    from shoppulse.export.source import load_source
    from shoppulse.models.serving.bundle import load_bundle
    from shoppulse.models.serving.inference import Predictor

    with tempfile.TemporaryDirectory(prefix="shoppulse-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        model_dir = _random_bert(scratch / "model", args.layers, args.hidden, args.heads, args.vocab_chars)
        source = load_source(model_dir, task="sentiment")
        files = {"plain": scratch / "plain.onnx", "fused": scratch / "fused.onnx"}
        export_onnx(source, files["plain"])
        fusion = fuse(source, files["plain"], files["fused"])
        print(f"fusion: {fusion}")
        files["plain-int8"], files["fused-int8"] = scratch / "plain.int8.onnx", scratch / "fused.int8.onnx"
        quantize_int8(files["plain"], files["plain-int8"])
        quantize_int8(files["fused"], files["fused-int8"])

        texts = generate_texts(source.tokenizer, count=args.texts, seed=1)
        predictors = {
            name: Predictor(
                load_bundle(_bundle_dir(scratch, name, path, model_dir, source.input_names)),
                precision="fp32",
                intra_op_threads=args.threads,
            )
            for name, path in files.items()
        }
        for predictor in predictors.values():
            predictor.predict(texts[:64])  # warm-up
        timings: dict[str, list[float]] = {name: [] for name in predictors}
        for _ in range(args.repeats):
            for name, predictor in predictors.items():
                started = time.perf_counter()
                predictor.predict(texts, batch_size=32)
                timings[name].append(len(texts) / (time.perf_counter() - started))
        threads = next(iter(predictors.values())).intra_op_threads
        print(
            f"BERT {args.layers} layers / hidden {args.hidden}, {args.texts} generated texts, "
            f"max length 128, {threads} intra-op threads, median of {args.repeats} (texts/s):"
        )
        for name, values in timings.items():
            size = files[name].stat().st_size / 1e6
            print(
                f"  {name:<11} {statistics.median(values):8.1f}  "
                f"(min {min(values):.1f}, max {max(values):.1f}) {size:6.1f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
