"""A model bundle on disk, and the loader that refuses a bundle it cannot trust.

A bundle is one directory: ``manifest.json``, ``model.onnx``, optionally
``model.int8.onnx``, and the tokenizer files (``tokenizer.json`` is what serving
reads). The manifest is written by ``export.build_bundle``; this module only reads
it, so serving needs no torch.

Why the loader is strict: a bundle is copied around (images, volumes, object stores),
and a truncated ONNX file or a tokenizer from another model produces confident
garbage rather than an error. So every file's sha256 is checked, and the ONNX graph's
inputs and outputs are compared with what the manifest promises, before anything is
served. Every refusal is a ``BundleError`` whose message names the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "shoppulse-bundle/1"
MANIFEST = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
TASKS = ("multi", "sentiment", "interest")
PRECISIONS = ("fp32", "int8")
ALLOWED_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "default"  # packaged with the wheel


class BundleError(Exception):
    """A bundle is missing, incomplete, tampered with, or does not match its manifest."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def output_name(head: str) -> str:
    """The ONNX output that carries a head's logits."""
    return f"logits_{head}"


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    name: str
    version: str
    task: str
    heads: dict[str, list[str]]
    max_length: int
    input_names: list[str]
    output_names: list[str]
    models: dict[str, str]
    temperature: dict[str, float] = field(default_factory=dict)

    @property
    def clause_threshold(self) -> float:
        """The p_positive an aspect clause needs to be called positive (``models.serving.clauses``)."""
        from shoppulse.models.serving.clauses import clause_threshold

        return clause_threshold(self.manifest)

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE

    @property
    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if p in self.models]

    @property
    def pad_token_id(self) -> int | None:
        value = self.manifest.get("pad_token_id")
        return int(value) if value is not None else None

    def model_path(self, precision: str = "int8") -> Path:
        """The ONNX file for ``precision``, or the bundle's other one when it has only that (see below)."""
        return self.path / self.models[self.resolved_precision(precision)]

    def resolved_precision(self, precision: str = "int8") -> str:
        """``precision`` when the bundle has it; else the one it has: int8 falls back to fp32 (a bundle
        exported with ``--quantize none``), fp32 to int8 (a serving image slimmed to INT8, ``slim``)."""
        if precision not in PRECISIONS:
            raise BundleError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        return precision if precision in self.models else next(p for p in PRECISIONS if p in self.models)


def _require(manifest: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in manifest:
        raise BundleError(f"{where}: manifest has no {key!r}; re-export the bundle with `shoppulse export`")
    value = manifest[key]
    if not isinstance(value, kind):
        raise BundleError(f"{where}: manifest {key!r} has the wrong type ({type(value).__name__})")
    return value


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise BundleError(f"bundle directory {path} does not exist (set the bundle path to an exported bundle)")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not a bundle: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path} must hold a JSON object")
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{manifest_path}: format {manifest.get('format')!r} is not {FORMAT!r}; this shoppulse cannot read it"
        )
    return manifest


def _check_heads(task: str, heads: dict[str, Any], where: Path) -> dict[str, list[str]]:
    if task not in TASKS:
        raise BundleError(f"{where}: unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    if not heads:
        raise BundleError(f"{where}: manifest lists no heads")
    clean: dict[str, list[str]] = {}
    for head, labels in heads.items():
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{where}: head {head!r} needs a list of at least two label names")
        clean[str(head)] = list(labels)
    if task != "multi" and list(clean) != [task]:
        raise BundleError(f"{where}: task {task!r} but heads {list(clean)}; a single-task bundle has one head")
    return clean


def _temperatures(calibration: Any, heads: dict[str, list[str]]) -> dict[str, float]:
    """Per-head softmax temperature from the manifest's ``calibration`` (1.0 when absent).

    Two spellings are accepted: ``{"temperature": {"sentiment": 1.3}}`` and
    ``{"sentiment": {"temperature": 1.3, ...}}``.
    """
    result = dict.fromkeys(heads, 1.0)
    if not isinstance(calibration, dict):
        return result
    flat = calibration.get("temperature")
    for head in heads:
        value = None
        if isinstance(flat, dict):
            value = flat.get(head)
        elif isinstance(calibration.get(head), dict):
            value = calibration[head].get("temperature")
        if value is not None:
            temperature = float(value)
            if not temperature > 0:
                raise BundleError(f"calibration temperature for {head!r} must be > 0, got {value!r}")
            result[head] = temperature
    return result


def _verify_files(path: Path, files: dict[str, str], verify_hashes: bool) -> None:
    for name, expected in files.items():
        file_path = path / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{path}: manifest names a file outside the bundle: {name!r}")
        if not file_path.is_file():
            raise BundleError(f"{path}: file {name!r} listed in the manifest is missing")
        if verify_hashes:
            actual = sha256_file(file_path)
            if actual != expected:
                raise BundleError(
                    f"{path}: sha256 of {name!r} is {actual[:12]}…, the manifest says {str(expected)[:12]}…; "
                    "the file was changed or truncated after export. Re-copy or re-export the bundle"
                )


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of one protobuf message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field_number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(buf, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("field runs past the end of its message")
            yield field_number, pos, pos + length
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire_type}")


def _name(buf: memoryview, start: int, end: int, name_field: int) -> str:
    for number, begin, stop in _fields(buf, start, end):
        if number == name_field:
            return bytes(buf[begin:stop]).decode("utf-8")
    return ""


def onnx_signature(model_file: Path) -> tuple[list[str], list[str]]:
    """Input and output names of an ONNX graph, read from the protobuf wire format.

    Why not an ONNX Runtime session: for a bert-base bundle that holds 400 MB more at start-up
    just to read a few names, and the ``onnx`` package is not a serving dependency. Field
    numbers from onnx.proto: ModelProto.graph = 7; GraphProto.initializer = 5, input = 11,
    output = 12; ValueInfoProto.name = 1; TensorProto.name = 8. Initializers listed as inputs
    (old exporters) are not inputs a caller feeds, so they are left out, as ONNX Runtime does.
    """
    try:
        with open(model_file, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            buf = memoryview(mapped)
            try:
                graph = next((s, e) for number, s, e in _fields(buf, 0, len(buf)) if number == 7)
                inputs, outputs, initializers = [], [], set()
                for number, start, end in _fields(buf, *graph):
                    if number == 11:
                        inputs.append(_name(buf, start, end, 1))
                    elif number == 12:
                        outputs.append(_name(buf, start, end, 1))
                    elif number == 5:
                        initializers.add(_name(buf, start, end, 8))
            finally:
                buf.release()
    except (OSError, ValueError, IndexError, StopIteration, UnicodeDecodeError) as exc:
        raise BundleError(f"{model_file} is not a readable ONNX model: {exc!r}") from exc
    return [name for name in inputs if name not in initializers], outputs


def check_signature(model_file: Path, inputs: list[str], outputs: list[str]) -> None:
    actual_inputs, actual_outputs = onnx_signature(model_file)
    if sorted(actual_inputs) != sorted(inputs):
        raise BundleError(
            f"{model_file.name}: the ONNX graph takes inputs {actual_inputs} but the manifest says {inputs}; "
            "the model file and manifest come from different exports"
        )
    missing = [o for o in outputs if o not in actual_outputs]
    if missing:
        raise BundleError(
            f"{model_file.name}: the ONNX graph has outputs {actual_outputs}, missing {missing} from the manifest"
        )


def bundle_from_manifest(path: Path, manifest: dict[str, Any]) -> Bundle:
    """Build a ``Bundle`` from a parsed manifest, checking its structure (not the files)."""
    task = _require(manifest, "task", str, path)
    heads = _check_heads(task, _require(manifest, "heads", dict, path), path)
    inputs = _require(manifest, "inputs", list, path)
    unknown_inputs = [i for i in inputs if i not in ALLOWED_INPUTS]
    if unknown_inputs or "input_ids" not in inputs or "attention_mask" not in inputs:
        raise BundleError(
            f"{path}: inputs {inputs} are not supported; need input_ids and attention_mask (optionally token_type_ids)"
        )
    outputs = _require(manifest, "outputs", list, path)
    expected_outputs = [output_name(h) for h in heads]
    if outputs != expected_outputs:
        raise BundleError(f"{path}: outputs {outputs} do not match heads (expected {expected_outputs})")
    models = _require(manifest, "models", dict, path)
    if not models:
        raise BundleError(f"{path}: manifest 'models' lists no model")
    unknown_precisions = [p for p in models if p not in PRECISIONS]
    if unknown_precisions:
        raise BundleError(f"{path}: unknown precision(s) {unknown_precisions} in manifest 'models'")
    files = _require(manifest, "files", dict, path)
    for needed in [*models.values(), TOKENIZER_FILE]:
        if needed not in files:
            raise BundleError(f"{path}: {needed!r} is not listed (with its sha256) in manifest 'files'")
    max_length = _require(manifest, "max_length", int, path)
    if max_length < 2:
        raise BundleError(f"{path}: max_length {max_length} is too small")
    try:
        from shoppulse.models.serving.clauses import clause_threshold

        clause_threshold(manifest)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: {exc}") from None
    return Bundle(
        path=path,
        manifest=manifest,
        name=str(manifest.get("name") or path.name),
        version=str(manifest.get("version") or "0"),
        task=task,
        heads=heads,
        max_length=max_length,
        input_names=[str(i) for i in inputs],
        output_names=[str(o) for o in outputs],
        models={str(k): str(v) for k, v in models.items()},
        temperature=_temperatures(manifest.get("calibration"), heads),
    )


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read and check a bundle directory.

    Always: manifest structure, known task, heads ↔ outputs, every listed file present.
    With ``verify`` (the default): every sha256, and each ONNX file's input/output names
    against the manifest. ``verify=False`` is for tools that only want to read the manifest.
    """
    bundle_path = Path(path).resolve()
    manifest = _read_manifest(bundle_path)
    bundle = bundle_from_manifest(bundle_path, manifest)
    _verify_files(bundle_path, manifest["files"], verify_hashes=verify)
    if verify:
        for precision in bundle.precisions:
            check_signature(bundle.model_path(precision), bundle.input_names, bundle.output_names)
    return bundle
