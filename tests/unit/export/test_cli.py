"""``shoppulse export``: flags reach build_bundle, the report is printed, failures set the exit code."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from shoppulse.export.cli import register
from shoppulse.models.serving.bundle import load_bundle
from tests.unit.export.tiny import FAMILIES, save_classifier, toy_reviews


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shoppulse")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_classifier(tmp_path_factory.mktemp("cli") / "model", "bert")


def write_reviews(path: Path, count: int) -> list[str]:
    texts, labels = toy_reviews(count, seed=2)
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:  # BOM, like the real file
        writer = csv.writer(handle)
        writer.writerow(["cat", "label", "review"])
        writer.writerows(("手机", label, text) for text, label in zip(texts, labels, strict=True))
    return texts


def test_export_with_user_data(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "reviews.csv"
    write_reviews(data, 30)
    out = tmp_path / "bundle"
    code = run_cli(
        [
            "export", "--model", str(model_dir), "--out", str(out), "--task", "interest",
            "--labels", "书籍,手机", "--data", str(data), "--parity-samples", "20", "--max-length", "40",
            "--int8-min-agreement", "0", "--name", "mine", "--version", "7",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "parity on 20 texts" in printed and "PASSED" in printed
    assert "bundle mine 7 written" in printed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["task"] == "interest" and manifest["heads"] == {"interest": ["书籍", "手机"]}
    assert manifest["max_length"] == 40
    assert manifest["parity"]["texts"] == f"{data}:review"
    assert manifest["parity"]["thresholds"]["int8_min_argmax_agreement"] == 0
    assert manifest["export"]["warnings"] == []  # both labels are taxonomy categories
    assert "warning:" not in printed


def test_labels_the_enrich_stage_cannot_read_are_warned_about(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--parity-samples", "8", "--max-length", "32", "--quantize", "none"]
    assert run_cli(["export", "--model", str(model_dir), "--out", str(tmp_path / "s"), *common]) == 0
    printed = capsys.readouterr().out
    assert "warning: sentiment labels are ['LABEL_0', 'LABEL_1']" in printed
    assert "keeps the packaged default's interest tagging" in printed  # a sentiment-only bundle
    args = ["--task", "interest", "--labels", "书籍,玩具"]
    assert run_cli(["export", "--model", str(model_dir), "--out", str(tmp_path / "i"), *common, *args]) == 0
    printed = capsys.readouterr().out
    assert "warning: interest labels ['玩具'] are not categories" in printed
    assert "interest tagging" not in printed


def test_failed_gate_exits_1_and_writes_nothing(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    code = run_cli(
        [
            "export",
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--parity-samples",
            "8",
            "--int8-max-prob-diff",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED" in captured.out and "no bundle written" in captured.err
    assert not out.exists()


def test_bad_request_exits_2(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["export", "--model", str(model_dir), "--out", str(tmp_path / "b"), "--task", "multi"])
    assert code == 2
    assert "one head" in capsys.readouterr().err
    code = run_cli(["export", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "b")])
    assert code == 2
    assert "no config.json" in capsys.readouterr().err


def test_importing_the_cli_and_serving_code_does_not_import_torch() -> None:
    """``shoppulse --help`` and the serving image must work without the export extra."""
    import subprocess
    import sys

    code = (
        "import sys, shoppulse.export, shoppulse.export.cli, shoppulse.export.train_cli, shoppulse.consumers.cli; "
        "import shoppulse.models.serving.bundle, shoppulse.models.serving.inference; "
        "import shoppulse.models.serving.composed; "
        "shoppulse.consumers.cli.build_parser(); "
        "heavy = [m for m in ('torch', 'transformers', 'onnx') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_through_the_command(family: str, tmp_path: Path) -> None:
    """The command a user types, for each family, with the opset and gate flags passed through."""
    model_dir = save_classifier(tmp_path / "model", family, labels=["negative", "positive"])
    out = tmp_path / "bundle"
    code = run_cli(
        [
            "export", "--model", str(model_dir), "--out", str(out), "--task", "sentiment", "--opset", "17",
            "--quantize", "int8", "--max-length", "32", "--parity-samples", "12", "--fp32-max-diff", "1e-4",
            "--int8-min-agreement", "0", "--max-unk-rate", "0.5",
        ]
    )  # fmt: skip
    assert code == 0
    bundle = load_bundle(out)  # verifies every hash and the ONNX input signature
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["opset"] == 17 and manifest["heads"] == {"sentiment": ["negative", "positive"]}
    assert manifest["parity"]["thresholds"]["fp32_max_abs_diff"] == 1e-4
    assert bundle.model_path("int8").exists() and bundle.model_path("fp32").exists()
