"""The librdkafka-style settings map to the aiokafka arguments faust will use."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from shoppulse.consumers.profiles.connection import (
    ConnectionConfigError,
    aiokafka_auth,
    broker_urls,
    faust_connection,
)
from shoppulse.consumers.profiles.oauth import REFRESH_MARGIN_S, TokenError, UnsecuredJwtProvider
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


# --- SASL mechanisms beyond PLAIN/SCRAM: the same librdkafka keys as stage 1 -----------------------


def _jwt_claims(token: str) -> tuple[dict, dict]:
    header, claims, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    assert signature == ""
    return decode(header), decode(claims)


def test_oauthbearer_unsecured_jwt_from_sasl_oauthbearer_config() -> None:
    conn = faust_connection(
        _settings(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "OAUTHBEARER",
                "sasl.oauthbearer.config": "principal=shop scope=read,write lifeSeconds=600",
                "sasl.oauthbearer.extensions": "traceId=123, logicalCluster=lkc-1",
            }
        )
    )
    auth = aiokafka_auth(conn)
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["ssl_context"]) == (
        "SASL_PLAINTEXT", "OAUTHBEARER", None,
    )  # fmt: skip
    provider = auth["sasl_oauth_token_provider"]
    header, claims = _jwt_claims(asyncio.run(provider.token()))
    assert header == {"alg": "none"}
    assert claims["sub"] == "shop" and claims["scope"] == "read write" and claims["exp"] - claims["iat"] == 600
    assert provider.extensions() == {"traceId": "123", "logicalCluster": "lkc-1"}


def test_an_unsecured_token_is_reused_until_a_minute_before_it_expires() -> None:
    now = [1_000_000.0]
    provider = UnsecuredJwtProvider("principal=shop lifeSeconds=600", {}, clock=lambda: now[0])

    async def tokens() -> list[str]:
        first = await provider.token()
        now[0] += 600 - REFRESH_MARGIN_S - 1
        second = await provider.token()
        now[0] += 2
        return [first, second, await provider.token()]

    first, second, third = asyncio.run(tokens())
    assert first == second != third


class _TokenEndpoint(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str | None, dict[str, list[str]]]]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        type(self).requests.append((self.headers.get("Authorization"), form))
        body = json.dumps({"access_token": f"tok-{len(type(self).requests)}", "expires_in": 300}).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def token_endpoint() -> Iterator[str]:
    _TokenEndpoint.requests, _TokenEndpoint.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oauth2/token"
    server.shutdown()
    server.server_close()


def _oidc_options(endpoint: str) -> dict[str, str]:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": "shoppulse",
        "sasl.oauthbearer.client.secret": "s3cret",
        "sasl.oauthbearer.token.endpoint.url": endpoint,
        "sasl.oauthbearer.scope": "kafka",
    }


def test_oauthbearer_oidc_fetches_a_client_credentials_token_once(token_endpoint: str) -> None:
    provider = aiokafka_auth(faust_connection(_settings(_oidc_options(token_endpoint))))["sasl_oauth_token_provider"]

    async def two_tokens() -> tuple[str, str]:
        return await provider.token(), await provider.token()

    assert asyncio.run(two_tokens()) == ("tok-1", "tok-1")
    [(authorization, form)] = _TokenEndpoint.requests
    assert authorization == "Basic " + base64.b64encode(b"shoppulse:s3cret").decode()
    assert form == {"grant_type": ["client_credentials"], "scope": ["kafka"]}


def test_a_refused_token_request_names_the_endpoint(token_endpoint: str) -> None:
    _TokenEndpoint.status = 401
    provider = aiokafka_auth(faust_connection(_settings(_oidc_options(token_endpoint))))["sasl_oauth_token_provider"]
    with pytest.raises(TokenError, match=r"token endpoint http://127\.0\.0\.1:\d+/oauth2/token answered HTTP 401"):
        asyncio.run(provider.token())


def test_gssapi_maps_the_service_name_and_keytab(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    fake_gssapi = lambda name: object() if name == "gssapi" else real_find_spec(name)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", fake_gssapi)
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
    options = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "GSSAPI",
        "sasl.kerberos.service.name": "kafka-prod",
        "sasl.kerberos.keytab": "/etc/krb5/shoppulse.keytab",
    }
    auth = aiokafka_auth(faust_connection(_settings(options)))
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["sasl_kerberos_service_name"]) == (
        "SASL_PLAINTEXT", "GSSAPI", "kafka-prod",
    )  # fmt: skip
    assert os.environ["KRB5_CLIENT_KTNAME"] == "/etc/krb5/shoppulse.keytab"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sasl.mechanism": "OAUTHBEARER"}, "sasl.oauthbearer.method=oidc"),
        ({"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.client.id": "c"},
         r"needs \['sasl.oauthbearer.client.secret', 'sasl.oauthbearer.token.endpoint.url'\]"),
        ({"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "aws"}, "expected oidc or default"),
        ({"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.config": "scope=x"}, "principal=NAME"),
        ({"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.config": "principal=p",
          "sasl.oauthbearer.extensions": "novalue"}, "is not key=value"),
        ({"sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p",
          "sasl.kerberos.service.name": "kafka"}, "do not apply to sasl.mechanism=PLAIN"),
    ],
)  # fmt: skip
def test_incomplete_oauth_and_stray_mechanism_options_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConnectionConfigError, match=message):
        faust_connection(_settings({"security.protocol": "SASL_SSL", **options}))
