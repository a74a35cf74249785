"""Broker reachability: after an outage the stage notices the broker is back without waiting for input."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException

from shoppulse.consumers.enrich.stage import BROKER_PROBE_INTERVAL_S, EnrichStage
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port


class IdleConsumer:
    """No input arrives; metadata requests fail while ``down``."""

    def __init__(self) -> None:
        self.down = True
        self.probes = 0

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def list_topics(self, timeout: float) -> Any:
        self.probes += 1
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return object()

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        pass

    def close(self) -> None:
        pass


class QuietProducer:
    """Nothing to deliver, and no librdkafka of its own: a real client at a closed port would report
    "all brokers down" whenever its thread gets there, moving the probe clock under the test."""

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


def test_reachability_returns_after_an_outage_with_no_input() -> None:
    clock, consumer = Clock(), IdleConsumer()
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    stage = EnrichStage(
        settings,
        enricher=object(),
        install_signals=False,
        consumer=consumer,
        producer=QuietProducer(),
        monotonic=clock.monotonic,
    )  # type: ignore[arg-type]
    consumer.down = False
    assert stage.wait_for_broker() and stage.broker_up is True
    consumer.down, consumer.probes = True, 0
    stage.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert stage.broker_up is False

    stage.step()
    assert consumer.probes == 0  # not before the probe interval
    clock.now += BROKER_PROBE_INTERVAL_S
    stage.step()
    assert consumer.probes == 1 and stage.broker_up is False  # still down
    consumer.down = False
    stage.step()
    assert consumer.probes == 1  # one probe per interval, not one per loop turn
    clock.now += BROKER_PROBE_INTERVAL_S
    stage.step()
    assert consumer.probes == 2 and stage.broker_up is True
    stage.producer.flush(0)
