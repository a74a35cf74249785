"""Rebuild the torch model a bundle was exported from, out of the bundle's own FP32 ONNX graph.

Why: a bundle travels without its training folder (the committed default bundle's
``runs/.../model`` exists only on the machine that trained it), yet comparing the
serving path with torch (``shoppulse bench model`` rows 1-3, INT8 argmax agreement)
needs that torch model. An unfused FP32 graph exported by ``torch.onnx`` holds every
trained weight exactly, and each node's name carries the scope of the module it came
from, which tells which parameter an initializer is (linear weights are stored
transposed). With the encoder's ``config.json`` and the multi-task heads file, which
the manifest records (``source.config``, ``source.heads_file``), the model is rebuilt
and then *checked*: its logits must match the FP32 graph within ``tolerance`` on seeded
inputs of many lengths, or nothing is written.

Needs torch and transformers (the ``train``/``export`` extras).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.models.serving.bundle import Bundle, BundleError, load_bundle

WRAPPER_PREFIX = "model."  # the exporter wraps the model in a module whose attribute is ``model``
RECOVERY_NOTE = "recovery.json"


class RecoveryError(BundleError):
    """The bundle does not hold what is needed to rebuild its torch model."""


@dataclass(frozen=True)
class Recovery:
    model_dir: Path
    max_abs_logit_diff: float
    checked_inputs: int
    parameters: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_dir": str(self.model_dir),
            "max_abs_logit_diff_vs_fp32_onnx": self.max_abs_logit_diff,
            "checked_inputs": self.checked_inputs,
            "parameters": self.parameters,
        }


# Which input of which operator holds which parameter of a torch module (the rest are activations/constants).
_ROLES: dict[str, dict[int, str]] = {
    "Gather": {0: "weight"},  # nn.Embedding
    "LayerNormalization": {1: "weight", 2: "bias"},
    "MatMul": {1: "weight"},  # nn.Linear on 3-D input, weight stored transposed
    "Add": {0: "bias", 1: "bias"},  # ... and its bias
    "Gemm": {1: "weight", 2: "bias"},  # nn.Linear on 2-D input
}


def onnx_state_dict(model_file: Path, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Parameter name → array for every parameter in ``expected``, read from an unfused FP32 graph.

    Each initializer is attributed to a parameter through the scope in its node's name
    (``/model/encoder/encoder/layer.1/attention/output/LayerNorm/LayerNormalization`` →
    ``encoder.encoder.layer.1.attention.output.LayerNorm``), falling back to the
    initializer's own name. The scope matters: the exporter keeps one copy of equal
    tensors (e.g. the untouched LayerNorm weights of a fresh model) and names the other
    users' copies through ``Identity`` nodes, so one initializer can feed several parameters.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_file)).graph
    fused = sorted({n.op_type for n in graph.node} & {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization"})
    if fused:
        raise RecoveryError(
            f"{model_file.name} is a fused graph ({', '.join(fused)}): its weights are packed; "
            "recover from a bundle exported without --fusion"
        )
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:  # the exporter's de-duplication: one tensor, an Identity per other user
        if node.op_type == "Identity" and node.input[0] in initializers:
            initializers[node.output[0]] = initializers[node.input[0]]
    state: dict[str, np.ndarray] = {}
    for node in graph.node:
        roles = _ROLES.get(node.op_type, {})
        scope = ".".join(node.name.split("/")[1:-1]).removeprefix(WRAPPER_PREFIX)
        for index, name in enumerate(node.input):
            if index not in roles or name not in initializers:
                continue
            value = numpy_helper.to_array(initializers[name])
            transposed = node.op_type == "MatMul" or (
                node.op_type == "Gemm" and not any(a.name == "transB" and a.i for a in node.attribute)
            )
            if transposed and value.ndim == 2:
                value = value.T
            for candidate in (f"{scope}.{roles[index]}", name.removeprefix(WRAPPER_PREFIX)):
                if expected.get(candidate) == tuple(value.shape):
                    state.setdefault(candidate, np.array(value, copy=True))
                    break
    return state


def _build_module(bundle: Bundle, manifest_source: dict[str, Any], work: Path) -> Any:
    """An untrained module of the exported architecture (weights loaded afterwards)."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    from shoppulse.models.training.multitask import MultiTaskClassifier

    config_dict = manifest_source.get("config")
    if not isinstance(config_dict, dict):
        raise RecoveryError(
            "the manifest has no source.config (bundles exported before shoppulse recorded it): "
            "pass the Hugging Face model folder instead"
        )
    (work / "config.json").write_text(json.dumps(config_dict), encoding="utf-8")
    config = AutoConfig.from_pretrained(work)
    if manifest_source.get("multitask"):
        heads_file = manifest_source.get("heads_file")
        if not isinstance(heads_file, dict):
            raise RecoveryError("the manifest has no source.heads_file for this multi-task model")
        kwargs = {"add_pooling_layer": False} if config.model_type in {"bert", "roberta", "ernie"} else {}
        encoder = AutoModel.from_config(config, **kwargs)
        return MultiTaskClassifier(encoder, dict(bundle.heads), ngram=heads_file.get("ngram"))
    return AutoModelForSequenceClassification.from_config(config)


def _load_weights(module: Any, model_file: Path) -> int:
    import torch

    parameters = dict(module.named_parameters())
    state = onnx_state_dict(model_file, {name: tuple(p.shape) for name, p in parameters.items()})
    missing = sorted(set(parameters) - set(state))
    if missing:
        raise RecoveryError(f"the graph lacks {len(missing)} trained weights, e.g. {missing[:3]}")
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(torch.from_numpy(state[name]))
    return sum(p.numel() for p in parameters.values())


def _check_parity(module: Any, bundle: Bundle, multitask: bool, samples: int, tolerance: float) -> float:
    """Max |logit difference| between the rebuilt module and the FP32 graph on seeded inputs."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(bundle.model_path("fp32")), providers=["CPUExecutionProvider"])
    vocab = int(getattr(module, "config", None).vocab_size)
    rng = np.random.default_rng(0)
    worst = 0.0
    module.eval()
    for length in np.linspace(2, bundle.max_length, num=max(1, samples // 8)).astype(int):
        ids = rng.integers(5, vocab, size=(8, int(length)), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1::2, max(1, int(length) // 2) :] = 0  # half the rows padded
        ids[mask == 0] = bundle.pad_token_id or 0
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in bundle.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        expected = session.run([f"logits_{h}" for h in bundle.heads], feed)
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
            got = module(**tensors) if multitask else (module(**tensors).logits,)
        for want, have in zip(expected, got, strict=True):
            worst = max(worst, float(np.abs(want - have.float().numpy()).max()))
    if worst > tolerance:
        raise RecoveryError(
            f"the rebuilt model differs from {bundle.model_path('fp32').name} by up to {worst:.2e} "
            f"(tolerance {tolerance:.0e}): not written"
        )
    return worst


def recover_model(bundle_dir: str | Path, out_dir: str | Path, samples: int = 64, tolerance: float = 1e-4) -> Recovery:
    """Write a Hugging Face model folder rebuilt from ``bundle_dir``'s FP32 graph, checked for parity."""
    bundle = load_bundle(bundle_dir, verify=True)
    if "fp32" not in bundle.precisions:
        raise RecoveryError(f"{bundle_dir} has no FP32 graph to recover weights from")
    source = dict(bundle.manifest.get("source") or {})
    multitask = bool(source.get("multitask"))
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="shoppulse-recover-") as scratch:
        module = _build_module(bundle, source, Path(scratch))
        parameters = _load_weights(module, bundle.model_path("fp32"))
        worst = _check_parity(module, bundle, multitask, samples, tolerance)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if multitask:
        module.save(staging)
    else:
        module.save_pretrained(staging)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (Path(bundle.path) / name).is_file():
            shutil.copy2(Path(bundle.path) / name, staging / name)
    recovery = Recovery(out, worst, samples, parameters)
    note = {"bundle": str(bundle.path), "name": bundle.name, "version": bundle.version, **recovery.as_dict()}
    (staging / RECOVERY_NOTE).write_text(json.dumps(note, indent=2), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return recovery
