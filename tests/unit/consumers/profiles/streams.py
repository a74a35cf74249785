"""Generated ``user-signals`` streams and a reference profile computed by plain formulas.

Why a separate reference: it computes each profile straight from the definitions in the issue
(Σ w·tagweight·2^(−(T−ts)/H), counts, Decimal sums, the N latest products), over the set of
distinct signals, so comparing it with the incremental fold (or with what the running stage
published) checks order independence, idempotence and the decay arithmetic together.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

TAGS = ("数码", "图书", "服饰", "食品", "家居")
ASPECTS = ("物流", "质量", "价格", "服务")
ACTION_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "favorite": 3.0, "search": 0.5}
DAY_MS = 86_400_000


def make_signals(seed: int, users: int, n: int, start_ms: int = 1_780_000_000_000) -> list[dict[str, Any]]:
    """``n`` distinct signals from ``users`` users over about 30 days of event time."""
    rng = random.Random(seed)
    signals: list[dict[str, Any]] = []
    for i in range(n):
        user = f"u{rng.randrange(users):06d}"
        ts = start_ms + rng.randrange(30 * DAY_MS)
        kind = rng.choices(("click", "review", "order"), weights=(6, 2, 2))[0]
        picked = rng.sample(TAGS, rng.randint(0, 2))
        raw = [rng.random() + 0.01 for _ in picked]
        tags = {tag: w / sum(raw) for tag, w in zip(picked, raw, strict=True)}
        product = f"p{rng.randrange(60):06d}"
        signal: dict[str, Any] = {
            "schema_version": 1,
            "kind": kind,
            "event_id": f"{kind[0]}-{seed}-{i:08d}",
            "user_id": user,
            "ts": ts,
            "tags": tags,
            "category": None,
            "product_id": product,
            "product_ids": [product],
            "sentiment": None,
            "aspects": {},
            "amount": None,
            "currency": None,
            "model": {"name": "test", "version": "0"},
            "source": {"topic": kind + "s", "partition": 0, "offset": i},
        }
        if kind == "click":
            action = rng.choice(tuple(ACTION_WEIGHTS))
            signal.update(action=action, weight=ACTION_WEIGHTS[action])
            if action == "search":
                signal.update(product_id=None, product_ids=[])
        elif kind == "review":
            label = rng.choice(("positive", "negative"))
            signal.update(
                action="review",
                weight=2.5,
                sentiment={"label": label, "probability": round(rng.uniform(0.5, 1.0), 4)},
                aspects={a: rng.choice(("positive", "negative")) for a in rng.sample(ASPECTS, rng.randint(0, 2))},
            )
        else:
            items = [f"p{rng.randrange(60):06d}" for _ in range(rng.randint(1, 3))]
            cents = rng.randrange(100, 999_999)
            signal.update(
                action="order",
                weight=5.0,
                product_id=None,
                product_ids=items,
                amount=f"{Decimal(cents) / 100:.2f}",
                currency=rng.choice(("CNY", "CNY", "CNY", "USD")),
            )
        signals.append(signal)
    return signals


def disorder(signals: list[dict[str, Any]], seed: int, duplicate_fraction: float = 0.2) -> list[dict[str, Any]]:
    """The signals as the pipeline may deliver them, with about ``duplicate_fraction`` more records.

    Each input partition's signals keep their offset order (enrich writes a user's signals in input
    order) but the partitions' streams interleave at random, so event time is out of order; runs of
    records are replayed later, as a restart of either stage replays what was not committed.
    """
    rng = random.Random(seed)
    streams: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for s in sorted(signals, key=lambda s: s["source"]["offset"]):
        streams[(s["source"]["topic"], s["source"]["partition"])].append(s)
    queues = [list(stream) for stream in streams.values()]
    out: list[dict[str, Any]] = []
    while any(queues):
        out.append(rng.choice([q for q in queues if q]).pop(0))
    replayed = 0
    while replayed < len(signals) * duplicate_fraction:
        at = rng.randrange(len(out))
        run = out[at : at + rng.randint(1, 10)]
        later = min(len(out), at + len(run) + rng.randint(0, 50))
        out[later:later] = run
        replayed += len(run)
    return out


def on_own_partitions(signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each signal from an input partition of its own: any arrival order is then one the pipeline can produce."""
    return [{**s, "source": {"topic": "inputs", "partition": i, "offset": 0}} for i, s in enumerate(signals)]


def reference_profiles(
    signals: list[dict[str, Any]], half_life_days: float, top_k: int, recent_products: int
) -> dict[str, dict[str, Any]]:
    """Every user's expected profile, straight from the definitions (duplicates counted once)."""
    distinct: dict[str, dict[str, Any]] = {}
    for s in signals:
        distinct.setdefault(s["event_id"], s)
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in distinct.values():
        by_user[s["user_id"]].append(s)
    half_life_ms = half_life_days * DAY_MS
    return {user: _reference_one(user, mine, half_life_ms, top_k, recent_products) for user, mine in by_user.items()}


def _reference_one(
    user: str, signals: list[dict[str, Any]], half_life_ms: float, top_k: int, keep: int
) -> dict[str, Any]:
    as_of = max(s["ts"] for s in signals)
    scores: dict[str, float] = defaultdict(float)
    for s in signals:
        for tag, tw in s["tags"].items():
            if s["weight"] * tw:
                scores[tag] += s["weight"] * tw * 2 ** (-(as_of - s["ts"]) / half_life_ms)
    reviews = [s for s in signals if s["sentiment"] is not None]

    def stats(items: list[tuple[str, float]]) -> dict[str, Any]:
        return {
            "positive": sum(1 for label, _ in items if label == "positive"),
            "negative": sum(1 for label, _ in items if label == "negative"),
            "reviews": len(items),
            "mean_probability": sum(p for _, p in items) / len(items) if items else None,
        }

    def top_tag(tags: dict[str, float]) -> str | None:
        positive = {t: w for t, w in tags.items() if w > 0}
        if not positive:
            return None
        best = max(positive.values())
        return min(t for t, w in positive.items() if w == best)

    by_tag: dict[str, list[tuple[str, float]]] = defaultdict(list)
    by_aspect: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in reviews:
        entry = (r["sentiment"]["label"], r["sentiment"]["probability"])
        if (tag := top_tag(r["tags"])) is not None:
            by_tag[tag].append(entry)
        for aspect, label in r["aspects"].items():
            by_aspect[aspect].append((label, r["sentiment"]["probability"]))

    orders = [s for s in signals if s["amount"] is not None]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for o in orders:
        totals[o["currency"]] += Decimal(o["amount"])
        counts[o["currency"]] += 1

    latest: dict[str, tuple[int, str, str]] = {}
    for s in signals:
        for pid in s["product_ids"] or ([s["product_id"]] if s["product_id"] else []):
            latest[pid] = max(latest.get(pid, (0, "", "")), (s["ts"], s["event_id"], s["action"]))
    recent = sorted(latest.items(), key=lambda kv: (*kv[1], kv[0]), reverse=True)[:keep]

    return {
        "user_id": user,
        "as_of": as_of,
        "version": len(signals),
        "interests": dict(scores),
        "top_tags": [t for t, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]],
        "sentiment": {
            "overall": stats([(r["sentiment"]["label"], r["sentiment"]["probability"]) for r in reviews]),
            "by_tag": {t: stats(v) for t, v in by_tag.items()},
            "by_aspect": {a: stats(v) for a, v in by_aspect.items()},
        },
        "orders": {
            "count": len(orders),
            "totals": {c: str(t) for c, t in totals.items()},
            "average_order_value": {
                c: str((t / counts[c]).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)) for c, t in totals.items()
            },
            "first_order_ts": min((o["ts"] for o in orders), default=None),
            "last_order_ts": max((o["ts"] for o in orders), default=None),
        },
        "recent_products": [
            {"product_id": pid, "action": action, "ts": ts, "event_id": eid} for pid, (ts, eid, action) in recent
        ],
    }


def profile_mismatches(actual: dict[str, Any], expected: dict[str, Any], rel: float = 1e-9) -> list[str]:
    """Where a rendered profile differs from the reference: scores within ``rel``, the rest exact."""
    problems: list[str] = []
    for key in ("user_id", "as_of", "version", "orders", "recent_products"):
        if actual[key] != expected[key]:
            problems.append(f"{key}: {actual[key]!r} != {expected[key]!r}")
    if set(actual["interests"]) != set(expected["interests"]):
        problems.append(f"interest tags {sorted(actual['interests'])} != {sorted(expected['interests'])}")
    for tag, score in expected["interests"].items():
        got = actual["interests"].get(tag)
        if got is None or not math.isclose(got, score, rel_tol=rel, abs_tol=0.0):
            problems.append(f"interests[{tag}]: {got!r} != {score!r}")
    top = [t["tag"] for t in actual["top_tags"]]
    if top != expected["top_tags"]:
        problems.append(f"top_tags {top} != {expected['top_tags']}")
    for group in ("overall", "by_tag", "by_aspect"):
        a_group, e_group = actual["sentiment"][group], expected["sentiment"][group]
        pairs = [(a_group, e_group)] if group == "overall" else None
        if pairs is None:
            if set(a_group) != set(e_group):
                problems.append(f"sentiment.{group} keys {sorted(a_group)} != {sorted(e_group)}")
                continue
            pairs = [(a_group[k], e_group[k]) for k in e_group]
        for a, e in pairs:
            if (a["positive"], a["negative"], a["reviews"]) != (e["positive"], e["negative"], e["reviews"]):
                problems.append(f"sentiment.{group} counts {a} != {e}")
            elif e["mean_probability"] is not None and not math.isclose(
                a["mean_probability"], e["mean_probability"], rel_tol=rel
            ):
                problems.append(f"sentiment.{group} mean {a} != {e}")
    return problems
