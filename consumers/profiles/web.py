"""HTTP on the profiles worker's faust web server: the profile lookup, metrics and probes.

- ``GET /profiles/{user_id}[?as_of=EPOCH_MS]``: the current profile with interest scores decayed
  to ``as_of`` (default: now, or the profile's own event time if that is later). faust's router
  forwards the request to the worker that owns the key's partition, so any worker (or a
  Kubernetes Service in front of all of them) can be asked. 404 JSON for an unknown user,
  400 JSON for a bad ``as_of``, 503 JSON while this worker is recovering.
- ``GET /metrics``: Prometheus exposition; ``/healthz``: liveness; ``/readyz``: 200 once the
  table is recovered, else 503 with the reason.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from consumers.contracts import dumps

if TYPE_CHECKING:
    from consumers.profiles.app import ProfilesStage

MAX_USER_ID_CHARS = 128
JSON = "application/json; charset=utf-8"


def parse_as_of(raw: str | None, now_ms: int) -> int | None:
    """``?as_of=`` as epoch milliseconds; None when absent. Raises ValueError with a message."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("as_of must be an integer (epoch milliseconds)") from None
    if value < 0 or value > now_ms + 100 * 365 * 86_400_000:
        raise ValueError("as_of is out of range")
    return value


def _json(view: View, body: dict[str, Any], status: int = 200) -> Response:
    return view.bytes(dumps(body), status=status, headers={"Content-Type": JSON})


def register_pages(stage: ProfilesStage) -> None:
    app = stage.app

    @app.page("/profiles/{user_id}", name="profile")
    class ProfileView(View):
        @app.table_route(table=stage.table, match_info="user_id")
        async def get(self, request: Request, user_id: str) -> Response:
            if not user_id or len(user_id) > MAX_USER_ID_CHARS:
                return _json(self, {"error": "bad user_id", "user_id": user_id[:MAX_USER_ID_CHARS]}, 400)
            now_ms = int(time.time() * 1000)
            try:
                as_of = parse_as_of(request.query.get("as_of"), now_ms)
            except ValueError as exc:
                return _json(self, {"error": str(exc), "as_of": request.query.get("as_of")}, 400)
            ready, details = stage.readiness()
            if not ready:
                return _json(self, {"error": "this worker is recovering its table", **details}, 503)
            key = user_id.encode("utf-8")
            row = stage.table.get(key)
            if row is None:
                return _json(self, {"error": "unknown user", "user_id": user_id}, 404)
            own_as_of = row.get("as_of") or 0
            target = as_of if as_of is not None else max(now_ms, own_as_of)
            try:
                profile = stage.profile_json(key, as_of=target)
            except ValueError as exc:
                return _json(self, {"error": str(exc), "as_of": target, "profile_as_of": own_as_of}, 400)
            return _json(self, profile or {})

    @app.page("/metrics", name="metrics")
    async def metrics_page(self: View, request: Request) -> Response:
        return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz", name="healthz")
    async def healthz(self: View, request: Request) -> Response:
        return _json(self, {"status": "ok"})

    @app.page("/readyz", name="readyz")
    async def readyz(self: View, request: Request) -> Response:
        ready, details = stage.readiness()
        return _json(self, {"status": "ready" if ready else "not ready", **details}, 200 if ready else 503)
