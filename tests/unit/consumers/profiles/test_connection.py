"""The librdkafka-style settings map to the aiokafka arguments faust will use."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from shoppulse.consumers.profiles.connection import (
    ConnectionConfigError,
    aiokafka_auth,
    broker_urls,
    faust_connection,
)
from shoppulse.consumers.settings import load_settings


def _settings(options: dict[str, str], bootstrap: str = "k1:9093,k2:9093"):
    return load_settings(kafka={"bootstrap_servers": bootstrap, "options": options})


def test_bootstrap_list_becomes_kafka_urls() -> None:
    assert broker_urls(" a:1, b:2 ,") == ["kafka://a:1", "kafka://b:2"]
    with pytest.raises(ConnectionConfigError):
        broker_urls(" , ")


def test_plaintext_by_default() -> None:
    conn = faust_connection(_settings({}))
    assert conn.brokers == ["kafka://k1:9093", "kafka://k2:9093"]
    assert aiokafka_auth(conn) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_scram_maps_user_password_mechanism_and_tls() -> None:
    conn = faust_connection(
        _settings(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "shop",
                "sasl.password": "s3cret",
            }
        )
    )
    auth = aiokafka_auth(conn)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("shop", "s3cret")
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_has_no_tls_context() -> None:
    conn = faust_connection(
        _settings({"security.protocol": "sasl_plaintext", "sasl.username": "u", "sasl.password": "p"})
    )
    auth = aiokafka_auth(conn)
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["ssl_context"]) == (
        "SASL_PLAINTEXT",
        "PLAIN",
        None,
    )


def test_ssl_with_ca_file_and_verification_switches(tmp_path: Path) -> None:
    ca = _self_signed(tmp_path)
    conn = faust_connection(
        _settings(
            {
                "security.protocol": "SSL",
                "ssl.ca.location": str(ca),
                "ssl.endpoint.identification.algorithm": "none",
            }
        )
    )
    auth = aiokafka_auth(conn)
    assert auth["security_protocol"] == "SSL"
    context = auth["ssl_context"]
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert any(c.get("subject") for c in context.get_ca_certs())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI", "sasl.username": "u"}, "GSSAPI"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}, "sasl.username"),
        ({"security.protocol": "TLS"}, "security.protocol"),
        ({"sasl.oauthbearer.config": "x"}, "sasl.oauthbearer.config"),
        ({"ssl.keystore.location": "/k.p12"}, "ssl.keystore.location"),
    ],
)
def test_options_aiokafka_cannot_honour_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConnectionConfigError, match=message):
        faust_connection(_settings(options))


def test_librdkafka_tuning_options_are_ignored() -> None:
    conn = faust_connection(_settings({"linger.ms": "5", "client.id": "x"}))
    assert conn.protocol == "PLAINTEXT"


def _self_signed(tmp_path: Path) -> Path:
    cert, key = tmp_path / "ca.pem", tmp_path / "ca.key"
    result = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip("openssl not available")
    return cert
