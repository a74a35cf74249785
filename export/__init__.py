"""torch/transformers model → verified, optimised, quantised ONNX bundle (needs the `export` extra)."""
