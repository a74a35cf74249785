"""torch/transformers model → verified, optimised, quantised ONNX bundle (needs the `export` extra).

Importing this package does not import torch; ``build_bundle`` does, when called.
"""

from shoppulse.export.build import build_bundle
from shoppulse.export.parity import ParityError, ParityThresholds
from shoppulse.export.source import ExportError

__all__ = ["ExportError", "ParityError", "ParityThresholds", "build_bundle"]
