"""The gallery's ASGI guards (the threat model: README, "Security"):

- `SecurityHeaders`: a Content Security Policy of 'self' only on every response (the page loads nothing from
  elsewhere: no CDN, no inline script).
- `BodyLimit`: a limit on the request body that answers 413 with a JSON message (FastAPI's own
  `max_body_size` answers a body whose Content-Length is too large in plain text).
- `HostCheck`: on a loopback address, only requests that name a loopback host (127.0.0.1, localhost, [::1])
  are answered: a page elsewhere cannot reach the gallery by DNS rebinding.
- `SameOrigin`: a request that can start work (every POST, every /api request) coming from another site's
  page (its browser says so in `Sec-Fetch-Site` or `Origin`) is refused: any page the user visits could
  otherwise post forms to the gallery.
- `TokenCheck`: on any other address (`nfzoo serve --allow-remote`), every request carries the server's
  token: `?token=` once (the address `nfzoo serve` prints), then a cookie the server sets, or an
  `Authorization: Bearer` header.
"""
from __future__ import annotations

import hmac
from typing import Any, Dict, Iterable, Optional
from urllib.parse import parse_qs

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .hosts import host_name

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                 b"script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: every response says that the page loads nothing from elsewhere (a Content Security
    Policy of 'self' only: no CDN, no inline script) and is not sniffed or framed. `policies` maps a path prefix
    to another 'self'-only policy for the responses under it (the exported browser pages under /web/ compile
    WebAssembly: nfzoo_gallery.websites.SITE_CSP)."""

    def __init__(self, app: Any, policies: Optional[Dict[str, bytes]] = None) -> None:
        self.app, self.policies = app, dict(policies or {})

    def headers_for(self, path: str) -> list:
        """The security headers of a response to `path`."""
        for prefix, csp in self.policies.items():
            if path.startswith(prefix):
                return [(b"content-security-policy", csp)] + SECURITY_HEADERS[1:]
        return SECURITY_HEADERS

    async def __call__(self, scope: Dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self.headers_for(str(scope.get("path", "")))

        async def send_with_headers(message: Dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413 and `message` (JSON): at once when
    its Content-Length says so, else as soon as the bytes read pass the limit (nothing more is read)."""

    def __init__(self, app: Any, max_bytes: int, message: str) -> None:
        self.app, self.max_bytes, self.message = app, int(max_bytes), message

    async def __call__(self, scope: Dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            declared = int(declared) if declared is not None else None
        except ValueError:
            declared = None
        if declared is not None and declared > self.max_bytes:
            return await JSONResponse({"error": self.message}, status_code=413)(scope, receive, send)
        total = 0

        async def limited_receive() -> Dict:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.max_bytes:      # FastAPI passes an HTTPException on to the app's handler
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, limited_receive, send)


TOKEN_COOKIE = "nfzoo_gallery_token"


async def _refuse(scope: Dict, receive: Any, send: Any, status: int, message: str) -> None:
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)


def _headers(scope: Dict) -> Dict[bytes, bytes]:
    return {k.lower(): v for k, v in (scope.get("headers") or [])}


class HostCheck:
    """ASGI middleware: answer only requests whose Host header names one of `allowed` (any port); others get
    400 with a message (a DNS-rebinding page names its own host)."""

    def __init__(self, app: Any, allowed: Iterable[str]) -> None:
        self.app, self.allowed = app, {host_name(h) if h.startswith("[") else h.lower() for h in allowed}

    async def __call__(self, scope: Dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = host_name(_headers(scope).get(b"host", b"").decode("latin-1"))
        if host not in self.allowed:
            return await _refuse(scope, receive, send, 400,
                                 f"this gallery answers requests for {', '.join(sorted(self.allowed))} only, not "
                                 f"{host[:100]!r}: open it at the address `nfzoo serve` printed")
        await self.app(scope, receive, send)


def _own_origin(scope: Dict) -> str:
    host = _headers(scope).get(b"host", b"").decode("latin-1").strip().lower()
    return f"{scope.get('scheme', 'http')}://{host}"


class SameOrigin:
    """ASGI middleware: a request that can start work (any method but GET / HEAD / OPTIONS, and every request
    under /api) is refused with 403 when the browser says it comes from another site: `Sec-Fetch-Site` other
    than same-origin or none, or an `Origin` other than the gallery's own (the opaque origin "null"
    included). A request with neither header (curl, a script) passes: only browsers send them, and a page
    cannot leave them out."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        guarded = scope.get("method", "GET") not in ("GET", "HEAD", "OPTIONS") or \
            str(scope.get("path", "")).startswith("/api")
        if guarded:
            headers = _headers(scope)
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
            origin = headers.get(b"origin", b"").decode("latin-1").strip().lower()
            own = _own_origin(scope)
            if site and site not in ("same-origin", "none"):
                return await _refuse(scope, receive, send, 403,
                                     f"a {site} request is refused: the gallery answers its own page only "
                                     f"(open {own}/ and use it there)")
            if origin and origin != own:
                return await _refuse(scope, receive, send, 403,
                                     f"a request from the origin {origin[:100]!r} is refused: the gallery answers "
                                     f"its own page only ({own})")
        await self.app(scope, receive, send)


class TokenCheck:
    """ASGI middleware for a gallery reachable from other machines: every request carries `token`, as
    `?token=TOKEN` (the page's address; the answer then sets an HttpOnly, SameSite=Strict cookie), the
    cookie, or `Authorization: Bearer TOKEN`. Others get 401."""

    def __init__(self, app: Any, token: str) -> None:
        if not token or len(token) < 16:
            raise ValueError("the gallery's token must have at least 16 characters")
        self.app, self.token = app, token

    def _given(self, scope: Dict) -> "tuple[Optional[str], bool]":
        headers = _headers(scope)
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                return value, False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return (query[0], True) if query else (None, False)

    async def __call__(self, scope: Dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given, from_query = self._given(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return await _refuse(scope, receive, send, 401,
                                 "this gallery asks for its token: open the address `nfzoo serve` printed (it ends "
                                 "in ?token=...)")
        if not from_query:
            return await self.app(scope, receive, send)
        cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def send_with_cookie(message: Dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [(b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
