"""Predictor: probabilities per head, in input order, matching torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shoppulse.models.serving.bundle import load_bundle
from shoppulse.models.serving.inference import (
    Predictor,
    open_session,
    resolve_providers,
    session_layout,
    session_options,
    softmax,
)
from tests.unit.models.bundle_fixtures import copy_bundle, export_tiny_bundle

TEXTS = [
    "质量很好，物流也快！！！！",
    "差",
    "手机用了一个月就坏了，非常失望，后悔买了" * 6,  # longer than max_length (48)
    "",
    "ＡＢＣ东西不错 https://example.com/x",
    "还没用，先给个好评",
    "物流慢",
]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("inference")
    return {
        "plain": export_tiny_bundle(base, "bert"),
        "multi": export_tiny_bundle(base, "bert", multitask=True),
    }


def torch_multitask_probabilities(bundle_dir: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """Reference: the source model in torch, one text at a time (no padding), HF tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from shoppulse.models.serving.text import clean_text
    from shoppulse.models.training.multitask import load_multitask

    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    model_dir = bundle_dir.parent / manifest["source"]["path"]  # a name: the export ran outside its folder
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_multitask(model_dir)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in model.head_names}
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(
                clean_text(text), truncation=True, max_length=manifest["max_length"], return_tensors="pt"
            )
            for name, logits in zip(model.head_names, model(**encoded), strict=True):
                rows[name].append(torch.softmax(logits.double(), -1)[0].numpy())
    return {name: np.stack(values) for name, values in rows.items()}


def test_probabilities_match_torch_softmax(bundles: dict[str, Path]) -> None:
    pytest.importorskip("torch")
    predictor = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1)
    predicted = predictor.predict(TEXTS, batch_size=3)
    expected = torch_multitask_probabilities(bundles["multi"], TEXTS)
    assert set(predicted) == {"sentiment", "interest"}
    for head, probabilities in predicted.items():
        assert probabilities.dtype == np.float32
        assert probabilities.shape == (len(TEXTS), len(predictor.heads[head]))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(probabilities, expected[head], atol=1e-5)


def test_input_order_survives_the_length_sort(bundles: dict[str, Path]) -> None:
    # FP32: dynamic INT8 quantises activations with one scale per batch, so an INT8 result
    # moves slightly with its batch-mates (measured ~5e-4 in probability on this model).
    predictor = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1)
    lengths = predictor.token_lengths(TEXTS)
    assert lengths != sorted(lengths)  # the sort really reorders this batch
    batched = predictor.predict(TEXTS, batch_size=2)
    for i, text in enumerate(TEXTS):
        alone = predictor.predict([text])
        for head in batched:
            np.testing.assert_allclose(batched[head][i], alone[head][0], atol=1e-5)


def test_token_lengths_count_special_tokens_and_truncate(bundles: dict[str, Path]) -> None:
    predictor = Predictor.from_dir(bundles["plain"])
    lengths = predictor.token_lengths(["差", "", "好" * 500])
    assert lengths == [3, 2, predictor.bundle.max_length]  # [CLS] 差 [SEP]; [CLS] [SEP]; truncated
    assert predictor.encode(["差"])[0][0] == predictor.tokenizer.token_to_id("[CLS]")


def test_int8_is_the_default_and_fp32_is_selectable(bundles: dict[str, Path]) -> None:
    int8 = Predictor.from_dir(bundles["plain"])
    fp32 = Predictor.from_dir(bundles["plain"], precision="fp32")
    assert int8.precision == "int8" and int8.model_file.name == "model.int8.onnx"
    assert fp32.precision == "fp32" and fp32.model_file.name == "model.onnx"
    a, b = int8.predict(TEXTS)["sentiment"], fp32.predict(TEXTS)["sentiment"]
    assert a.shape == b.shape and not np.array_equal(a, b)  # really a different graph


def test_temperature_from_the_manifest_scales_logits(bundles: dict[str, Path], tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundles["plain"], tmp_path / "calibrated")
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["calibration"] = {"temperature": {"sentiment": 0.01}}  # sharpen: tiny random logits
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    predictor = Predictor(load_bundle(bundle_dir), precision="fp32")
    logits = predictor.logits(TEXTS)["sentiment"]
    probabilities = predictor.predict(TEXTS)["sentiment"]
    np.testing.assert_allclose(probabilities, softmax(logits / 0.01), atol=1e-6)
    assert not np.allclose(probabilities, softmax(logits), atol=1e-3)


def test_empty_input_gives_empty_arrays(bundles: dict[str, Path]) -> None:
    predictor = Predictor.from_dir(bundles["multi"])
    result = predictor.predict([])
    assert result["sentiment"].shape == (0, 2) and result["interest"].shape == (0, 10)
    assert predictor.token_lengths([]) == []


def test_thread_count_is_applied(bundles: dict[str, Path]) -> None:
    assert Predictor.from_dir(bundles["plain"], intra_op_threads=1).intra_op_threads == 1
    layered = Predictor.from_dir(bundles["plain"], intra_op_threads=2, sessions=3)
    assert (layered.sessions, layered.intra_op_threads) == (3, 2)


def test_session_layout_defaults_to_one_single_threaded_session_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoppulse.models.serving import inference

    monkeypatch.setattr(inference, "available_cpus", lambda: 4)
    assert session_layout() == (1, 4)
    assert session_layout(intra_op_threads=2) == (2, 2)
    assert session_layout(sessions=2) == (2, 2)
    assert session_layout(intra_op_threads=3, sessions=5) == (3, 5)  # as asked, even oversubscribed
    assert session_layout(intra_op_threads=8) == (8, 1)
    assert session_layout(gpu=True) == (4, 1)  # one session: the device parallelises inside an operator


def test_several_sessions_give_the_single_session_results_in_input_order(bundles: dict[str, Path]) -> None:
    # FP32, so results do not depend on how the texts are sliced (see the length-sort test).
    texts = [*TEXTS, *(t[::-1] + "好" * i for i, t in enumerate(TEXTS * 6))]
    one = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1, sessions=1)
    three = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1, sessions=3)
    expected = one.predict(texts, batch_size=64)
    for batch_size in (1, 5, 64):
        got = three.predict(texts, batch_size=batch_size)
        for head in expected:
            np.testing.assert_allclose(got[head], expected[head], atol=1e-5)


def test_concurrent_callers_share_the_sessions(bundles: dict[str, Path]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    predictor = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1, sessions=2)
    expected = predictor.predict(TEXTS * 5)
    with ThreadPoolExecutor(4) as callers:
        results = list(callers.map(lambda _: predictor.predict(TEXTS * 5), range(8)))
    for result in results:
        for head in expected:
            np.testing.assert_allclose(result[head], expected[head], atol=1e-5)


def test_providers() -> None:
    import onnxruntime as ort

    assert resolve_providers(None) == ["CPUExecutionProvider"]
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert resolve_providers("auto")[0] == ("CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider")
    if not has_cuda:
        with pytest.raises(RuntimeError, match=r"pip uninstall -y onnxruntime && pip install 'shoppulse\[gpu\]'"):
            resolve_providers("cuda")
    with pytest.raises(ValueError, match="unknown providers"):
        resolve_providers("tpu")


def test_sessions_run_sequentially_with_one_inter_op_thread_and_no_spinning() -> None:
    import onnxruntime as ort

    options = session_options(3)
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_async_predictions_queue_behind_each_other_and_match_the_sync_ones(bundles: dict[str, Path]) -> None:
    predictor = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1, sessions=2)
    first, second = TEXTS * 4, [t + "！" for t in TEXTS] * 3
    pending = [predictor.predict_encoded_async(predictor.encode(texts)) for texts in (first, second)]
    for handle, texts in zip(pending, (first, second), strict=True):
        expected = predictor.predict(texts)
        got = handle.result()
        assert handle.done() and handle.seconds >= 0.0
        assert handle.running_at is not None and handle.started_at <= handle.running_at <= handle.finished_at
        assert handle.running_seconds <= handle.seconds
        for head in expected:
            np.testing.assert_allclose(got[head], expected[head], atol=1e-5)
    assert predictor.predict_encoded_async([]).result()["sentiment"].shape == (0, 2)


def test_an_error_in_a_slice_comes_out_of_result(bundles: dict[str, Path]) -> None:
    predictor = Predictor.from_dir(bundles["multi"], precision="fp32", intra_op_threads=1, sessions=2)
    handle = predictor.predict_encoded_async([[10**9, 5]])  # an id far outside the embedding table
    with pytest.raises(Exception, match=r"(?i)index|indices|out of"):
        handle.result()


def _optimized_ops(model_file: Path, out: Path, disabled: bool) -> set[str]:
    """Operator types of the graph ONNX Runtime actually runs (saved after its rewrites)."""
    import onnx
    import onnxruntime as ort

    options = session_options(1)
    options.optimized_model_filepath = str(out)
    if disabled:
        open_session(model_file, options, ["CPUExecutionProvider"])
    else:
        ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    return {node.op_type for node in onnx.load(str(out)).graph.node}


def test_cpu_sessions_keep_the_residual_add_and_layer_norm_apart(bundles: dict[str, Path], tmp_path: Path) -> None:
    # ORT fuses them into SkipLayerNormalization by default, whose CPU kernel is ~6x slower.
    model_file = load_bundle(bundles["multi"]).model_path("int8")
    assert "SkipLayerNormalization" in _optimized_ops(model_file, tmp_path / "default.onnx", disabled=False)
    served = _optimized_ops(model_file, tmp_path / "served.onnx", disabled=True)
    assert "SkipLayerNormalization" not in served and "LayerNormalization" in served
