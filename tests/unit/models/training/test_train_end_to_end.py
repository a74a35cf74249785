"""The whole recipe on generated data in seconds: tokenizer → MLM → multi-task fine-tune →
calibration → INT8 bundle → ``shoppulse evaluate``, through the same entry points users run."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")

from shoppulse.export import train_cli as train
from shoppulse.models.evaluation import evaluate
from shoppulse.models.evaluation.data_io import sha256_of
from shoppulse.models.serving.bundle import load_bundle
from tests.unit.models.synthetic_reviews import rows, write_csv, write_dataset

TINY = [
    "--layers",
    "1",
    "--hidden",
    "32",
    "--heads",
    "2",
    "--ffn",
    "64",
    "--vocab-size",
    "300",
    "--max-length",
    "32",
    "--pretrain-epochs",
    "1",
    "--pretrain-batch-size",
    "32",
    "--epochs",
    "4",
    "--batch-size",
    "16",
    "--lr",
    "2e-3",
    "--ngram-buckets",
    "512",
    "--ngram-dim",
    "16",
    "--threads",
    "1",
    "--no-progress",
    "--seed",
    "7",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    data = write_dataset(root / "data", n_train=400, n_dev=100)
    out = root / "out"
    assert train.main(["--data", str(data), "--out", str(out), *TINY]) == 0
    return data, out


def test_bundle_is_written_with_metrics_hashes_and_command(trained: tuple[Path, Path]) -> None:
    data, out = trained
    bundle = load_bundle(out / "bundle", verify=True)
    manifest = json.loads((out / "bundle" / "manifest.json").read_text(encoding="utf-8"))
    assert set(bundle.heads) == {"sentiment", "interest"}
    assert bundle.heads["sentiment"] == ["negative", "positive"]
    assert manifest["training"]["data"]["os10_train.csv"]["sha256"] == sha256_of(data / "os10_train.csv")
    assert manifest["training"]["seed"] == 7
    assert manifest["training"]["command"].startswith("shoppulse train ")
    assert "--layers" in manifest["training"]["command"]
    for head in ("sentiment", "interest"):
        assert manifest["calibration"][head]["temperature"] > 0
        served = manifest["metrics"]["dev_int8"][head]
        assert served["accuracy"] == pytest.approx(manifest["metrics"]["dev_torch"][head]["accuracy"], abs=0.03)
    # aspect clauses get their own threshold, fitted on the packaged tuning set (models/serving/clauses.py)
    clause = manifest["calibration"]["clause"]
    assert 0 < clause["positive_threshold"] < 1 and bundle.clause_threshold == clause["positive_threshold"]
    assert "aspects_tune.jsonl" in clause["fitted_on"]
    # the generated data is learnable: far above chance (0.5 and 0.1) after a few seconds
    assert manifest["metrics"]["dev_int8"]["sentiment"]["accuracy"] >= 0.9
    assert manifest["metrics"]["dev_int8"]["interest"]["accuracy"] >= 0.8
    assert (out / "model" / "tokenizer.json").is_file() and (out / "pretrained" / "config.json").is_file()


def test_resume_skips_finished_phases_and_reproduces_the_metrics(trained: tuple[Path, Path]) -> None:
    data, out = trained
    before = json.loads((out / "train_report.json").read_text(encoding="utf-8"))
    assert train.main(["--data", str(data), "--out", str(out), *TINY, "--resume", "--no-bundle"]) == 0
    after = json.loads((out / "train_report.json").read_text(encoding="utf-8"))
    assert after["metrics"]["dev_torch"] == before["metrics"]["dev_torch"]
    assert after["training"]["phases"]["pretrain"]["steps"] == before["training"]["phases"]["pretrain"]["steps"]


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1, "human-readable lines come before the JSON"
    return json.loads(lines[-1])


@pytest.mark.parametrize(("task", "columns"), [("sentiment", ("label", "review")), ("interest", ("cat", "review"))])
def test_evaluate_prints_one_json_object_last(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, columns: tuple
) -> None:
    _, out = trained
    csv_path = write_csv(tmp_path / f"{task}.csv", rows(60, seed=11), columns=columns)
    assert evaluate.main(["--bundle", str(out / "bundle"), "--data", str(csv_path), "--task", task]) == 0
    result = _last_json(capsys)
    assert list(result) == ["task", "n", "accuracy", "macro_f1", "reviews_per_s"]
    assert result["task"] == task and result["n"] == 60
    assert 0.8 <= result["accuracy"] <= 1.0 and 0.0 < result["macro_f1"] <= 1.0
    assert result["reviews_per_s"] > 0


def test_evaluate_accuracy_matches_the_predictor(trained: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from shoppulse.models.serving.inference import Predictor

    _, out = trained
    data = rows(50, seed=12)
    csv_path = write_csv(tmp_path / "s.csv", data)
    evaluate.main(["--bundle", str(out / "bundle"), "--data", str(csv_path), "--task", "sentiment", "--robustness"])
    result = _last_json(capsys)
    probs = Predictor.from_dir(out / "bundle").predict([r["review"] for r in data])["sentiment"]
    expected = sum(int(p.argmax() == int(r["label"])) for p, r in zip(probs, data, strict=True)) / len(data)
    assert result["accuracy"] == pytest.approx(expected, abs=1e-4)
    assert set(result["robustness"]) == {"first_32_chars", "noisy"}  # --robustness: in the JSON too
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in result["robustness"].values())


def test_evaluate_rejects_a_category_the_bundle_does_not_know(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = trained
    data = rows(5, seed=1)
    data[0]["cat"] = "汽车"
    csv_path = write_csv(tmp_path / "bad.csv", data, columns=("cat", "review"))
    assert evaluate.main(["--bundle", str(out / "bundle"), "--data", str(csv_path), "--task", "interest"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("shoppulse evaluate: ") and "汽车" in line


def test_base_model_folder_is_fine_tuned_without_pretraining(tmp_path: Path) -> None:
    """A user's own Hugging Face folder (here a tiny random BERT with our tokenizer) replaces MLM."""
    import torch
    from transformers import BertConfig, BertModel

    from shoppulse.models.training.tokenizer import save_hf_tokenizer, train_wordpiece

    data = write_dataset(tmp_path / "data", n_train=200, n_dev=50)
    base = tmp_path / "my-bert"
    tokenizer = train_wordpiece([r["review"] for r in rows(200, seed=0)], vocab_size=300, min_frequency=1)
    save_hf_tokenizer(tokenizer, base)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(base)
    out = tmp_path / "out"
    args = ["--data", str(data), "--out", str(out), "--base-model", str(base), "--epochs", "2", "--lr", "2e-3"]
    assert train.main([*args, "--max-length", "32", "--threads", "1", "--no-progress", "--no-bundle"]) == 0
    report = json.loads((out / "train_report.json").read_text(encoding="utf-8"))
    assert "pretrain" not in report["training"]["phases"]
    assert not (out / "pretrained").exists()
    assert report["training"]["base_model"] == str(base)
    assert (out / "model" / "shoppulse_heads.json").is_file()
    heads = json.loads((out / "model" / "shoppulse_heads.json").read_text(encoding="utf-8"))
    assert "ngram" not in heads  # a pretrained encoder gets no n-gram bag unless asked
    # the user's model adapted to the shop's texts first (a model saved without an MLM head gets a new one)
    shop = tmp_path / "shop.txt"
    shop.write_text("\n".join(r["review"] for r in rows(80, seed=9)), encoding="utf-8")
    args = [*args, "--out", str(tmp_path / "adapted-run"), "--unlabeled", str(shop)]
    assert train.main([*args, "--max-length", "32", "--threads", "1", "--no-progress", "--no-bundle"]) == 0
    report = json.loads((tmp_path / "adapted-run" / "train_report.json").read_text(encoding="utf-8"))
    assert report["training"]["encoder"] == "adapted" and report["training"]["phases"]["adapt"]["config"]["lr"] == 5e-5


def test_evaluate_aspects_prints_per_aspect_and_overall_scores_last(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = trained
    reviews = [
        {"id": "1", "text": "物流很快，包装很严实", "aspects": {"物流": "positive", "包装": "positive"}},
        {"id": "2", "text": "快递太慢了", "aspects": {"物流": "negative"}},
        {"id": "3", "text": "尺码按平时买的", "aspects": {"尺码": "none"}},
    ]
    data = tmp_path / "aspects.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in reviews), encoding="utf-8")
    assert evaluate.main(["--bundle", str(out / "bundle"), "--data", str(data), "--task", "aspects"]) == 0
    result = _last_json(capsys)
    assert result["task"] == "aspects" and result["n"] == 3 and result["none"]["n"] == 1
    assert set(result["per_aspect"]) == {"物流", "包装"} and 0 <= result["accuracy"] <= 1
    data.write_text(json.dumps({"id": "x", "text": "很好", "aspects": {"物流": "positive"}}), encoding="utf-8")
    assert evaluate.main(["--bundle", str(out / "bundle"), "--data", str(data), "--task", "aspects"]) == 2


def test_unlabeled_texts_continue_pretraining_before_fine_tuning(tmp_path: Path) -> None:
    """--unlabeled: domain-adaptive MLM on the shop's own texts (a CSV column here) between
    pretraining and fine-tuning; fine-tuning starts from the adapted encoder."""
    import torch
    from transformers import AutoModel

    data = write_dataset(tmp_path / "data", n_train=200, n_dev=50)
    shop = write_csv(tmp_path / "shop.csv", rows(120, seed=5) + rows(10, seed=5), columns=("review",))
    out = tmp_path / "out"
    assert train.main(["--data", str(data), "--out", str(out), *TINY, "--unlabeled", str(shop), "--no-bundle"]) == 0
    report = json.loads((out / "train_report.json").read_text(encoding="utf-8"))
    adapt = report["training"]["phases"]["adapt"]
    assert adapt["texts"] == len({r["review"] for r in rows(120, seed=5)})  # repeats kept once
    assert adapt["steps"] > 0 and adapt["mlm_loss"] > 0 and adapt["sha256"] == sha256_of(shop)
    assert report["training"]["encoder"] == "adapted"
    assert "<UNLABELED>" in report["training"]["command"]
    before = AutoModel.from_pretrained(out / "pretrained").state_dict()
    after = AutoModel.from_pretrained(out / "adapted").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the encoder moved on the shop's texts


def test_a_bad_unlabeled_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "data", n_train=20, n_dev=10)
    empty = tmp_path / "shop.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    for path in (empty, tmp_path / "missing.txt"):
        assert train.main(["--data", str(data), "--out", str(tmp_path / "out"), "--unlabeled", str(path)]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("shoppulse train: --unlabeled: ")
    assert train.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no os10_train.csv" in capsys.readouterr().err


def test_device_cuda_without_a_gpu_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = write_dataset(tmp_path / "data", n_train=20, n_dev=10)
    assert train.main(["--data", str(data), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("shoppulse train: --device cuda: torch sees no CUDA GPU")
    assert not (tmp_path / "out").exists()  # refused before any work


def test_the_report_names_the_device_training_ran_on(trained: tuple[Path, Path]) -> None:
    import torch

    _, out = trained
    report = json.loads((out / "train_report.json").read_text(encoding="utf-8"))
    assert report["training"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto
