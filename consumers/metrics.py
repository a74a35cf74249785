"""Every Prometheus metric shoppulse exposes, in one place.

Why one module: the Grafana dashboard, the alert rules and their tests refer to these
names, so they must be defined once. Labels are bounded: topic, partition, reason,
head, label, tag, stage; never user_id, product_id or any free text.
"""

from __future__ import annotations

import platform

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from shoppulse.consumers import __version__

REGISTRY: CollectorRegistry = DEFAULT_REGISTRY

# Latency buckets from 1 ms to 30 s: micro-batches are tens of ms, end-to-end can be seconds under lag.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

BUILD_INFO = Info("shoppulse_build", "shoppulse build information")
BUILD_INFO.info({"version": __version__, "python": platform.python_version()})

MODEL_INFO = Gauge(
    "shoppulse_model_info", "The model bundle in use (value 1)", ["stage", "name", "version", "precision"]
)
MODEL_LOADED = Gauge("shoppulse_model_loaded", "1 when the model bundle is loaded and verified", ["stage"])

EVENTS_CONSUMED = Counter("shoppulse_events_consumed_total", "Input events read from Kafka", ["stage", "topic"])
EVENTS_PRODUCED = Counter(
    "shoppulse_events_produced_total", "Output records acknowledged by the broker", ["stage", "topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "shoppulse_events_dead_lettered_total", "Input events sent to dead-letter", ["stage", "topic", "reason"]
)
PRODUCE_ERRORS = Counter(
    "shoppulse_produce_errors_total", "Output records the broker did not acknowledge", ["stage", "topic"]
)

BATCH_SIZE = Histogram("shoppulse_batch_size", "Events per micro-batch", ["stage"], buckets=_BATCH_BUCKETS)
BATCH_FILL_RATIO = Histogram(
    "shoppulse_batch_fill_ratio",
    "Micro-batch size divided by max_batch",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0),
)
INFERENCE_SECONDS = Histogram(
    "shoppulse_inference_seconds",
    "Model time per batch, tokenization included (pipelined: also the wait behind the previous batch)",
    ["stage", "model", "head"],
    buckets=_LATENCY_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    "shoppulse_end_to_end_seconds",
    "From the event's own timestamp to its outputs being acknowledged",
    ["stage", "topic"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "shoppulse_consumer_lag",
    "Messages behind the high watermark received with fetched data",
    ["stage", "topic", "partition"],
)
IN_FLIGHT = Gauge("shoppulse_in_flight_events", "Events consumed but not yet committed", ["stage"])
PAUSED_PARTITIONS = Gauge("shoppulse_paused_partitions", "Partitions paused for back-pressure", ["stage"])
ASSIGNED_PARTITIONS = Gauge("shoppulse_assigned_partitions", "Partitions assigned to this process", ["stage"])
CACHE_REQUESTS = Counter("shoppulse_cache_requests_total", "Title-tag cache lookups", ["stage", "cache", "result"])
COMMITS = Counter("shoppulse_commits_total", "Offset commits (or committed transactions)", ["stage"])
TRANSACTION_ABORTS = Counter("shoppulse_transaction_aborts_total", "Aborted transactions", ["stage"])
SENTIMENT_EMITTED = Counter("shoppulse_sentiment_labels_total", "Sentiment labels emitted (drift)", ["stage", "label"])
INTEREST_TAGS_EMITTED = Counter(
    "shoppulse_interest_tags_total", "Top interest tag per event emitted (drift)", ["stage", "tag"]
)
PROFILES_UPDATED = Counter("shoppulse_profiles_updated_total", "Profile changes applied", ["stage"])
PROFILES_PUBLISHED = Counter("shoppulse_profiles_published_total", "Profiles published to user-profiles", ["stage"])
SIGNALS_DUPLICATE = Counter(
    "shoppulse_signals_duplicate_total",
    "Signals ignored because their event_id was already applied",
    ["stage"],
)
OFFSET_HOLES = Counter(
    "shoppulse_offset_holes_total",
    "Holes in the offsets the stream delivered, re-read from the broker, by outcome "
    "(recovered: skipped records applied; empty: transaction markers only; redelivered: a skipped "
    "tail sought back for the stream to deliver again; failed: the read or the seek failed)",
    ["stage", "outcome"],
)
SIGNALS_REREAD = Counter(
    "shoppulse_signals_reread_total",
    "Records the stream skipped that were re-read from the broker and applied",
    ["stage"],
)
BROKER_UP = Gauge("shoppulse_broker_reachable", "1 when the last broker metadata request succeeded", ["stage"])

# Stage 3: per-category series. Labels are taxonomy categories and tags, known aspects and ISO
# currency codes only: never a product id.
INSIGHT_FACTS = Counter(
    "shoppulse_insight_facts_total", "Facts folded into product/category rows, by result", ["stage", "result"]
)
LATE_EVENTS = Counter(
    "shoppulse_late_events_total", "Events later than their window's grace period (not counted)", ["stage", "topic"]
)
INSIGHT_REVIEWS = Counter(
    "shoppulse_category_reviews_total", "Reviews per category and sentiment", ["category", "tag", "sentiment"]
)
INSIGHT_ASPECTS = Counter(
    "shoppulse_category_aspect_mentions_total", "Aspect verdicts per category", ["category", "aspect", "sentiment"]
)
INSIGHT_ACTIONS = Counter(
    "shoppulse_category_actions_total",
    "Views, clicks, carts, favorites, orders per category",
    ["category", "tag", "action"],
)
INSIGHT_REVENUE = Counter(
    "shoppulse_category_revenue_total",
    "Order revenue (GMV) per category and currency, as a float for rates (exact sums: category-insights)",
    ["category", "tag", "currency"],
)
ALERTS_RAISED = Counter("shoppulse_alerts_raised_total", "Alerts raised", ["stage", "kind", "scope"])
