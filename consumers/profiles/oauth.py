"""SASL/OAUTHBEARER tokens for the faust stages, from the same ``sasl.oauthbearer.*`` keys as stage 1.

librdkafka (stage 1) fetches OAUTHBEARER tokens itself: with ``sasl.oauthbearer.method=oidc`` by
the OAuth 2.0 client-credentials grant against ``sasl.oauthbearer.token.endpoint.url``, otherwise
as an unsecured JWT described by ``sasl.oauthbearer.config`` (``principal=... scope=...
lifeSeconds=...``, for development brokers only). aiokafka (under faust) needs a token provider
object instead; these two providers do the same from the same keys, so one Secret configures
every stage. Tokens are reused until a minute before they expire.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from aiokafka.abc import AbstractTokenProvider

REFRESH_MARGIN_S = 60.0  # fetch a new token this long before the current one expires
DEFAULT_LIFETIME_S = 3600.0  # when the token endpoint does not say (no expires_in)
FETCH_TIMEOUT_S = 10.0


class TokenError(RuntimeError):
    """No token could be obtained; the message names the endpoint and the cause."""


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_extensions(text: str | None) -> dict[str, str]:
    """``"a=1,b=2"`` (librdkafka's ``sasl.oauthbearer.extensions``) → ``{"a": "1", "b": "2"}``."""
    extensions: dict[str, str] = {}
    for item in (text or "").split(","):
        if item.strip():
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"sasl.oauthbearer.extensions: {item.strip()!r} is not key=value")
            extensions[key.strip()] = value.strip()
    return extensions


class _CachedTokenProvider(AbstractTokenProvider):
    def __init__(self, extensions: dict[str, str], clock: Callable[[], float] = time.time) -> None:
        self._extensions = extensions
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                self._token, lifetime = await self._new_token()
                self._expires_at = self._clock() + lifetime
            return self._token

    def extensions(self) -> dict[str, str]:
        return dict(self._extensions)

    async def _new_token(self) -> tuple[str, float]:
        raise NotImplementedError


class UnsecuredJwtProvider(_CachedTokenProvider):
    """An unsigned JWT (``alg: none``) for brokers using Kafka's unsecured validator: development only."""

    def __init__(self, config: str, extensions: dict[str, str], clock: Callable[[], float] = time.time) -> None:
        super().__init__(extensions, clock)
        fields = dict(item.partition("=")[::2] for item in config.split())
        self.principal = fields.get("principal", "")
        if not self.principal:
            raise ValueError("sasl.oauthbearer.config needs principal=NAME (e.g. 'principal=shoppulse')")
        self.scope = fields.get("scope", "")
        self.lifetime_s = float(fields.get("lifeSeconds", DEFAULT_LIFETIME_S))

    async def _new_token(self) -> tuple[str, float]:
        now = self._clock()
        claims: dict[str, Any] = {"sub": self.principal, "iat": int(now), "exp": int(now + self.lifetime_s)}
        if self.scope:
            claims["scope"] = self.scope.replace(",", " ")
        return f"{_b64url({'alg': 'none'})}.{_b64url(claims)}.", self.lifetime_s


class ClientCredentialsProvider(_CachedTokenProvider):
    """OAuth 2.0 client-credentials grant (HTTP Basic client authentication), as librdkafka's ``oidc``."""

    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        extensions: dict[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(extensions, clock)
        self.endpoint = endpoint
        self._form = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._authorization = f"Basic {basic}"

    async def _new_token(self) -> tuple[str, float]:
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> tuple[str, float]:
        request = urllib.request.Request(
            self.endpoint,
            data=urllib.parse.urlencode(self._form).encode(),
            headers={"Authorization": self._authorization, "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise TokenError(f"token endpoint {self.endpoint} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise TokenError(f"token endpoint {self.endpoint}: {exc}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"token endpoint {self.endpoint} returned no access_token")
        expires_in = body.get("expires_in", DEFAULT_LIFETIME_S)
        return token, float(expires_in) if isinstance(expires_in, int | float) else DEFAULT_LIFETIME_S
