"""HTTP on the profiles worker's faust web server: the profile lookup, metrics and probes.

- ``GET /profiles/{user_id}[?as_of=EPOCH_MS]``: the current profile with interest scores decayed
  to ``as_of`` (default: now, or the profile's own event time if that is later). A worker that
  does not own the key's partition (faust's assignor map, murmur2 of the key) forwards the
  request to the owner, so any worker, or a Kubernetes Service in front of all of them, can be
  asked. Our own forwarding rather than faust's ``table_route`` because that one drops the
  owner's headers: ``X-Served-By`` names the worker that answered, ``X-Routed-By`` the one
  that forwarded. 404 JSON for an unknown user, 400 JSON for bad input, 503 JSON while
  rebalancing or recovering, 502 JSON when the owner is unreachable.
- ``GET /metrics``: Prometheus exposition; ``/healthz``: liveness (503 when the fold agent
  stopped, or the worker has lag but made no progress for a while); ``/readyz``: 200 once the
  table is recovered, else 503.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from shoppulse.consumers.faust_web import ROUTED_HEADER, forward, owner_url, register_probes
from shoppulse.consumers.faust_web import json_response as _json

if TYPE_CHECKING:
    from shoppulse.consumers.profiles.app import ProfilesStage

MAX_USER_ID_CHARS = 128


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


def register_pages(stage: ProfilesStage) -> None:
    app = stage.app

    @app.page("/profiles/{user_id}", name="profile")
    class ProfileView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            if not user_id or len(user_id) > MAX_USER_ID_CHARS:
                return _json(self, {"error": "bad user_id", "user_id": user_id[:MAX_USER_ID_CHARS]}, 400)
            now_ms = int(time.time() * 1000)
            try:
                as_of = parse_as_of(request.query.get("as_of"), now_ms)
            except ValueError as exc:
                return _json(self, {"error": str(exc), "as_of": request.query.get("as_of")}, 400)
            key = user_id.encode("utf-8")
            _, details = stage.readiness()
            ready = details["recovered"]  # a lookup needs the table, not the broker
            row = stage.table.get(key) if ready else None
            owned_here = row is not None and row.get("partition") in stage.active_partitions()
            if not owned_here and request.headers.get(ROUTED_HEADER) is None:
                # Not in one of our active partitions (a standby copy does not count): ask the owner.
                owner = owner_url(app, stage.table.name, key)
                if owner is None:
                    return _json(self, {"error": "partition owners unknown (rebalancing); retry"}, 503)
                if owner != str(app.conf.canonical_url):
                    return await forward(self, request, owner)
            if not ready:
                return _json(self, {"error": "this worker is recovering its table", **details}, 503)
            if row is None:
                return _json(self, {"error": "unknown user", "user_id": user_id}, 404)
            own_as_of = row.get("as_of") or 0
            target = as_of if as_of is not None else max(now_ms, own_as_of)
            try:
                profile = stage.profile_json(key, as_of=target)
            except ValueError as exc:
                return _json(self, {"error": str(exc), "as_of": target, "profile_as_of": own_as_of}, 400)
            return _json(self, profile or {})

    def liveness() -> tuple[int, dict[str, Any]]:
        if stage.agent_failure is not None:
            return 503, {"status": "agent stopped", "reason": stage.agent_failure}
        if stage.stall.stalled():
            reason = "signals are waiting but no offset moved (see consumers/profiles/watchdog.py)"
            return 503, {"status": "stalled", "stalled_for_s": stage.stall.stalled_for(), "reason": reason}
        return 200, {"status": "ok"}

    register_probes(app, liveness, stage.readiness)
