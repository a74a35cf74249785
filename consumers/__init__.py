"""The product's stream stages and their Kafka plumbing: topics, contracts, dead letters, enrich,
profiles and insights, metrics, health HTTP and the CLI. The dev kit (brokers, simulator, benchmarks,
demo) lives in ``shoppulse.devkit`` and is never imported from here."""

__version__ = "0.1.0"
