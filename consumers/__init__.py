"""Kafka I/O: the broker helpers, contracts, simulator, both stages, metrics and the CLI."""

__version__ = "0.1.0"
