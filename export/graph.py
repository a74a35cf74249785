"""torch module → ONNX file, optional transformer fusions, optional dynamic INT8 quantisation.

Each step writes a file and returns facts for the manifest; none of them decides whether
the result is good — ``export.parity`` does, by running the files.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from shoppulse.export.source import ExportError, ExportSource

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
_DUMMY_TEXTS = ("质量很好，物流也快，下次还会再来买", "差评")


def export_onnx(source: ExportSource, out_file: Path, opset: int = DEFAULT_OPSET, max_length: int = 128) -> None:
    """Export with the TorchScript exporter (``dynamo=False``), dynamic batch and sequence axes.

    Why not the default dynamo exporter: its graph gets no fusions from ONNX Runtime's
    transformer optimiser. The dummy batch has two rows of different lengths, so the
    traced graph sees real padding and no "mask is all ones" shortcut is baked in.
    """
    import torch

    encoded = source.tokenizer(
        list(_DUMMY_TEXTS), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    args = []
    for name in source.input_names:
        if name in encoded:
            args.append(encoded[name].to(torch.int64))
        else:  # token_type_ids the tokenizer did not produce
            args.append(torch.zeros_like(encoded["input_ids"], dtype=torch.int64))
    output_names = [f"logits_{head}" for head in source.heads]
    dynamic_axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in source.input_names}
    dynamic_axes.update({name: {0: "batch"} for name in output_names})
    source.module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(
            source.module,
            tuple(args),
            str(out_file),
            input_names=source.input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    source.module.eval()  # the exporter restores the module's previous mode; keep eval for parity


def _attention_shape(config: dict[str, Any]) -> tuple[int, int]:
    heads = config.get("num_attention_heads") or config.get("n_heads") or 0
    hidden = config.get("hidden_size") or config.get("dim") or 0
    return int(heads), int(hidden)


def fuse(source: ExportSource, in_file: Path, out_file: Path) -> dict[str, Any]:
    """Apply ONNX Runtime's BERT fusions (attention, layer-norm, GELU, embeddings).

    Returns the fused-operator counts; on failure the input is copied unchanged and the
    error is reported, because an unfused graph is still correct and parity decides.
    """
    import shutil

    from onnxruntime.transformers.optimizer import optimize_model

    num_heads, hidden_size = _attention_shape(source.config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimized = optimize_model(
                str(in_file), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0
            )
        stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(out_file))
        return {"applied": True, "fused_operators": stats}
    except Exception as exc:  # the optimiser raises assorted errors on graphs it does not know
        log.warning("transformer fusion failed, keeping the plain graph: %s", exc)
        shutil.copyfile(in_file, out_file)
        return {"applied": False, "error": str(exc)[:500]}


def quantize_int8(in_file: Path, out_file: Path) -> dict[str, Any]:
    """Dynamic INT8 quantisation of the weights (activations quantised at run time).

    ``DefaultTensorType`` is needed on fused graphs: without it quantize_dynamic fails with
    "Unable to find data type for weight_name=…" (measured, see FINDINGS.md).
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    # quantize_dynamic logs one INFO line per tensor and a generic "consider pre-processing"
    # WARNING on the root logger; failures raise, so nothing is lost by silencing them.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            str(in_file),
            str(out_file),
            weight_type=QuantType.QInt8,
            per_channel=False,
            reduce_range=False,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    except Exception as exc:
        raise ExportError(f"INT8 quantisation failed: {exc}; export with --quantize none") from exc
    finally:
        logging.disable(previous)
    return {"method": "dynamic", "weight_type": "QInt8", "per_channel": False}


def operator_counts(model_file: Path) -> dict[str, int]:
    """How many nodes of each op type the graph has (for the report)."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
