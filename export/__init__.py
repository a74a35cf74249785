"""torch/transformers model → verified, optimised, quantised ONNX bundle (needs the `export` extra).

Importing this package does not import torch; ``build_bundle`` does, when called.
"""

from export.build import build_bundle
from export.parity import ParityError, ParityThresholds
from export.source import ExportError

__all__ = ["ExportError", "ParityError", "ParityThresholds", "build_bundle"]
