"""Heads from several bundles served as one predictor.

Why: a shop that brings its own sentiment model (a bundle with only a ``sentiment`` head) should
keep the interest tagging of the default bundle, and one that brings both should not have to merge
them into one graph. ``ComposedPredictor`` takes each head from the bundle that serves it and looks
like a ``Predictor`` to the enrich stage: the same ``encode``/``predict_encoded_async``/``predict``,
and a ``bundle`` view with the merged heads. Each part tokenizes with its own tokenizer and runs on
its own sessions, so two separate bundles cost two forward passes; a bundle with both heads is
served alone, in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoppulse.models.serving.bundle import DEFAULT_BUNDLE, Bundle, BundleError, load_bundle
from shoppulse.models.serving.inference import Predictor


@dataclass(frozen=True)
class ComposedBundle:
    """What the enrich stage reads of a bundle (name, version, heads, clause threshold), merged."""

    name: str
    version: str
    heads: dict[str, list[str]]
    clause_threshold: float
    parts: list[Bundle] = field(repr=False)


class ComposedPending:
    """The parts' pending results; ``result()`` merges each part's heads."""

    def __init__(self, parts: Sequence[tuple[Any, Sequence[str]]]) -> None:
        self.parts = list(parts)

    def done(self) -> bool:
        return all(pending.done() for pending, _ in self.parts)

    def result(self, timeout: float | None = None) -> dict[str, np.ndarray]:
        merged: dict[str, np.ndarray] = {}
        for pending, heads in self.parts:
            probs = pending.result(timeout)
            merged.update({head: probs[head] for head in heads})
        return merged

    @property
    def finished_at(self) -> float:
        return max(pending.finished_at for pending, _ in self.parts)

    @property
    def seconds(self) -> float:
        return max(pending.seconds for pending, _ in self.parts)

    @property
    def running_seconds(self) -> float:
        return max(pending.running_seconds for pending, _ in self.parts)


class ComposedPredictor:
    """Each head from one of several predictors; ``parts`` lists (predictor, the heads it serves)."""

    def __init__(self, parts: Sequence[tuple[Predictor, Sequence[str]]]) -> None:
        if not parts:
            raise ValueError("a composed predictor needs at least one part")
        served: dict[str, str] = {}
        for predictor, heads in parts:
            if not heads:
                raise BundleError(f"{predictor.bundle.path}: serves no head here")
            for head in heads:
                if head not in predictor.bundle.heads:
                    has = list(predictor.bundle.heads)
                    raise BundleError(f"{predictor.bundle.path}: has no {head!r} head (it has {has})")
                if head in served:
                    raise BundleError(f"head {head!r} would come from both {served[head]} and {predictor.bundle.path}")
                served[head] = str(predictor.bundle.path)
        self.parts = [(predictor, list(heads)) for predictor, heads in parts]
        bundles = [predictor.bundle for predictor, _ in self.parts]
        # Clause verdicts are the sentiment head's: its bundle's calibrated threshold applies.
        sentiment = next((p.bundle for p, heads in self.parts if "sentiment" in heads), bundles[0])
        self.bundle = ComposedBundle(
            name="+".join(b.name for b in bundles),
            version="+".join(b.version for b in bundles),
            heads={head: predictor.bundle.heads[head] for predictor, heads in self.parts for head in heads},
            clause_threshold=sentiment.clause_threshold,
            parts=bundles,
        )
        self.precision = "+".join(dict.fromkeys(predictor.precision for predictor, _ in self.parts))
        self.heads = dict(self.bundle.heads)

    @property
    def sessions(self) -> int:
        return self.parts[0][0].sessions

    @property
    def intra_op_threads(self) -> int:
        return self.parts[0][0].intra_op_threads

    def encode(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """One encoding per part (each bundle has its own tokenizer)."""
        return [predictor.encode(texts) for predictor, _ in self.parts] if texts else []

    def predict_encoded_async(
        self, encoded: Sequence[Sequence[Sequence[int]]], batch_size: int = 32
    ) -> ComposedPending:
        per_part = list(encoded) if encoded else [[] for _ in self.parts]
        return ComposedPending(
            [
                (predictor.predict_encoded_async(part_encoded, batch_size), heads)
                for (predictor, heads), part_encoded in zip(self.parts, per_part, strict=True)
            ]
        )

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Per head an ``[len(texts), n_labels]`` array of probabilities, from the part that serves it."""
        return self.predict_encoded_async(self.encode(texts), batch_size).result()


def head_sources(
    main: Bundle, interest_bundle: Bundle | None, default_interest: Bundle | None
) -> list[tuple[Bundle, list[str]]]:
    """Which bundle serves which head: the main bundle's own heads, its interest head replaced by
    ``interest_bundle``'s when given, else added from ``default_interest`` when the main bundle has none.
    """
    own = [head for head in main.heads if not (interest_bundle is not None and head == "interest")]
    sources: list[tuple[Bundle, list[str]]] = [(main, own)] if own else []
    extra = interest_bundle
    if extra is None and "interest" not in main.heads:
        extra = default_interest
    if extra is not None:
        if "interest" not in extra.heads:
            raise BundleError(f"{extra.path}: has no interest head (it has {list(extra.heads)})")
        sources.append((extra, ["interest"]))
    if not sources:
        raise BundleError(f"{main.path}: serves no head")
    return sources


def load_sources(
    bundle_dir: Path, interest_bundle_dir: Path | None, default_interest: bool
) -> list[tuple[Bundle, list[str]]]:
    """Load (verified) the bundles the enrich settings name, and say which serves which head."""
    main = load_bundle(bundle_dir)
    interest = load_bundle(interest_bundle_dir) if interest_bundle_dir is not None else None
    default = None
    if interest is None and "interest" not in main.heads and default_interest:
        default = load_bundle(DEFAULT_BUNDLE)
    return head_sources(main, interest, default)
