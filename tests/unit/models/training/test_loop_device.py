"""Where training runs: ``--device`` resolved once, errors before any work."""

import pytest

torch = pytest.importorskip("torch")

from shoppulse.models.training.loop import autocast, resolve_device  # noqa: E402


def test_auto_takes_a_gpu_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")  # asked for the CPU: the CPU, GPU or not


def test_auto_falls_back_to_the_cpu_and_cuda_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="one of auto, cpu, cuda"):
        resolve_device("gpu")


def test_autocast_follows_the_device_type() -> None:
    with autocast(True, "cpu"):
        product = torch.ones(4, 4) @ torch.ones(4, 4)
    assert product.dtype == torch.bfloat16
    with autocast(False, torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
