"""``build_bundle``: a Hugging Face model folder → a verified shoppulse bundle directory.

Order of work, and why:
1. load the model (eager attention) and its fast tokenizer;
2. export to ONNX in a scratch dir, optionally fuse, optionally quantise;
3. assemble the bundle in a staging dir next to the destination, with a provisional
   manifest, and load it through ``models.serving.bundle.load_bundle`` and ``Predictor`` —
   the exact serving path;
4. parity against torch; on failure the staging dir is deleted and ``ParityError``
   carries the report: a bundle that fails parity never appears at ``out_dir``;
5. final manifest (parity report included), verify once more, move into place.

torch/transformers are imported inside functions: ``shoppulse --help`` must work without them.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from shoppulse.export.graph import DEFAULT_OPSET, export_onnx, fuse, operator_counts, quantize_int8
from shoppulse.export.parity import ParityError, ParityThresholds, check_parity, generate_texts
from shoppulse.export.source import ExportError, ExportSource, load_source
from shoppulse.models.serving.bundle import FORMAT, MANIFEST, TOKENIZER_FILE, load_bundle, output_name, sha256_file
from shoppulse.models.serving.inference import Predictor

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
QUANTIZE_CHOICES = ("int8", "none")
# Pre-fusing measured ~10% slower than letting ORT_ENABLE_ALL fuse the plain graph at load time
# (4-layer/312 BERT: FP32 57 vs 51, INT8 100 vs 90 texts/s; 2-layer/128 likewise): off by default.
DEFAULT_FUSION = False
_VERSIONED_PACKAGES = ("shoppulse", "torch", "transformers", "onnx", "onnxruntime", "tokenizers", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _thresholds(value: ParityThresholds | dict[str, Any] | None) -> ParityThresholds:
    if value is None:
        return ParityThresholds()
    if isinstance(value, ParityThresholds):
        return value
    return ParityThresholds(**value)


def _heads_file(model_dir: Path) -> dict[str, Any]:
    """The multi-task folder's heads description (labels, pooling, n-gram bag settings)."""
    from shoppulse.models.training.multitask import HEADS_FILE

    return dict(json.loads((model_dir / HEADS_FILE).read_text(encoding="utf-8")))


def _portable_path(model_dir: Path) -> str:
    """The source folder as the manifest records it: relative to the working directory when it is
    inside it (``runs/v12/model``), else its name; never this machine's absolute path."""
    try:
        return str(model_dir.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return model_dir.name


def _save_tokenizer(source: ExportSource, staging: Path) -> None:
    """The fast tokenizer's files (tokenizer.json for serving, the rest for transformers users)."""
    source.tokenizer.save_pretrained(str(staging))
    if not (staging / TOKENIZER_FILE).is_file():
        raise ExportError("the tokenizer did not save a tokenizer.json; serving cannot read it")


def _file_hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _place(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished staging dir to ``out_dir`` (replacing an old bundle only if allowed)."""
    if out_dir.exists():
        if not overwrite:
            raise ExportError(f"{out_dir} already exists; pass overwrite=True (--overwrite) to replace it")
        backup = out_dir.with_name(f".{out_dir.name}.old-{int(time.time())}")
        out_dir.rename(backup)
        try:
            staging.rename(out_dir)
        except OSError:
            backup.rename(out_dir)  # put the old bundle back rather than leave nothing
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        staging.rename(out_dir)


def label_warnings(heads: dict[str, list[str]]) -> list[str]:
    """Label names the enrich stage will not understand: worth saying at export time.

    Warnings, not refusals: a shop may ship its own taxonomy file, and a sentiment head with
    other names still works (the last label is read as positive).
    """
    from shoppulse.models.serving.taxonomy import default_taxonomy

    warnings_found = []
    interest = heads.get("interest")
    if interest:
        unknown = [label for label in interest if label not in default_taxonomy().fine_to_tag]
        if unknown:
            warnings_found.append(
                f"interest labels {unknown} are not categories of the packaged taxonomy "
                "(models/data/taxonomy.json); ship a taxonomy that maps them to tags"
            )
    sentiment = heads.get("sentiment")
    if sentiment and all(label.upper().startswith("LABEL_") for label in sentiment):
        warnings_found.append(
            f"sentiment labels are {sentiment}; name them with --labels (e.g. negative,positive) "
            "so outputs are readable (the last label is taken as positive)"
        )
    return warnings_found


def build_bundle(
    model_dir: str | Path,
    out_dir: str | Path,
    task: str | None = None,
    quantize: str = "int8",
    opset: int = DEFAULT_OPSET,
    max_length: int = 128,
    parity_texts: list[str] | None = None,
    name: str | None = None,
    version: str | None = None,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    thresholds: ParityThresholds | dict[str, Any] | None = None,
    fusion: bool = DEFAULT_FUSION,
    labels: list[str] | None = None,
    parity_samples: int = 200,
    parity_origin: str | None = None,
    overwrite: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``model_dir`` to a bundle at ``out_dir`` and return its manifest.

    ``task``: ``multi`` (default for a shoppulse multi-task folder), ``sentiment`` (default
    for a plain classifier) or ``interest``. ``parity_texts``: real texts to check parity on
    (generated from the vocabulary when ``None``). Raises ``ParityError`` (with ``.report``)
    when the export does not agree with torch, ``ExportError`` for anything else; in both
    cases nothing is written at ``out_dir``.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise ExportError(f"quantize must be one of {QUANTIZE_CHOICES}, got {quantize!r}")
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir).resolve()
    gates = _thresholds(thresholds)
    if out_dir.exists() and not overwrite:
        raise ExportError(f"{out_dir} already exists; pass overwrite=True (--overwrite) to replace it")

    started = time.perf_counter()
    source = load_source(model_dir, task=task, labels=labels)
    if not 2 <= max_length <= source.max_positions:
        raise ExportError(
            f"max_length {max_length} is outside 2..{source.max_positions} (the model's position embeddings)"
        )
    if parity_texts is None:
        texts, origin = generate_texts(source.tokenizer, count=parity_samples, seed=seed), "generated"
    else:
        texts, origin = list(parity_texts), parity_origin or "given"
        if not texts:
            raise ExportError("parity_texts is empty; give real texts or None to generate them")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a bundle is read by other users (containers)
    try:
        with tempfile.TemporaryDirectory(prefix="shoppulse-export-") as scratch_dir:
            scratch = Path(scratch_dir)
            raw = scratch / "raw.onnx"
            export_onnx(source, raw, opset=opset, max_length=max_length)
            if fusion:
                fusion_info = fuse(source, raw, staging / FP32_FILE)
            else:
                shutil.copyfile(raw, staging / FP32_FILE)
                fusion_info = {"applied": False, "reason": "disabled (ORT_ENABLE_ALL at load time)"}
            models = {"fp32": FP32_FILE}
            quantization: dict[str, Any] | None = None
            if quantize == "int8":
                quantization = quantize_int8(staging / FP32_FILE, staging / INT8_FILE)
                models["int8"] = INT8_FILE
        _save_tokenizer(source, staging)

        manifest: dict[str, Any] = {
            "format": FORMAT,
            "name": name or model_dir.name,
            "version": version or f"0+{sha256_file(staging / FP32_FILE)[:12]}",
            "task": source.task,
            "heads": source.heads,
            "max_length": max_length,
            "inputs": source.input_names,
            "outputs": [output_name(h) for h in source.heads],
            "opset": opset,
            "pad_token_id": source.pad_token_id,
            "text_cleaning": "shoppulse.models.serving.text.clean_text",
            "models": models,
            "files": _file_hashes(staging),
            "source": {
                "path": _portable_path(model_dir),
                "config_sha256": source.config_sha256,
                "family": source.family,
                "multitask": source.multitask,
                # enough to rebuild the torch model from model.onnx (models/training/recover.py)
                "config": source.config,
                "heads_file": _heads_file(model_dir) if source.multitask else None,
            },
            "export": {
                "exporter": "torch.onnx (TorchScript, dynamo=False)",
                "attention": "eager",
                "fusion": fusion_info,
                "quantization": quantization,
                "operators": operator_counts(staging / FP32_FILE),
                "warnings": label_warnings(source.heads),
            },
            "versions": package_versions(),
        }
        for key, value in (("metrics", metrics), ("training", training), ("calibration", calibration)):
            if value is not None:
                manifest[key] = value
        _write_manifest(staging, manifest)

        bundle = load_bundle(staging, verify=True)
        predictors = {p: Predictor(bundle, precision=p) for p in bundle.precisions}
        report = check_parity(source, predictors, texts, origin, max_length, gates)
        if not report["passed"]:
            raise ParityError("parity check failed: " + "; ".join(report["failures"]), report)
        manifest["parity"] = report
        manifest["export"]["seconds"] = round(time.perf_counter() - started, 2)
        _write_manifest(staging, manifest)
        load_bundle(staging, verify=True)
        _place(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("bundle written to %s", out_dir)
    return manifest
