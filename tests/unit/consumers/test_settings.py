from pathlib import Path

import pytest
from pydantic import ValidationError

from shoppulse.consumers.settings import env_var_names, kafka_opts_from_env, load_settings


def test_defaults_are_sane() -> None:
    s = load_settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.topics.inputs() == ["reviews", "clicks", "orders"]
    assert s.http.host == "127.0.0.1"
    assert s.enrich.exactly_once is False


def test_env_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPPULSE_ENRICH__MAX_BATCH", "17")
    monkeypatch.setenv("SHOPPULSE_KAFKA__BOOTSTRAP_SERVERS", "k1:9093,k2:9093")
    s = load_settings()
    assert s.enrich.max_batch == 17
    assert s.librdkafka()["bootstrap.servers"] == "k1:9093,k2:9093"


def test_yaml_file_is_lower_priority_than_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "shoppulse.yaml"
    cfg.write_text(
        "enrich:\n  max_batch: 8\n  max_wait_ms: 5\nkafka:\n  options:\n    security.protocol: SASL_SSL\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SHOPPULSE_CONFIG", str(cfg))
    monkeypatch.setenv("SHOPPULSE_ENRICH__MAX_BATCH", "32")
    s = load_settings()
    assert s.enrich.max_batch == 32
    assert s.enrich.max_wait_ms == 5
    assert s.librdkafka()["security.protocol"] == "SASL_SSL"


def test_kafka_passthrough_per_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPPULSE_KAFKA_OPT_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SHOPPULSE_KAFKA_OPT_SSL_CA_LOCATION", "/etc/ca.pem")
    conf = load_settings().librdkafka(**{"group.id": "g"})
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["ssl.ca.location"] == "/etc/ca.pem"
    assert conf["group.id"] == "g"
    assert kafka_opts_from_env({"OTHER": "1"}) == {}


def test_invalid_values_are_rejected_with_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPPULSE_ENRICH__MAX_BATCH", "0")
    with pytest.raises(ValidationError, match="max_batch"):
        load_settings()


def test_unknown_keys_in_yaml_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("enrich:\n  max_btach: 8\n", encoding="utf-8")
    monkeypatch.setenv("SHOPPULSE_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match="max_btach"):
        load_settings()


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPPULSE_CONFIG", "/nonexistent/shoppulse.yaml")
    with pytest.raises(FileNotFoundError, match="SHOPPULSE_CONFIG"):
        load_settings()


def test_env_var_names_cover_every_field() -> None:
    names = env_var_names()
    assert "SHOPPULSE_ENRICH__MAX_BATCH" in names
    assert "SHOPPULSE_PROFILES__HALF_LIFE_DAYS" in names
    assert "SHOPPULSE_LOG_LEVEL" in names
    assert all(n.startswith("SHOPPULSE_") for n in names)


def test_to_env_round_trips_through_a_child_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoppulse.consumers.settings import to_env

    settings = load_settings(enrich={"max_batch": 7})
    assert "SHOPPULSE_ENRICH__INTEREST_BUNDLE_DIR" not in to_env(settings)  # unset, not the string "None"
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings
    settings.enrich.interest_bundle_dir = Path("/bundles/interest")
    assert to_env(settings)["SHOPPULSE_ENRICH__INTEREST_BUNDLE_DIR"] == "/bundles/interest"
