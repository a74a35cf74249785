"""Fail fast and in one line when no broker answers, for the commands a person runs by hand.

Why: librdkafka retries an unreachable bootstrap for as long as it is allowed and logs every
failed connection (``topics ensure`` printed ~580 lines over 30 s, then a traceback; ``simulate``
hung). The stages themselves keep retrying (a broker may come up after them); a one-shot command
should say at once what is wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEOUT_S = 5.0


class BrokerUnreachable(RuntimeError):
    """No broker answered a metadata request in time; the message says what to check."""


def require_broker(settings: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """One metadata round trip to ``kafka.bootstrap_servers``, with librdkafka's own logging off;
    returns the cluster metadata."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    bootstrap = settings.kafka.bootstrap_servers
    admin = AdminClient(settings.librdkafka(**{"log_level": 0, "socket.connection.setup.timeout.ms": 3000}))
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnreachable(
            f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f}s ({exc.args[0].str()}): "
            "is it running and reachable? `shoppulse broker` starts one locally; --bootstrap points elsewhere"
        ) from None
    if not metadata.brokers:
        raise BrokerUnreachable(f"{bootstrap} answered without any broker in its metadata")
    return metadata
