"""The gallery's two ASGI guards: a Content Security Policy of 'self' only on every response (the page loads
nothing from elsewhere: no CDN, no inline script), and a limit on the request body that answers 413 with a JSON
message (FastAPI's own `max_body_size` answers a body whose Content-Length is too large in plain text, whatever
the app's error handlers say)."""
from __future__ import annotations

from typing import Any, Dict

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                 b"script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: every response says that the page loads nothing from elsewhere (a Content Security
    Policy of 'self' only: no CDN, no inline script) and is not sniffed or framed."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
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
