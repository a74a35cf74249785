"""Pieces every training phase shares: schedule, seeding per step, resumable checkpoints, progress.

Determinism and resumability come from one rule: everything random in step ``s`` is seeded
from ``(seed, s)`` and each epoch's batch order from ``(seed, epoch)``. A run resumed from the
checkpoint at step ``s`` therefore takes the same batches, masks and dropout as the run that
never stopped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup: int, total: int):  # type: ignore[no-untyped-def]
    """Linear warmup to the peak rate over ``warmup`` steps, then linear decay to zero at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw(
    model: torch.nn.Module, lr: float, weight_decay: float = 0.01, lr_scale: dict[str, float] | None = None
) -> torch.optim.AdamW:
    """AdamW without decay on biases and LayerNorm weights (the BERT convention).

    ``lr_scale`` maps a parameter-name prefix to a multiplier of ``lr`` (the n-gram bag's
    embeddings start from scratch and need a far higher rate than a pretrained encoder).
    """
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        scale = next((m for prefix, m in (lr_scale or {}).items() if name.startswith(prefix)), 1.0)
        no_decay = param.ndim < 2 or "LayerNorm" in name or "norm" in name.lower()
        groups.setdefault((lr * scale, 0.0 if no_decay else weight_decay), []).append(param)
    param_groups = [{"params": ps, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), ps in groups.items()]
    return torch.optim.AdamW(param_groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def seed_step(seed: int, step: int) -> None:
    torch.manual_seed(seed * 1_000_003 + step)


@dataclass
class Checkpoint:
    """One file per phase, replaced atomically every ``every`` steps and at the end."""

    path: Path
    every: int = 200

    def save(
        self, step: int, model: torch.nn.Module, optimizer: Any, scheduler: Any, extra: dict | None = None
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(
            {
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "extra": extra or {},
            },
            tmp,
        )
        os.replace(tmp, self.path)

    def load(self, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> tuple[int, dict]:
        """Restore state; returns ``(step, extra)``, or ``(0, {})`` when there is no checkpoint."""
        if not self.path.is_file():
            return 0, {}
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return int(state["step"]), dict(state.get("extra", {}))

    def due(self, step: int, total: int) -> bool:
        return step == total or (self.every > 0 and step % self.every == 0)


def progress(total: int, initial: int, desc: str, enabled: bool = True):  # type: ignore[no-untyped-def]
    """A tqdm bar (to stderr) that the loops update with the running loss."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True, mininterval=2.0)


def steps_per_epoch(n_items: int, batch_size: int) -> int:
    return math.ceil(n_items / batch_size)


def autocast(enabled: bool, device: torch.device | str = "cpu"):  # type: ignore[no-untyped-def]
    """bfloat16 autocast: on CPU about 2x the FP32 matmul rate on AVX-512 BF16 machines."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto``: the first CUDA GPU when torch sees one, else the CPU; ``cuda`` without one is an error.

    The device changes speed, not the recipe: a phase's batches, masks and dropout seeds are the
    same on either (the numbers still differ in the last digits, as float sums do across kernels).
    """
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU (a CPU-only torch build, or no driver)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def optimizer_step(
    loss: torch.Tensor, model: torch.nn.Module, optimizer: Any, scheduler: Any, smoothed: float
) -> float:
    """Backward, clip to norm 1, step optimizer and schedule; return the loss EMA (0.98) for the bar."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    value = float(loss.detach())
    return value if smoothed == 0.0 else 0.98 * smoothed + 0.02 * value


def end_of_step(  # type: ignore[no-untyped-def]
    step: int,
    total: int,
    smoothed: float,
    bar,
    checkpoint: Checkpoint,
    model,
    optimizer,
    scheduler,
    stop_at_step: int | None,
) -> bool:
    """Progress bar, periodic checkpoint; True when the run must stop here (a deliberate interruption)."""
    bar.update(1)
    bar.set_postfix(loss=f"{smoothed:.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
    if checkpoint.due(step, total) or step == stop_at_step:
        checkpoint.save(step, model, optimizer, scheduler, {"loss": smoothed})
    return step == stop_at_step
