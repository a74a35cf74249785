"""The faust app, its table and the CLI flags are built from the one settings object."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from shoppulse.consumers.profiles.app import ProfilesStage, make_faust_app, murmur2_partition
from shoppulse.consumers.profiles.cli import add_arguments, settings_for
from shoppulse.consumers.profiles.web import parse_as_of
from shoppulse.consumers.settings import load_settings


def test_faust_app_takes_broker_store_web_and_partitions_from_settings(tmp_path: Path) -> None:
    settings = load_settings(
        kafka={
            "bootstrap_servers": "k1:9093,k2:9093",
            "session_timeout_ms": 6000,
            "options": {"security.protocol": "SASL_PLAINTEXT", "sasl.username": "u", "sasl.password": "p"},
        },
        profiles={"app_id": "profiles-test", "store": "rocksdb", "data_dir": str(tmp_path), "advertised_host": "pod-1"},
        http={"host": "0.0.0.0", "profiles_port": 7070},
    )
    conf = make_faust_app(settings, partitions=4).conf
    assert conf.id == "profiles-test"
    assert [str(u) for u in conf.broker] == ["kafka://k1:9093", "kafka://k2:9093"]
    assert conf.broker_credentials.username == "u"
    assert str(conf.store) == "rocksdb:"
    assert Path(conf.datadir) == tmp_path
    assert (conf.web_bind, conf.web_port, conf.web_host) == ("0.0.0.0", 7070, "pod-1")
    assert str(conf.canonical_url) == "http://pod-1:7070"
    assert conf.topic_partitions == 4
    assert conf.broker_session_timeout == 6.0
    assert conf.processing_guarantee.value == "at_least_once"
    assert not (conf.web_tables_enabled or conf.web_router_enabled or conf.web_graph_enabled)


def test_table_is_co_partitioned_with_user_signals_and_keyed_by_raw_bytes() -> None:
    settings = load_settings(profiles={"app_id": "profiles-x"}, topics={"user_signals": "sig"})
    stage = ProfilesStage(settings, partitions=3)
    assert stage.table.partitions == 3
    assert stage.table.key_serializer == "raw"
    assert stage.table.changelog_topic.get_topic_name() == "profiles-x-profiles-changelog"
    assert stage.table.changelog_topic.prepare_key(b"u000001", None)[0] == b"u000001"


def test_murmur2_partition_matches_the_partitioner_faust_routes_with() -> None:
    partitioner = DefaultPartitioner()
    rng = random.Random(1)
    for _ in range(500):
        key = f"u{rng.randrange(10**6):06d}".encode()
        n = rng.randint(1, 12)
        assert murmur2_partition(key, n) == partitioner(key, list(range(n)), list(range(n)))


def test_cli_flags_override_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--bootstrap", "b:1", "--store", "rocksdb", "--http-port", "7000", "--publish-interval", "0.5"]
    )
    settings = settings_for(args)
    assert settings.kafka.bootstrap_servers == "b:1"
    assert (settings.profiles.store, settings.profiles.publish_interval_s) == ("rocksdb", 0.5)
    assert settings.http.profiles_port == 7000
    assert settings.profiles.app_id == "shoppulse-profiles"  # untouched


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("", None), ("1780000000000", 1_780_000_000_000), ("0", 0)],
)
def test_as_of_parses_epoch_ms(raw: str | None, expected: int | None) -> None:
    assert parse_as_of(raw, now_ms=1_790_000_000_000) == expected


@pytest.mark.parametrize("raw", ["yesterday", "1.5e12", "-1", str(10**16)])
def test_bad_as_of_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="as_of"):
        parse_as_of(raw, now_ms=1_790_000_000_000)
