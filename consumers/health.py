"""Metrics and health endpoints on one small HTTP server.

Why a thread and the stdlib: the enrich stage's main thread belongs to the Kafka poll
loop, and Kubernetes probes plus Prometheus scrapes must be answered even while a
batch is being inferred. ``ThreadingHTTPServer`` in a daemon thread does that with no
new dependency.

- ``GET /metrics``: Prometheus exposition of ``registry``.
- ``GET /healthz``: 200 while the process runs (liveness: restart only if this stops).
- ``GET /readyz``: 200 or 503 with the details the ``ready`` callback returns
  (assigned partitions, model loaded, broker reachable), so an operator reading the
  probe failure sees *why* the pod is not ready.
- anything else: 404 JSON.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: ReadyCheck,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._ready = ready
        self._registry = registry
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (differs from the requested one when that was 0)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Bind and serve in the background; returns self so ``HealthServer(...).start()`` reads well."""
        if self._server is not None:
            return self
        handler = _make_handler(self._ready, self._registry)
        server = ThreadingHTTPServer((self._host, self._requested_port), handler)
        server.daemon_threads = True
        self._server = server
        # A short poll interval keeps stop() (and so shutdown on SIGTERM) quick.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name=f"health-http-{self.port}", daemon=True
        )
        self._thread.start()
        log.info("health/metrics server on %s:%d", self._host, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(ready: ReadyCheck, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "shoppulse-health"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send_json(HTTPStatus.OK, {"status": "ok"})
            elif path == "/readyz":
                self._readyz()
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found", "path": path})

        def _readyz(self) -> None:
            try:
                is_ready, details = ready()
            except Exception as exc:  # a failing check means "not ready", never a crashed probe
                log.exception("readiness check raised")
                is_ready, details = False, {"error": f"{type(exc).__name__}: {exc}"}
            body = {"status": "ready" if is_ready else "not ready", **details}
            self._send_json(HTTPStatus.OK if is_ready else HTTPStatus.SERVICE_UNAVAILABLE, body)

        def _send_json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=str, ensure_ascii=False).encode("utf-8")
            self._send(status, data, "application/json; charset=utf-8")

        def _send(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: keep quiet
            log.debug("%s " + format, self.address_string(), *args)

    return _Handler
