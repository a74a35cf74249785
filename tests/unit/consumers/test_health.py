"""The health server answers probes and scrapes on a real socket (port 0)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from shoppulse.consumers.health import HealthServer


class _Readiness:
    """A readiness callback whose answer the test flips."""

    def __init__(self) -> None:
        self.ready = False
        self.details: dict[str, Any] = {"assigned_partitions": 0, "model_loaded": False}
        self.raise_error = False

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.raise_error:
            raise RuntimeError("broker metadata timed out")
        return self.ready, dict(self.details)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def readiness() -> _Readiness:
    return _Readiness()


@pytest.fixture
def server(readiness: _Readiness, registry: CollectorRegistry) -> Iterator[HealthServer]:
    srv = HealthServer("127.0.0.1", 0, readiness, registry=registry).start()
    yield srv
    srv.stop()


def _url(server: HealthServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def test_port_zero_binds_a_real_port(server: HealthServer) -> None:
    assert server.port > 0


def test_healthz_is_ok_while_running(server: HealthServer) -> None:
    status, ctype, body = _get(_url(server, "/healthz"))
    assert status == 200
    assert ctype.startswith("application/json")
    assert json.loads(body) == {"status": "ok"}


def test_readyz_follows_the_callback(server: HealthServer, readiness: _Readiness) -> None:
    status, _, body = _get(_url(server, "/readyz"))
    assert status == 503
    payload = json.loads(body)
    assert payload["status"] == "not ready"
    assert payload["model_loaded"] is False

    readiness.ready = True
    readiness.details = {"assigned_partitions": 3, "model_loaded": True, "broker_reachable": True}
    status, _, body = _get(_url(server, "/readyz"))
    assert status == 200
    payload = json.loads(body)
    assert payload["status"] == "ready"
    assert payload["assigned_partitions"] == 3
    assert payload["broker_reachable"] is True


def test_readyz_is_503_when_the_check_raises(server: HealthServer, readiness: _Readiness) -> None:
    readiness.raise_error = True
    status, _, body = _get(_url(server, "/readyz"))
    assert status == 503
    assert "broker metadata timed out" in json.loads(body)["error"]
    # The server survives a failing check and keeps answering.
    assert _get(_url(server, "/healthz"))[0] == 200


def test_metrics_exposes_the_given_registry(server: HealthServer, registry: CollectorRegistry) -> None:
    counter = Counter("shoppulse_test_things_total", "things", ["stage"], registry=registry)
    counter.labels(stage="enrich").inc(7)
    status, ctype, body = _get(_url(server, "/metrics"))
    assert status == 200
    assert ctype.startswith("text/plain")
    assert 'shoppulse_test_things_total{stage="enrich"} 7.0' in body.decode()


def test_unknown_path_is_404_json(server: HealthServer) -> None:
    status, ctype, body = _get(_url(server, "/nope?x=1"))
    assert status == 404
    assert ctype.startswith("application/json")
    assert json.loads(body)["path"] == "/nope"


def test_stop_releases_the_port(readiness: _Readiness, registry: CollectorRegistry) -> None:
    srv = HealthServer("127.0.0.1", 0, readiness, registry=registry).start()
    port = srv.port
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    # The same port can be bound again right away.
    again = HealthServer("127.0.0.1", port, readiness, registry=registry).start()
    try:
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        again.stop()
