"""The stages over SASL/OAUTHBEARER on a real broker, configured with the librdkafka keys only.

The session broker has a second listener, SASL_PLAINTEXT with OAUTHBEARER and Kafka's unsecured JWT
validator (``KafkaBroker.oauthbearer_port``). One settings object with ``sasl.oauthbearer.config``
configures librdkafka (the producer here, as in stage 1) and the profiles worker (aiokafka under
faust, through ``consumers/profiles/connection.py``), as one Secret would in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shoppulse.devkit.broker import EmbeddedBroker
from shoppulse.devkit.broker.kafka import KafkaBroker
from tests.conftest import isolated_settings
from tests.integration.profiles_harness import ProfileReader, Worker, produce_signals, profile_settings, wait_for
from tests.unit.consumers.profiles.streams import make_signals, profile_mismatches, reference_profiles

pytestmark = pytest.mark.integration

OAUTHBEARER_OPTIONS = {
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanism": "OAUTHBEARER",
    "sasl.oauthbearer.config": "principal=shoppulse",
    "enable.sasl.oauthbearer.unsecure.jwt": "true",  # librdkafka's own unsecured token (stage 1)
}


def test_profiles_worker_over_sasl_oauthbearer(kafka_broker: EmbeddedBroker, tmp_path: Path) -> None:
    if not isinstance(kafka_broker, KafkaBroker) or not kafka_broker.oauthbearer_port:
        pytest.skip("the OAUTHBEARER listener needs the Apache Kafka backend")
    plain = profile_settings(isolated_settings(kafka_broker.bootstrap), half_life_days=7.0, top_k=3, recent_products=5)
    sasl = plain.model_copy(deep=True)
    sasl.kafka = sasl.kafka.model_validate(
        sasl.kafka.model_dump()
        | {"bootstrap_servers": f"127.0.0.1:{kafka_broker.oauthbearer_port}", "options": OAUTHBEARER_OPTIONS}
    )
    signals = make_signals(seed=3, users=8, n=80)
    expected = reference_profiles(signals, 7.0, 3, 5)
    worker = Worker(sasl, tmp_path, "sasl").start()
    reader = ProfileReader(plain)
    try:
        produce_signals(sasl, signals)  # librdkafka through the SASL listener
        wait_for(
            lambda: reader.poll(0.3) is None and all(
                reader.latest.get(u, {}).get("version") == e["version"] for u, e in expected.items()
            ),
            90,
            "every profile published by the worker connected over SASL/OAUTHBEARER",
            [worker],
        )  # fmt: skip
        assert {u: profile_mismatches(reader.latest[u], e) for u, e in expected.items()} == {u: [] for u in expected}
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()
