"""Masked-LM pretraining of a small BERT on the training reviews, with jieba whole-word masking.

No hub is reachable, so the encoder learns Chinese from the reviews themselves before it is
fine-tuned. The LM head is applied only at masked positions (~15% of tokens): with a
vocabulary of a few thousand entries the full-sequence projection would otherwise cost a
third of the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shoppulse.models.training.batching import bucketed_batches, pad_batch
from shoppulse.models.training.wwm import IGNORE_INDEX, mask_whole_words


@dataclass(frozen=True)
class EncoderSize:
    """The shape of the encoder; the default is sized for ≥600 reviews/s INT8 on 2 CPU cores."""

    layers: int = 4
    hidden: int = 192
    heads: int = 3
    ffn: int = 768

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class PretrainConfig:
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 1e-3
    warmup_fraction: float = 0.06
    mask_prob: float = 0.15
    bf16: bool = True
    seed: int = 42


def new_bert_mlm(vocab_size: int, size: EncoderSize, max_length: int, pad_id: int = 0):  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.ffn,
        max_position_embeddings=max(max_length, 128),
        type_vocab_size=2,
        pad_token_id=pad_id,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    return BertForMaskedLM(config)


def _accepts_attn_kwarg() -> bool:
    import inspect

    from transformers import BertForMaskedLM

    return "attn_implementation" in inspect.signature(BertForMaskedLM.__init__).parameters


def mlm_loss(model, input_ids, attention_mask, labels):  # type: ignore[no-untyped-def]
    """Cross-entropy of the LM head over masked positions only."""
    import torch.nn.functional as F

    hidden = model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    selected = labels != IGNORE_INDEX
    logits = model.cls(hidden[selected])
    return F.cross_entropy(logits.float(), labels[selected])


def pretrain_mlm(
    model,  # type: ignore[no-untyped-def]
    token_ids: Sequence[np.ndarray],
    word_ids: Sequence[np.ndarray],
    config: PretrainConfig,
    checkpoint_path: Path,
    mask_token_id: int,
    first_normal_id: int,
    show_progress: bool = True,
    checkpoint_every: int = 200,
    stop_at_step: int | None = None,
    device: str = "cpu",
) -> dict[str, float]:
    """Run (or resume) MLM pretraining in place on ``device``; returns the final smoothed loss and step count.

    The model is left on the CPU, ready to save.
    """
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

    lengths = [len(ids) for ids in token_ids]
    batches_per_epoch = len(bucketed_batches(lengths, config.batch_size, np.random.default_rng(0)))
    total = max(1, round(batches_per_epoch * config.epochs))
    model.to(device)
    optimizer = adamw(model, config.lr)
    scheduler = linear_warmup_decay(optimizer, round(total * config.warmup_fraction), total)
    checkpoint = Checkpoint(checkpoint_path, every=checkpoint_every)
    step, extra = checkpoint.load(model, optimizer, scheduler)
    smoothed = float(extra.get("loss", 0.0))
    vocab_size = model.config.vocab_size
    model.train()
    bar = progress(total, step, "pretrain (MLM, wwm)", show_progress)
    epoch_batches: list[np.ndarray] = []
    current_epoch = -1
    while step < total:
        epoch, index = divmod(step, batches_per_epoch)
        if epoch != current_epoch:
            epoch_batches = bucketed_batches(lengths, config.batch_size, np.random.default_rng([config.seed, epoch]))
            current_epoch = epoch
        batch = epoch_batches[index]
        rng = np.random.default_rng([config.seed, 7, step])
        ids = pad_batch([token_ids[i] for i in batch], 0)
        words = pad_batch([word_ids[i] for i in batch], 0, fill=-1)
        masked, labels = mask_whole_words(ids, words, rng, mask_token_id, vocab_size, first_normal_id, config.mask_prob)
        seed_step(config.seed, step)
        with autocast(config.bf16, device):
            loss = mlm_loss(
                model,
                torch.from_numpy(masked).to(device),
                torch.from_numpy((ids != 0).astype(np.int64)).to(device),
                torch.from_numpy(labels).to(device),
            )
        smoothed = optimizer_step(loss, model, optimizer, scheduler, smoothed)
        step += 1
        if end_of_step(step, total, smoothed, bar, checkpoint, model, optimizer, scheduler, stop_at_step):
            break  # an interruption on purpose (tests of --resume)
    bar.close()
    model.eval()
    model.to("cpu")
    return {"mlm_loss": round(smoothed, 4), "steps": total}
