"""One ASGI layer around every request: a body size cap, an access log without payloads, safe headers."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("facesift.server.access")

#: the page loads nothing from elsewhere; photos are shown from blob: URLs
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class BodyTooLargeError(Exception):
    """The request body is over the configured limit (413)."""


class ServiceMiddleware:
    """Refuse bodies over ``max_body`` bytes (by header at once, else while reading); log one line per request.

    The log line holds method, path, status, time, body size and the key id, never a body, image or
    embedding, and never the key itself.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        received = 0
        message_text = f"The request body is over the limit of {self.max_body:,} bytes; send a smaller image"

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLargeError(message_text)
            return message

        try:
            declared = int(dict(scope["headers"]).get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        try:
            if declared > self.max_body:
                body = json.dumps({"error": "RequestTooLarge", "detail": message_text}).encode()
                await send_with_headers({"type": "http.response.start", "status": 413, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
            else:
                await self.app(scope, limited_receive, send_with_headers)
        finally:
            log.info(
                "%s %s %s %.1fms %dB key=%s", scope["method"], scope["path"], status,
                (time.perf_counter() - started) * 1000, max(received, declared),
                scope.get("state", {}).get("key_id", "-"),
            )
