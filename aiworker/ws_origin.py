"""The WebSocket Origin check: a board socket is accepted only from a page of this very site,
compared by scheme, host and port (Channels' AllowedHostsOriginValidator compares the host
alone, so http://host:1234 or a plain-http page would pass for https://host).

The site's own origin is the handshake's Host header (which must be in ALLOWED_HOSTS) with the
scheme of the connection: wss is https; behind a trusted proxy (SECURE_PROXY_SSL_HEADER, set by
TRUSTED_PROXY) the proxy's X-Forwarded-Proto says. Origins in CSRF_TRUSTED_ORIGINS are accepted
too, exactly as written there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    parts = urlsplit(text.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


def own_origin(scope: dict[str, Any]) -> Origin | None:
    headers = _headers(scope)
    host = headers.get("host", "")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        forwarded = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower())
        if forwarded is not None:
            scheme = "https" if forwarded.split(",")[0].strip() == secure_value else "http"
    return parse_origin(f"{scheme}://{host}")


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _headers(scope).get("origin")
    theirs = parse_origin(origin) if origin else None
    if theirs is None:
        return False
    if theirs == own_origin(scope):
        return True
    return theirs in {parse_origin(o) for o in settings.CSRF_TRUSTED_ORIGINS}


class SameOriginValidator:
    """ASGI middleware for the websocket router: refuses the handshake (HTTP 403) otherwise."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers") or []
    }
