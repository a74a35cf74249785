"""Resumable and reproducible: a run stopped at a checkpoint and resumed ends with the same
weights as one that never stopped (same batches, masks and dropout)."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from shoppulse.models.training.pretrain import EncoderSize, PretrainConfig, new_bert_mlm, pretrain_mlm  # noqa: E402

SIZE = EncoderSize(layers=1, hidden=16, heads=2, ffn=32)
CONFIG = PretrainConfig(epochs=2, batch_size=4, lr=1e-3, seed=3)


def _data() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    ids, words = [], []
    for length in rng.integers(4, 12, size=24):
        ids.append(np.concatenate([[2], rng.integers(5, 50, size=length - 2), [3]]))
        words.append(np.concatenate([[-1], np.arange(length - 2) // 2, [-1]]))
    return ids, words


def _model():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return new_bert_mlm(50, SIZE, max_length=16)


def _run(model, checkpoint: Path, stop_at_step: int | None = None) -> dict:  # type: ignore[no-untyped-def]
    ids, words = _data()
    return pretrain_mlm(
        model,
        ids,
        words,
        CONFIG,
        checkpoint,
        mask_token_id=4,
        first_normal_id=5,
        show_progress=False,
        checkpoint_every=0,
        stop_at_step=stop_at_step,
    )


def test_stopped_and_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    straight = _model()
    stats = _run(straight, tmp_path / "a.pt")
    assert stats["steps"] == 12  # 24 texts / batch 4 * 2 epochs

    interrupted = _model()
    _run(interrupted, tmp_path / "b.pt", stop_at_step=5)
    assert (tmp_path / "b.pt").is_file()
    resumed = _model()  # a new process would start from fresh weights and load the checkpoint
    _run(resumed, tmp_path / "b.pt")

    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(straight.state_dict().values(), _model().state_dict().values(), strict=True)
    )
    assert changed, "training did not move the weights"
