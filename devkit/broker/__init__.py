"""Embedded single-node brokers for demos and tests: Apache Kafka (KRaft) or Tansu.

Both backends sit behind ``EmbeddedBroker``; ``make_broker`` picks one.
"""

from shoppulse.devkit.broker.base import BrokerError, EmbeddedBroker, free_port, wait_for_port
from shoppulse.devkit.broker.select import default_backend, make_broker

__all__ = ["BrokerError", "EmbeddedBroker", "default_backend", "free_port", "make_broker", "wait_for_port"]
