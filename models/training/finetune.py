"""Multi-task fine-tuning (sentiment + interest) of one encoder, and temperature calibration.

One encoder, two linear heads on [CLS], summed cross-entropy: serving then pays for one
forward pass per review for both tasks. The sentiment probability is calibrated by a
per-head temperature fitted on a held-out slice of train (never on dev), which the bundle
manifest carries and the serving ``Predictor`` applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from shoppulse.models.training.batching import bucketed_batches, pad_batch


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 2e-4
    warmup_fraction: float = 0.06
    label_smoothing: float = 0.05
    weight_decay: float = 0.01
    ngram_lr_scale: float = 20.0
    path_loss_weight: float = 0.5  # ensemble n-gram mode: weight of each path's own loss
    bf16: bool = False
    seed: int = 42


def multitask_loss(logits: Sequence, targets: Sequence, label_smoothing: float):  # type: ignore[no-untyped-def]
    import torch.nn.functional as F

    return sum(
        F.cross_entropy(head_logits.float(), head_targets, label_smoothing=label_smoothing)
        for head_logits, head_targets in zip(logits, targets, strict=True)
    )


def finetune_multitask(
    model,  # type: ignore[no-untyped-def]
    token_ids: Sequence[np.ndarray],
    targets: dict[str, np.ndarray],
    config: FinetuneConfig,
    checkpoint_path: Path,
    pad_id: int,
    show_progress: bool = True,
    checkpoint_every: int = 200,
    stop_at_step: int | None = None,
    device: str = "cpu",
) -> dict[str, float]:
    """Train (or resume) all heads of a ``MultiTaskClassifier`` in place on ``device``; ``targets`` holds
    label indices. The model is left on the CPU, ready to save."""
    import torch

    from shoppulse.models.training.loop import (
        Checkpoint,
        adamw,
        autocast,
        end_of_step,
        linear_warmup_decay,
        optimizer_step,
        progress,
        seed_step,
    )

    head_names = model.head_names
    lengths = [len(ids) for ids in token_ids]
    batches_per_epoch = len(bucketed_batches(lengths, config.batch_size, np.random.default_rng(0)))
    total = max(1, round(batches_per_epoch * config.epochs))
    model.to(device)
    optimizer = adamw(model, config.lr, config.weight_decay, lr_scale={"ngram.": config.ngram_lr_scale})
    scheduler = linear_warmup_decay(optimizer, round(total * config.warmup_fraction), total)
    checkpoint = Checkpoint(checkpoint_path, every=checkpoint_every)
    step, extra = checkpoint.load(model, optimizer, scheduler)
    smoothed = float(extra.get("loss", 0.0))
    model.train()
    bar = progress(total, step, "fine-tune (sentiment+interest)", show_progress)
    epoch_batches: list[np.ndarray] = []
    current_epoch = -1
    while step < total:
        epoch, index = divmod(step, batches_per_epoch)
        if epoch != current_epoch:
            epoch_batches = bucketed_batches(
                lengths, config.batch_size, np.random.default_rng([config.seed, 11, epoch])
            )
            current_epoch = epoch
        batch = epoch_batches[index]
        ids = pad_batch([token_ids[i] for i in batch], pad_id)
        mask = np.zeros_like(ids)
        for row, i in enumerate(batch):
            mask[row, : len(token_ids[i])] = 1
        seed_step(config.seed, step)
        with autocast(config.bf16, device):
            gold = [torch.from_numpy(targets[name][batch]).to(device) for name in head_names]
            encoder_logits, bag_logits = model.path_logits(
                torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
            )
            if bag_logits is None:
                loss = multitask_loss(encoder_logits, gold, config.label_smoothing)
            else:  # ensemble: the sum is what serving sees; each path is also trained on its own
                summed = [a + b for a, b in zip(encoder_logits, bag_logits, strict=True)]
                loss = multitask_loss(summed, gold, config.label_smoothing) + config.path_loss_weight * (
                    multitask_loss(encoder_logits, gold, config.label_smoothing)
                    + multitask_loss(bag_logits, gold, config.label_smoothing)
                )
        smoothed = optimizer_step(loss, model, optimizer, scheduler, smoothed)
        step += 1
        if end_of_step(step, total, smoothed, bar, checkpoint, model, optimizer, scheduler, stop_at_step):
            break  # an interruption on purpose (tests of --resume)
    bar.close()
    model.eval()
    model.to("cpu")
    return {"finetune_loss": round(smoothed, 4), "steps": total}


def predict_logits(  # type: ignore[no-untyped-def]
    model, token_ids: Sequence[np.ndarray], pad_id: int, batch_size: int = 128, device: str = "cpu"
) -> list[np.ndarray]:
    """Logits per head (``[n, labels]``, input order) with length-sorted batches, in eval mode on ``device``
    (the model is moved back to the CPU afterwards)."""
    import torch

    model.eval()
    model.to(device)
    order = np.argsort([len(ids) for ids in token_ids], kind="stable")
    outputs: list[list[np.ndarray]] = [[] for _ in model.head_names]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids = pad_batch([token_ids[i] for i in batch], pad_id)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                mask[row, : len(token_ids[i])] = 1
            for head, logits in enumerate(model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))):
                outputs[head].append(logits.float().cpu().numpy())
    model.to("cpu")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return [np.concatenate(chunks)[inverse] for chunks in outputs]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T): a one-parameter calibration.

    A golden-section search over log T is enough for one parameter and needs no optimiser state.
    """
    logits = logits.astype(np.float64)

    def nll(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_probs = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        return float(-log_probs[np.arange(len(labels)), labels].mean())

    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return round(float(np.exp((low + high) / 2)), 4)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class probability: how far confidence is from accuracy, on average."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return round(float(total), 4)
