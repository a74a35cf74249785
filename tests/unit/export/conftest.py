"""Export tests need torch, transformers and onnx (the ``export`` extra); skip cleanly without them."""

from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a shared 2-core machine torch's spinning
    OpenMP threads made a 30-step fine-tune take 8 s instead of 0.2 s (measured)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
