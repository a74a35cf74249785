"""faust/aiokafka connection settings derived from the librdkafka-style ``kafka`` settings.

Why a mapping: stage 1 speaks librdkafka (``security.protocol``, ``sasl.*``, ``ssl.*``) and
stage 2 speaks aiokafka under faust; both must read the *same* settings object so that one
Secret configures the whole product. Options that would change security and that aiokafka
cannot honour are refused rather than dropped: silently connecting without the TLS client
certificate or with a different SASL mechanism than configured is worse than not starting.
Other librdkafka options (``linger.ms``, ``client.id``, ...) are tuning for stage 1 and are
ignored here.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from dataclasses import dataclass
from typing import Any

from shoppulse.consumers.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")
_OAUTH_OPTIONS = {
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
}
_KERBEROS_OPTIONS = {"sasl.kerberos.service.name", "sasl.kerberos.principal", "sasl.kerberos.keytab"}
_HANDLED = {
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    *_OAUTH_OPTIONS,
    *_KERBEROS_OPTIONS,
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
}


class ConnectionConfigError(ValueError):
    """The Kafka options cannot be honoured by aiokafka; the message names the option."""


@dataclass(frozen=True)
class FaustConnection:
    """What ``faust.App`` needs: broker URLs and (optional) credentials object."""

    brokers: list[str]
    credentials: Any | None  # faust.SASLCredentials | OAuthCredentials | GSSAPICredentials | SSLCredentials | None
    protocol: str


def broker_urls(bootstrap_servers: str) -> list[str]:
    """``"a:9092,b:9092"`` → ``["kafka://a:9092", "kafka://b:9092"]``."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    if not hosts:
        raise ConnectionConfigError("kafka.bootstrap_servers is empty")
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def ssl_context_from_options(options: dict[str, str]) -> ssl.SSLContext:
    """A client TLS context from ``ssl.*`` options (system CAs unless ``ssl.ca.location``)."""
    context = ssl.create_default_context(cafile=options.get("ssl.ca.location"))
    cert = options.get("ssl.certificate.location")
    key = options.get("ssl.key.location")
    if cert or key:
        if not cert:
            raise ConnectionConfigError("ssl.key.location needs ssl.certificate.location")
        context.load_cert_chain(cert, keyfile=key, password=options.get("ssl.key.password"))
    if options.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    if options.get("enable.ssl.certificate.verification", "true").lower() == "false":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def faust_connection(settings: Settings) -> FaustConnection:
    """Map ``settings.kafka`` to faust's ``broker`` and ``broker_credentials``."""
    import faust

    options = {k.lower(): v for k, v in settings.kafka.options.items()}
    unsupported = sorted(k for k in options if k.startswith(("security.", "sasl.", "ssl.")) and k not in _HANDLED)
    if unsupported:
        raise ConnectionConfigError(f"kafka.options not supported by the profiles stage: {unsupported}")
    protocol = options.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ConnectionConfigError(f"security.protocol={protocol!r}: expected one of {PROTOCOLS}")
    brokers = broker_urls(settings.kafka.bootstrap_servers)
    context = ssl_context_from_options(options) if protocol.endswith("SSL") else None
    mechanism = (options.get("sasl.mechanism") or options.get("sasl.mechanisms") or "PLAIN").upper()
    stray = sorted(k for k in options if k in _OAUTH_OPTIONS and mechanism != "OAUTHBEARER") + sorted(
        k for k in options if k in _KERBEROS_OPTIONS and mechanism != "GSSAPI"
    )
    if stray:
        raise ConnectionConfigError(f"kafka.options {stray} do not apply to sasl.mechanism={mechanism}")
    if protocol.startswith("SASL"):
        if mechanism not in SASL_MECHANISMS:
            raise ConnectionConfigError(f"sasl.mechanism={mechanism!r}: expected one of {SASL_MECHANISMS}")
        credentials: Any = _sasl_credentials(protocol, mechanism, options, context)
    elif protocol == "SSL":
        credentials = faust.SSLCredentials(context)
    else:
        credentials = None
    return FaustConnection(brokers=brokers, credentials=credentials, protocol=protocol)


def _sasl_credentials(protocol: str, mechanism: str, options: dict[str, str], context: ssl.SSLContext | None) -> Any:
    import faust

    if mechanism == "OAUTHBEARER":
        return faust.OAuthCredentials(oauth_cb=oauth_token_provider(options), ssl_context=context)
    if mechanism == "GSSAPI":
        if importlib.util.find_spec("gssapi") is None:
            raise ConnectionConfigError(
                "sasl.mechanism=GSSAPI needs the gssapi package in the faust stages: "
                "pip install 'shoppulse[kerberos]'"
            )
        keytab = options.get("sasl.kerberos.keytab")
        if keytab:  # the GSSAPI library reads the client keytab from the environment, not from arguments
            os.environ.setdefault("KRB5_CLIENT_KTNAME", keytab)
        return faust.GSSAPICredentials(
            kerberos_service_name=options.get("sasl.kerberos.service.name", "kafka"), ssl_context=context
        )
    username, password = options.get("sasl.username"), options.get("sasl.password")
    if not username or password is None:
        raise ConnectionConfigError(f"{protocol} needs sasl.username and sasl.password")
    return faust.SASLCredentials(username=username, password=password, mechanism=mechanism, ssl_context=context)


def oauth_token_provider(options: dict[str, str]) -> Any:
    """The aiokafka token provider for librdkafka's ``sasl.oauthbearer.*`` keys (``oidc`` or unsecured)."""
    from shoppulse.consumers.profiles.oauth import ClientCredentialsProvider, UnsecuredJwtProvider, parse_extensions

    try:
        extensions = parse_extensions(options.get("sasl.oauthbearer.extensions"))
        method = options.get("sasl.oauthbearer.method", "default").lower()
        if method == "oidc":
            needed = ["sasl.oauthbearer.client.id", "sasl.oauthbearer.client.secret",
                      "sasl.oauthbearer.token.endpoint.url"]  # fmt: skip
            missing = [k for k in needed if not options.get(k)]
            if missing:
                raise ValueError(f"sasl.oauthbearer.method=oidc needs {missing}")
            return ClientCredentialsProvider(
                endpoint=options["sasl.oauthbearer.token.endpoint.url"],
                client_id=options["sasl.oauthbearer.client.id"],
                client_secret=options["sasl.oauthbearer.client.secret"],
                scope=options.get("sasl.oauthbearer.scope"),
                extensions=extensions,
            )
        if method != "default":
            raise ValueError(f"sasl.oauthbearer.method={method!r}: expected oidc or default")
        config = options.get("sasl.oauthbearer.config")
        if not config:
            raise ValueError(
                "sasl.mechanism=OAUTHBEARER needs sasl.oauthbearer.method=oidc (with client.id, client.secret and "
                "token.endpoint.url) or, for development brokers, sasl.oauthbearer.config=principal=NAME"
            )
        return UnsecuredJwtProvider(config, extensions)
    except ValueError as exc:
        raise ConnectionConfigError(str(exc)) from None


def aiokafka_auth(connection: FaustConnection) -> dict[str, Any]:
    """The keyword arguments aiokafka will receive (faust's own translation), for tests and logs."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return dict(credentials_to_aiokafka_auth(connection.credentials))
