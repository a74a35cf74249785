"""The bundle loader accepts a good bundle and refuses every kind of bad one, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoppulse.models.serving.bundle import BundleError, load_bundle, onnx_signature, sha256_file
from tests.unit.models.bundle_fixtures import copy_bundle, export_tiny_bundle


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bundles")
    return {
        "bert": export_tiny_bundle(base, "bert"),
        "distilbert": export_tiny_bundle(base, "distilbert", quantize="none"),
    }


@pytest.fixture
def bundle_dir(built: dict[str, Path], tmp_path: Path) -> Path:
    return copy_bundle(built["bert"], tmp_path / "bundle")


def edit_manifest(bundle_dir: Path, **changes: object) -> None:
    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def test_good_bundle_loads(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert bundle.name == manifest["name"] and bundle.version == manifest["version"]
    assert bundle.task == "sentiment"
    assert bundle.heads == {"sentiment": ["negative", "positive"]}
    assert bundle.max_length == 48
    assert bundle.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert bundle.output_names == ["logits_sentiment"]
    assert bundle.model_path("int8") == bundle_dir.resolve() / "model.int8.onnx"
    assert bundle.model_path("fp32") == bundle_dir.resolve() / "model.onnx"
    assert bundle.tokenizer_path.name == "tokenizer.json" and bundle.tokenizer_path.is_file()
    assert bundle.temperature == {"sentiment": 1.0}
    for name, digest in manifest["files"].items():
        assert sha256_file(bundle_dir / name) == digest
    assert {"fp32", "int8"} <= set(manifest["parity"]["results"])
    assert {"torch", "transformers", "onnxruntime", "tokenizers"} <= set(manifest["versions"])


def test_missing_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"'tokenizer\.json' listed in the manifest is missing"):
        load_bundle(bundle_dir)
    with pytest.raises(BundleError, match="missing"):  # even without hash verification
        load_bundle(bundle_dir, verify=False)


def test_missing_manifest_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_bundle(tmp_path / "empty")


def test_wrong_hash_is_refused(bundle_dir: Path) -> None:
    with open(bundle_dir / "model.int8.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match=r"sha256 of 'model.int8.onnx'"):
        load_bundle(bundle_dir)
    assert load_bundle(bundle_dir, verify=False).name  # the explicit opt-out reads it


def test_unknown_task_is_refused(bundle_dir: Path) -> None:
    edit_manifest(bundle_dir, task="emotion")
    with pytest.raises(BundleError, match="unknown task 'emotion'"):
        load_bundle(bundle_dir)


def test_heads_that_contradict_the_task_are_refused(bundle_dir: Path) -> None:
    edit_manifest(bundle_dir, task="interest")
    with pytest.raises(BundleError, match="single-task bundle"):
        load_bundle(bundle_dir)


def test_manifest_inputs_that_the_graph_does_not_take_are_refused(bundle_dir: Path) -> None:
    edit_manifest(bundle_dir, inputs=["input_ids", "attention_mask"])
    with pytest.raises(BundleError, match="ONNX graph takes inputs"):
        load_bundle(bundle_dir)


def test_graph_from_another_export_is_refused(built: dict[str, Path], bundle_dir: Path) -> None:
    """A DistilBERT graph (no token_type_ids) with a correct hash in a BERT manifest."""
    foreign = built["distilbert"] / "model.onnx"
    (bundle_dir / "model.onnx").write_bytes(foreign.read_bytes())
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["model.onnx"] = sha256_file(foreign)
    edit_manifest(bundle_dir, files=manifest["files"])
    with pytest.raises(BundleError, match=r"model.onnx: the ONNX graph takes inputs \['input_ids', 'attention_mask'\]"):
        load_bundle(bundle_dir)


def test_wrong_format_is_refused(bundle_dir: Path) -> None:
    edit_manifest(bundle_dir, format="shoppulse-bundle/99")
    with pytest.raises(BundleError, match="cannot read it"):
        load_bundle(bundle_dir)


def test_file_outside_the_bundle_is_refused(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["../secret"] = "0" * 64
    edit_manifest(bundle_dir, files=manifest["files"])
    with pytest.raises(BundleError, match="outside the bundle"):
        load_bundle(bundle_dir)


def test_int8_falls_back_to_fp32_without_an_int8_file(built: dict[str, Path]) -> None:
    bundle = load_bundle(built["distilbert"])
    assert bundle.precisions == ["fp32"]
    assert bundle.model_path("int8").name == "model.onnx"
    assert bundle.input_names == ["input_ids", "attention_mask"]
    with pytest.raises(BundleError, match="unknown precision"):
        bundle.model_path("fp16")


def test_calibration_temperatures_are_read(bundle_dir: Path) -> None:
    edit_manifest(bundle_dir, calibration={"sentiment": {"temperature": 1.7, "ece_before": 0.08}})
    assert load_bundle(bundle_dir).temperature == {"sentiment": 1.7}
    edit_manifest(bundle_dir, calibration={"temperature": {"sentiment": 0.5}})
    assert load_bundle(bundle_dir).temperature == {"sentiment": 0.5}
    edit_manifest(bundle_dir, calibration={"temperature": {"sentiment": 0}})
    with pytest.raises(BundleError, match="must be > 0"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    ("family", "file"), [("bert", "model.onnx"), ("bert", "model.int8.onnx"), ("distilbert", "model.onnx")]
)
def test_signature_reader_agrees_with_onnx_runtime(built: dict[str, Path], family: str, file: str) -> None:
    import onnxruntime as ort

    path = built[family] / file
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    assert onnx_signature(path) == expected


def test_truncated_or_empty_onnx_file_is_refused(built: dict[str, Path], tmp_path: Path) -> None:
    data = (built["bert"] / "model.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.onnx").write_bytes(b"")
    for name in ("cut.onnx", "empty.onnx"):
        with pytest.raises(BundleError, match="not a readable ONNX model"):
            onnx_signature(tmp_path / name)


def test_the_default_manifest_holds_no_machine_path() -> None:
    """It carried /work/main/runs/... and the training data's absolute path."""
    import json

    from shoppulse.consumers.settings import DEFAULT_BUNDLE

    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []

    manifest = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text(encoding="utf-8"))
    found = [s for s in strings(manifest) if s.startswith("/") or " /" in s]
    assert found == []


def test_the_reproduce_command_replaces_absolute_paths_with_placeholders() -> None:
    from shoppulse.models.training.train import reproduce_command

    argv = ["--data", "/home/me/reviews", "--out=/srv/runs/x", "--epochs", "3", "--resume", "--unlabeled", "shop.txt"]
    assert reproduce_command(argv) == "shoppulse train --data <DATA> --out=<OUT> --epochs 3 --unlabeled shop.txt"
