"""An incident to inject into the simulated stream: one product's reviews turn into complaints about one aspect.

Why: stage 3's alerts must fire on a real incident and stay quiet otherwise, and a newcomer
should see one in the demo. The product gets a steady trickle of reviews from the stream's
first event (its baseline), and from ``start_s`` of event time on, for ``duration_s``, a burst
of mostly negative reviews whose clause names the aspect (e.g. 「物流太慢了」).
"""

from __future__ import annotations

from dataclasses import dataclass

# Clauses that mention the aspect through a word of models/data/aspects.json, both polarities.
PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "物流": (
        ("物流很快，第二天就到了", "快递很给力", "发货速度快", "配送准时"),
        ("物流太慢了，等了一个星期", "快递拖了五天才到", "发货太慢，催了好几次", "配送员态度恶劣，东西还压坏了"),
    ),
    "包装": (
        ("包装很严实", "包装完好无损", "盒子很精致"),
        ("包装破了，里面东西散了一地", "包装太简陋，盒子都压扁了", "封口是开的，包装很差"),
    ),
    "质量": (
        ("质量很好，做工精细", "品质不错，值得购买", "做工扎实"),
        ("质量太差了，用了两天就坏了", "做工粗糙，到处是瑕疵", "收到就坏了，质量堪忧"),
    ),
}


@dataclass(frozen=True)
class Incident:
    """Rates are reviews per minute of event time."""

    aspect: str = "物流"
    start_s: float = 600.0
    duration_s: float = 600.0
    baseline_per_min: float = 6.0
    burst_per_min: float = 60.0
    baseline_negative: float = 0.15
    burst_negative: float = 0.9

    def __post_init__(self) -> None:
        if self.aspect not in PHRASES:
            raise ValueError(f"incident aspect must be one of {', '.join(PHRASES)}, not {self.aspect!r}")
        if self.start_s < 0 or self.duration_s <= 0 or self.baseline_per_min <= 0 or self.burst_per_min <= 0:
            raise ValueError("incident start must be >= 0, its duration and rates > 0")

    @classmethod
    def parse(cls, spec: str) -> Incident:
        """``ASPECT[@START_S[+DURATION_S]]``, e.g. ``物流@600+300``: from 10 minutes of event time, for 5."""
        aspect, _, timing = spec.partition("@")
        start, _, duration = timing.partition("+")
        try:
            return cls(
                aspect=aspect.strip(),
                start_s=float(start) if start else cls.start_s,
                duration_s=float(duration) if duration else cls.duration_s,
            )
        except ValueError as exc:
            raise ValueError(
                f"--incident {spec!r}: {exc} (expected ASPECT[@START_S[+DURATION_S]], e.g. 物流@600)"
            ) from None

    def in_burst(self, offset_ms: int) -> bool:
        return self.start_s * 1000 <= offset_ms < (self.start_s + self.duration_s) * 1000

    def interval_ms(self, offset_ms: int) -> int:
        """Event time until the product's next review, at ``offset_ms`` after the stream's start."""
        per_min = self.burst_per_min if self.in_burst(offset_ms) else self.baseline_per_min
        return max(1, int(60_000 / per_min))

    def negative_share(self, offset_ms: int) -> float:
        return self.burst_negative if self.in_burst(offset_ms) else self.baseline_negative

    def phrase(self, negative: bool, pick: int) -> str:
        positive_phrases, negative_phrases = PHRASES[self.aspect]
        phrases = negative_phrases if negative else positive_phrases
        return phrases[pick % len(phrases)]
