"""librdkafka's lines go through Python logging, and a line repeated while a broker is down shows once
per window, with how many were folded."""

from __future__ import annotations

import logging

from confluent_kafka import Producer

from shoppulse.consumers.kafka_log import LOGGER_NAME, FoldRepeats
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord(LOGGER_NAME, logging.ERROR, __file__, 1, message, None, None)


def test_repeats_within_the_window_are_folded_and_counted() -> None:
    now = [0.0]
    fold = FoldRepeats(window_s=30, clock=lambda: now[0])
    assert fold.filter(_record("Connect to 127.0.0.1:9092 failed (after 0ms)"))
    for delay_ms in (3, 17, 250):
        now[0] += 1
        assert not fold.filter(_record(f"Connect to 127.0.0.1:9092 failed (after {delay_ms}ms)"))
    assert fold.filter(_record("another line"))
    now[0] = 31.0
    shown = _record("Connect to 127.0.0.1:9092 failed (after 5ms)")
    assert fold.filter(shown) and "(and 3 like it in the last 31s)" in shown.getMessage()


def test_a_client_from_the_settings_logs_through_python_logging(caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(logging.getLogger(LOGGER_NAME), "filters", [])  # lines other tests' clients logged
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    producer = Producer(settings.librdkafka())
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        producer.produce("t", b"v")
        producer.poll(1.5)  # librdkafka hands its lines over when the client is polled
    assert any(r.name == LOGGER_NAME and "Connect to" in r.getMessage() for r in caplog.records)
