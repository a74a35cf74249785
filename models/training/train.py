"""``shoppulse train``: the whole recipe of the default model, from CSVs to a verified bundle.

1. read ``os10_train.csv`` / ``os10_dev.csv`` from ``--data`` (hashes go into the manifest);
   hold out a slice of train (by a hash of the text) for calibration, never dev;
2. tokenizer: a WordPiece vocabulary trained on the train texts, or the ``--base-model``'s own;
3. masked-LM pretraining with jieba whole-word masking (skipped with ``--base-model``);
4. multi-task fine-tuning: sentiment + interest (fine category; the coarse tag comes from the
   taxonomy file at serving time);
5. temperature calibration per head on the held-out slice;
6. dev metrics with torch, then the bundle (INT8 ONNX + parity gate: the ``bundler`` the command
   passes in, ``shoppulse.export.build.build_bundle``), and the same metrics once more through
   the serving ``Predictor`` on the bundle.

Every phase checkpoints into ``--out``; ``--resume`` continues where a stopped run left off
(finished phases are skipped, a phase in progress restarts from its last checkpoint).
torch/transformers are imported inside functions so ``shoppulse --help`` works without them.
The command itself is registered by ``shoppulse.export.train_cli``: export imports models, so
models never imports export, and the bundle step is handed in.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.models.evaluation.data_io import (
    DEV_FILE,
    TRAIN_FILE,
    Review,
    read_reviews,
    read_unlabeled,
    sha256_of,
    stable_fraction,
)
from shoppulse.models.serving.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

SENTIMENT_LABELS = ["negative", "positive"]
DEFAULT_NAME = "shoppulse-os10-bert"


HELP = "train the default model (tokenizer, MLM pretraining, multi-task fine-tuning) and bundle it"

# Builds a bundle from a trained model folder (``shoppulse.export.build.build_bundle``'s signature).
Bundler = Callable[..., dict[str, Any]]


def fraction(value: str) -> float:
    """An argparse type: a share within [0, 1], refused when the command is read, not after pretraining."""
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not within [0, 1]")
    return share


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder with os10_train.csv and os10_dev.csv")
    parser.add_argument("--out", type=Path, required=True, help="work folder: checkpoints, model, bundle")
    parser.add_argument("--base-model", type=Path, help="a local Hugging Face model folder: skip pretraining")
    parser.add_argument("--epochs", type=float, default=3.0, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=float, default=3.0, help="MLM epochs (ignored with --base-model)")
    parser.add_argument("--batch-size", type=int, default=32, help="fine-tuning batch size")
    parser.add_argument("--pretrain-batch-size", type=int, default=64)
    parser.add_argument(
        "--lr", type=float, default=None, help="fine-tuning peak rate (default 2e-4, 3e-5 with --base-model)"
    )
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument(
        "--unlabeled",
        type=Path,
        help="your own unlabeled reviews (one per line, or a CSV's --unlabeled-column): masked-LM pretraining "
        "continues on them before fine-tuning (domain adaptation)",
    )
    parser.add_argument("--unlabeled-column", default="review", help="the text column of an --unlabeled CSV")
    parser.add_argument("--adapt-epochs", type=float, default=2.0, help="MLM epochs over the --unlabeled texts")
    parser.add_argument(
        "--adapt-lr", type=float, help="its learning rate (default: half --pretrain-lr; 5e-5 on a --base-model)"
    )
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--ffn", type=int, default=768)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument(
        "--ngram-buckets",
        type=int,
        default=None,
        help="hashed bigram buckets of the n-gram bag beside [CLS] (default 32768; 0: none; none with --base-model)",
    )
    parser.add_argument("--ngram-dim", type=int, default=64)
    parser.add_argument(
        "--ngram-mode",
        choices=("ensemble", "concat"),
        default="ensemble",
        help="ensemble: the bag has its own heads, logits added; concat: bag joins [CLS] before the heads",
    )
    parser.add_argument("--ngram-lr-scale", type=float, default=25.0, help="bag learning rate / --lr")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per review, [CLS]/[SEP] included")
    parser.add_argument("--holdout", type=float, default=0.05, help="share of train held out for calibration")
    parser.add_argument(
        "--clause-fraction",
        type=fraction,
        default=1.0,
        help="share of reviews (with no contrast word) adding one clause to fine-tuning (training/clause_sampling.py)",
    )
    parser.add_argument(
        "--contrast-fraction",
        type=fraction,
        default=1.0,
        help="share of reviews with one contrast word adding its two clauses, labelled by that word",
    )
    parser.add_argument(
        "--prefix-fraction",
        type=fraction,
        default=0.0,
        help="share of reviews adding their first 16-48 characters to fine-tuning (cut-off text)",
    )
    parser.add_argument("--taxonomy", type=Path, help="taxonomy JSON (default: the packaged one)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where training runs (auto: a CUDA GPU when torch sees one, else the CPU); export and scoring stay on CPU",
    )
    parser.add_argument("--limit", type=int, default=0, help="use only N evenly spaced train/dev rows (smoke runs)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    parser.add_argument("--bundle-out", type=Path, help="bundle folder (default: OUT/bundle)")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--version", default=None)
    parser.add_argument("--no-bundle", action="store_true", help="stop after training and dev metrics")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def check_inputs(args: argparse.Namespace) -> str | None:
    """What is wrong with the files the command names, in one line (None: nothing), before any work."""
    for name in (TRAIN_FILE, DEV_FILE):
        if not (args.data / name).is_file():
            return f"--data {args.data}: no {name} there (a folder with {TRAIN_FILE} and {DEV_FILE})"
        try:
            read_reviews(args.data / name)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return f"--data: {exc}"
    if args.base_model is not None and not (args.base_model / "config.json").is_file():
        return f"--base-model {args.base_model}: not a Hugging Face model folder (no config.json)"
    if args.device == "cuda":
        from shoppulse.models.training.loop import resolve_device

        try:
            resolve_device("cuda")
        except ValueError as exc:
            return str(exc)
    if args.unlabeled is not None:
        try:
            read_unlabeled(args.unlabeled, args.unlabeled_column)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return f"--unlabeled: {exc}"
    return None


def run(args: argparse.Namespace, bundler: Bundler | None = None) -> int:
    problem = check_inputs(args)
    if problem is not None:
        print(f"shoppulse train: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = train(args, bundler)
    print(json.dumps(report["metrics"], ensure_ascii=False))
    return 0


def _spread(rows: list[Review], limit: int) -> list[Review]:
    if len(rows) <= limit:
        return rows
    return [rows[i] for i in np.linspace(0, len(rows) - 1, limit).round().astype(int)]


def _split(rows: list[Review], holdout: float) -> tuple[list[Review], list[Review]]:
    fit = [r for r in rows if stable_fraction(r.review) >= holdout]
    held = [r for r in rows if stable_fraction(r.review) < holdout]
    return fit, held


def _targets(rows: list[Review], categories: list[str]) -> dict[str, np.ndarray]:
    index = {cat: i for i, cat in enumerate(categories)}
    unknown = sorted({r.cat for r in rows if r.cat not in index})
    if unknown:
        raise ValueError(f"categories {unknown} are not in the taxonomy ({', '.join(categories)})")
    return {
        "sentiment": np.asarray([int(r.label) for r in rows], dtype=np.int64),  # type: ignore[arg-type]
        "interest": np.asarray([index[r.cat] for r in rows], dtype=np.int64),  # type: ignore[index]
    }


def head_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    predicted = logits.argmax(axis=1)
    return {
        "accuracy": round(float((predicted == labels).mean()), 4),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4),
    }


def _prepare_tokenizer(args: argparse.Namespace, texts: list[str], tokenizer_dir: Path):  # type: ignore[no-untyped-def]
    from shoppulse.models.training.tokenizer import (
        copy_hf_tokenizer,
        load_tokenizer,
        save_hf_tokenizer,
        train_wordpiece,
    )

    if not (args.resume and (tokenizer_dir / "tokenizer.json").is_file()):
        if args.base_model:
            copy_hf_tokenizer(args.base_model, tokenizer_dir)
        else:
            save_hf_tokenizer(train_wordpiece(texts, args.vocab_size), tokenizer_dir, args.max_length)
    return load_tokenizer(tokenizer_dir)


def _word_ids(tokenizer, texts: list[str], max_length: int) -> tuple[list[np.ndarray], list[np.ndarray]]:  # type: ignore[no-untyped-def]
    from shoppulse.models.training.batching import encode_with_offsets
    from shoppulse.models.training.wwm import word_ids_for

    cleaned, encodings = encode_with_offsets(tokenizer, texts, max_length)
    ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
    words = [
        np.asarray(word_ids_for(text, e.offsets, e.special_tokens_mask), dtype=np.int64)
        for text, e in zip(cleaned, encodings, strict=True)
    ]
    return ids, words


def _pretrain(args: argparse.Namespace, tokenizer, texts: list[str], out: Path, seed: int) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    from shoppulse.models.training.pretrain import EncoderSize, PretrainConfig, new_bert_mlm

    size = EncoderSize(args.layers, args.hidden, args.heads, args.ffn)
    config = PretrainConfig(
        epochs=args.pretrain_epochs, batch_size=args.pretrain_batch_size, lr=args.pretrain_lr, seed=seed, bf16=False
    )

    def new_model():  # type: ignore[no-untyped-def]
        return new_bert_mlm(tokenizer.get_vocab_size(), size, args.max_length, pad_id=tokenizer.token_to_id("[PAD]"))

    return _mlm_phase(args, tokenizer, new_model, texts, config, out, "pretrain", {"size": size.as_dict()})


def _adapt(args: argparse.Namespace, tokenizer, encoder_dir: Path, texts: list[str], out: Path) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    """Continue masked-LM pretraining of ``encoder_dir`` on the shop's own texts (domain-adaptive
    pretraining): the encoder sees the shop's words and phrasing before it learns the labels."""
    from transformers import AutoModelForMaskedLM

    from shoppulse.models.training.pretrain import PretrainConfig

    lr = args.adapt_lr if args.adapt_lr is not None else (5e-5 if args.base_model else args.pretrain_lr / 2)
    config = PretrainConfig(
        epochs=args.adapt_epochs, batch_size=args.pretrain_batch_size, lr=lr, seed=args.seed + 1, bf16=False
    )

    def load_model():  # type: ignore[no-untyped-def]
        model = AutoModelForMaskedLM.from_pretrained(encoder_dir)
        if not (hasattr(model, "bert") and hasattr(model, "cls")):
            raise SystemExit(f"shoppulse train: --unlabeled needs a BERT-architecture model, {encoder_dir} is not one")
        return model

    source = {"texts": len(texts), "file": args.unlabeled.name, "sha256": sha256_of(args.unlabeled)}
    return _mlm_phase(args, tokenizer, load_model, texts, config, out, "adapt", source)


def _mlm_phase(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, tokenizer, make_model, texts: list[str], config, out: Path, phase: str, about: dict
) -> tuple[Path, dict]:
    """One masked-LM phase (whole-word masking) of ``make_model()`` on ``texts``, saved to ``OUT/<phase>ed``
    (``pretrained``, ``adapted``); with ``--resume``, a finished phase is not run again."""
    from shoppulse.models.training.pretrain import pretrain_mlm

    model_dir = out / f"{phase}ed"
    stats_file = model_dir / f"{phase}_stats.json"
    if args.resume and stats_file.is_file():
        log.info("%s: masked-LM phase already finished", model_dir)
        return model_dir, json.loads(stats_file.read_text(encoding="utf-8"))
    started = time.perf_counter()
    model = make_model()
    ids, words = _word_ids(tokenizer, texts, args.max_length)
    stats = pretrain_mlm(
        model,
        ids,
        words,
        config,
        out / "checkpoints" / f"{phase}.pt",
        mask_token_id=tokenizer.token_to_id("[MASK]"),
        first_normal_id=max(tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")) + 1,
        show_progress=not args.no_progress,
        device=args.device_resolved,
    )
    stats.update({**about, "config": asdict(config), "wall_s": round(time.perf_counter() - started, 1)})
    model.save_pretrained(model_dir)
    stats_file.write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return model_dir, stats


def _new_multitask(encoder_dir: Path, heads: dict[str, list[str]], ngram: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    from transformers import AutoConfig, AutoModel

    from shoppulse.models.training.multitask import MultiTaskClassifier

    config = AutoConfig.from_pretrained(encoder_dir)
    kwargs: dict[str, Any] = {}
    if config.model_type in {"bert", "roberta", "ernie", "xlm-roberta", "camembert"}:
        kwargs["add_pooling_layer"] = False
    encoder = AutoModel.from_pretrained(encoder_dir, **kwargs)
    return MultiTaskClassifier(encoder, heads, ngram=ngram)


def train(args: argparse.Namespace, bundler: Bundler | None = None) -> dict[str, Any]:
    """Run the recipe; returns the report also written to ``OUT/train_report.json``."""
    import torch

    from shoppulse.models.serving.inference import softmax
    from shoppulse.models.training.batching import encode_texts
    from shoppulse.models.training.clause_sampling import contrast_clauses, sample_clauses, sample_prefixes
    from shoppulse.models.training.finetune import (
        FinetuneConfig,
        expected_calibration_error,
        finetune_multitask,
        fit_temperature,
        predict_logits,
    )
    from shoppulse.models.training.loop import resolve_device

    started = time.perf_counter()
    args.device_resolved = str(resolve_device(args.device))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    train_path, dev_path = args.data / TRAIN_FILE, args.data / DEV_FILE
    train_rows, dev_rows = read_reviews(train_path), read_reviews(dev_path)
    if args.limit:  # an evenly spaced subset: the files are grouped by category
        train_rows, dev_rows = _spread(train_rows, args.limit), _spread(dev_rows, args.limit)
    fit_rows, held_rows = _split(train_rows, args.holdout)
    taxonomy = load_taxonomy(args.taxonomy)
    heads = {"sentiment": SENTIMENT_LABELS, "interest": taxonomy.categories}
    phases: dict[str, Any] = {}

    unlabeled = read_unlabeled(args.unlabeled, args.unlabeled_column) if args.unlabeled else []
    tokenizer = _prepare_tokenizer(args, [r.review for r in fit_rows], out / "tokenizer")
    pad_id = next((tokenizer.token_to_id(t) for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), 0)
    if args.base_model:
        encoder_dir = args.base_model
    else:
        encoder_dir, phases["pretrain"] = _pretrain(args, tokenizer, [r.review for r in fit_rows], out, args.seed)
    if unlabeled:
        encoder_dir, phases["adapt"] = _adapt(args, tokenizer, encoder_dir, unlabeled, out)

    model_dir = out / "model"
    finished = model_dir / "finetune_stats.json"
    if args.resume and finished.is_file():
        from shoppulse.models.training.multitask import load_multitask

        model = load_multitask(model_dir, attn_implementation=None)
        phases["finetune"] = json.loads(finished.read_text(encoding="utf-8"))
    else:
        phase_start = time.perf_counter()
        buckets = args.ngram_buckets if args.ngram_buckets is not None else (0 if args.base_model else 32768)
        ngram = (
            {
                "vocab_size": tokenizer.get_vocab_size(),
                "buckets": buckets,
                "dim": args.ngram_dim,
                "mode": args.ngram_mode,
            }
            if buckets
            else None
        )
        model = _new_multitask(encoder_dir, heads, ngram)
        lr = args.lr if args.lr is not None else (3e-5 if args.base_model else 2e-4)
        config = FinetuneConfig(
            epochs=args.epochs, batch_size=args.batch_size, lr=lr, seed=args.seed, ngram_lr_scale=args.ngram_lr_scale
        )
        clauses = sample_clauses(fit_rows, args.clause_fraction, args.seed)
        contrasts = contrast_clauses(fit_rows, args.contrast_fraction, args.seed)
        prefixes = sample_prefixes(fit_rows, args.prefix_fraction, args.seed)
        tune_rows = fit_rows + clauses + contrasts + prefixes
        stats = finetune_multitask(
            model,
            encode_texts(tokenizer, [r.review for r in tune_rows], args.max_length),
            _targets(tune_rows, taxonomy.categories),
            config,
            out / "checkpoints" / "finetune.pt",
            pad_id,
            show_progress=not args.no_progress,
            device=args.device_resolved,
        )
        stats.update({"config": asdict(config), "wall_s": round(time.perf_counter() - phase_start, 1)})
        stats["clauses"] = {"fraction": args.clause_fraction, "rows": len(clauses)}
        stats["contrasts"] = {"fraction": args.contrast_fraction, "rows": len(contrasts)}
        stats["prefixes"] = {"fraction": args.prefix_fraction, "rows": len(prefixes)}
        model.save(model_dir)
        _copy_tokenizer_files(out / "tokenizer", model_dir)
        finished.write_text(json.dumps(stats, indent=2), encoding="utf-8")
        phases["finetune"] = stats

    # Calibration on the held-out slice of train; dev stays untouched until scoring.
    held_targets = _targets(held_rows, taxonomy.categories)
    device = args.device_resolved
    held_ids = encode_texts(tokenizer, [r.review for r in held_rows], args.max_length)
    held_logits = predict_logits(model, held_ids, pad_id, device=device)
    calibration: dict[str, Any] = {"fitted_on": f"{len(held_rows)} held-out train reviews (hash split)"}
    temperature: dict[str, float] = {}
    for name, logits in zip(model.head_names, held_logits, strict=True):
        temperature[name] = fit_temperature(logits, held_targets[name])
        calibration[name] = {
            "temperature": temperature[name],
            "ece_before": expected_calibration_error(softmax(logits), held_targets[name]),
            "ece_after": expected_calibration_error(softmax(logits, temperature[name]), held_targets[name]),
        }

    dev_targets = _targets(dev_rows, taxonomy.categories)
    dev_ids = encode_texts(tokenizer, [r.review for r in dev_rows], args.max_length)
    dev_logits = predict_logits(model, dev_ids, pad_id, device=device)
    torch_dev = {
        name: head_scores(logits, dev_targets[name]) for name, logits in zip(model.head_names, dev_logits, strict=True)
    }
    train_wall = round(time.perf_counter() - started, 1)
    metrics: dict[str, Any] = {"dev_torch": torch_dev, "dev_file": str(dev_path.name), "dev_n": len(dev_rows)}
    training = {
        # --resume is left out: a resumed run ends where the uninterrupted one would (training/test_resume.py)
        "command": reproduce_command(getattr(args, "argv", None) or _cli_args()),
        "resumed": bool(args.resume),
        "data": {
            TRAIN_FILE: {"sha256": sha256_of(train_path), "rows": len(train_rows)},
            DEV_FILE: {"sha256": sha256_of(dev_path), "rows": len(dev_rows)},
            "credit": "online_shopping_10_cats, from the public ChineseNlpCorpus collection",
        },
        "seed": args.seed,
        "limit": args.limit or None,
        "base_model": str(args.base_model) if args.base_model else None,
        # which encoder fine-tuning started from: the base model, our MLM pretraining, or either adapted
        "encoder": "adapted" if "adapt" in phases else "base_model" if args.base_model else "pretrained",
        "threads": args.threads,
        "device": device,
        "max_length": args.max_length,
        "phases": phases,
        "train_wall_s": train_wall,
    }
    report: dict[str, Any] = {"metrics": metrics, "training": training, "calibration": calibration}
    if not args.no_bundle:
        if bundler is None:
            raise ValueError("train: a bundle was asked for but no bundler given (shoppulse.export.build.build_bundle)")
        report["manifest"] = _bundle(args, model_dir, dev_rows, dev_targets, report, started, bundler)
        metrics.update(report["manifest"].get("metrics", {}))
        # Aspect clauses get their own threshold, fitted on the tuning set (models/serving/clauses.py).
        from shoppulse.models.training.clause_threshold import fit_clause_threshold

        bundle_dir = args.bundle_out or out / "bundle"
        report["clause"] = fit_clause_threshold(bundle_dir, write=True)
    training["total_wall_s"] = round(time.perf_counter() - started, 1)
    (out / "train_report.json").write_text(
        json.dumps({k: v for k, v in report.items() if k != "manifest"}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    return report


def _bundle(
    args: argparse.Namespace,
    model_dir: Path,
    dev_rows: list[Review],
    dev_targets: dict[str, np.ndarray],
    report: dict,
    started: float,
    build_bundle: Bundler,
) -> dict[str, Any]:
    """Export, then score dev through the serving ``Predictor`` and store those numbers in the manifest."""
    import json as _json

    from shoppulse.models.evaluation.evaluate import score_predictor
    from shoppulse.models.serving.bundle import MANIFEST, load_bundle
    from shoppulse.models.serving.inference import Predictor

    bundle_dir = args.bundle_out or args.out / "bundle"
    rng = np.random.default_rng(args.seed)
    sample = [dev_rows[i].review for i in rng.choice(len(dev_rows), size=min(500, len(dev_rows)), replace=False)]
    manifest = build_bundle(
        model_dir,
        bundle_dir,
        task="multi",
        quantize="int8",
        max_length=args.max_length,
        parity_texts=sample,
        parity_origin=f"{len(sample)} dev reviews",
        name=args.name,
        version=args.version,
        metrics=report["metrics"],
        training=report["training"],
        calibration=report["calibration"],
        overwrite=True,
    )
    predictor = Predictor(load_bundle(bundle_dir), precision="int8", intra_op_threads=args.threads)
    texts = [r.review for r in dev_rows]
    serving = {head: score_predictor(predictor, texts, dev_targets[head], head) for head in ("sentiment", "interest")}
    manifest["metrics"]["dev_int8"] = serving
    manifest["training"]["total_wall_s"] = round(time.perf_counter() - started, 1)
    # The manifest's file hashes do not cover manifest.json itself, so adding the served numbers is safe.
    (bundle_dir / MANIFEST).write_text(_json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    load_bundle(bundle_dir, verify=True)
    return manifest


def _copy_tokenizer_files(src: Path, dst: Path) -> None:
    import shutil

    for path in src.iterdir():
        if path.is_file():
            shutil.copyfile(path, dst / path.name)


def reproduce_command(argv: list[str]) -> str:
    """The training command for a manifest: no machine's paths in it (``--data /home/me/x`` becomes
    ``--data <DATA>``), and without ``--resume``, since a resumed run ends where the uninterrupted
    one would (tests/unit/models/training/test_resume.py)."""
    shown: list[str] = []
    option = "PATH"
    for arg in argv:
        if arg == "--resume":
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq and Path(value).is_absolute():
                arg = f"{name}=<{name.lstrip('-').upper().replace('-', '_')}>"
            option = name.lstrip("-").upper().replace("-", "_")
        elif Path(arg).is_absolute():
            arg = f"<{option}>"
        shown.append(arg)
    return "shoppulse train " + " ".join(a if "<" in a else shlex.quote(a) for a in shown)


def _cli_args() -> list[str]:
    """The arguments after ``train`` as given (``shoppulse train ...`` or ``python -m shoppulse.export.train_cli``)."""
    argv = sys.argv[1:]
    return argv[argv.index("train") + 1 :] if "train" in argv else argv
