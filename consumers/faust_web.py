"""HTTP pieces both faust stages serve: JSON answers that name the worker, forwarding a key's
lookup to the worker that owns it, and ``/metrics``, ``/healthz``, ``/readyz``.

Why our own forwarding rather than faust's ``table_route``: that one drops the owner's headers.
``X-Served-By`` names the worker that answered, ``X-Routed-By`` the one that forwarded (a
forwarded request is answered where it lands, never forwarded again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from shoppulse.consumers.contracts import dumps

JSON = "application/json; charset=utf-8"
SERVED_BY_HEADER = "X-Served-By"
ROUTED_HEADER = "X-Routed-By"  # set on a forwarded request: the receiver answers, never forwards again


def owner_url(app: Any, table_name: str, key: bytes) -> str | None:
    """The canonical URL of the worker whose active partition holds ``key`` (faust's assignor map)."""
    try:
        return str(app.router.key_store(table_name, key))
    except KeyError:
        return None


def json_response(view: View, body: dict[str, Any], status: int = 200) -> Response:
    """A JSON answer; X-Served-By names the worker that answered, so routing is observable."""
    served_by = str(view.app.conf.canonical_url)
    return view.bytes(dumps(body), status=status, headers={"Content-Type": JSON, SERVED_BY_HEADER: served_by})


async def forward(view: View, request: Request, owner: str) -> Response:
    """Ask the owner; pass its status, body and X-Served-By through, and say who routed."""
    url = owner.rstrip("/") + str(request.rel_url)
    me = str(view.app.conf.canonical_url)
    try:
        async with view.app.http_client.get(url, headers={ROUTED_HEADER: me}) as resp:
            body = await resp.read()
            headers = {
                "Content-Type": resp.headers.get("Content-Type", JSON),
                SERVED_BY_HEADER: resp.headers.get(SERVED_BY_HEADER, owner),
                ROUTED_HEADER: me,
            }
            return view.bytes(body, status=resp.status, headers=headers)
    except (TimeoutError, OSError, aiohttp.ClientError) as exc:
        return json_response(view, {"error": f"owner {owner} unreachable: {exc}", "owner": owner}, 502)


def register_probes(
    app: Any,
    liveness: Callable[[], tuple[int, dict[str, Any]]],
    readiness: Callable[[], tuple[bool, dict[str, Any]]],
) -> None:
    """``/metrics`` (Prometheus), ``/healthz`` (``liveness()``: status and body) and ``/readyz``."""

    @app.page("/metrics", name="metrics")
    async def metrics_page(self: View, request: Request) -> Response:
        return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz", name="healthz")
    async def healthz(self: View, request: Request) -> Response:
        status, body = liveness()
        return json_response(self, body, status)

    @app.page("/readyz", name="readyz")
    async def readyz(self: View, request: Request) -> Response:
        ready, details = readiness()
        return json_response(self, {"status": "ready" if ready else "not ready", **details}, 200 if ready else 503)
