"""One ASGI layer around every request, whatever route serves it (routes added later included):

- the API key is checked for every ``/v1`` path before any byte of the body is read (401 at once);
- the body is capped (413 by its header at once, else while reading, however the route reads it) and must
  arrive within ``body_timeout`` seconds (408);
- every error is JSON with the security headers, a bug included (500, its traceback only in the server log),
  and a client that goes away mid-request ends quietly (logged as 499);
- one access-log line per request with its real status, the path escaped (no forged lines) and person ids
  replaced by a per-process hash; never a body, image, embedding or key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("facesift.server.access")
errors = logging.getLogger("facesift.server")

#: the page loads nothing from elsewhere; photos are shown from blob: URLs
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

#: the paths that need an API key (the page, its files, the docs and the health checks do not)
PROTECTED_PREFIX = "/v1/"
#: path parameters whose values are personal and so are logged as a hash: any whose name mentions a person
_PRIVATE_PARAM = "person"
#: what a logged path may show as is; everything else (CR, LF, NUL, escapes, spaces, non-ASCII) is %-encoded
_LOG_SAFE = "/:@!$&'()*+,;=-._~"
NO_KEY, BAD_KEY = "Send an API key in the X-API-Key header", "The API key is wrong or revoked"


class BodyTooLargeError(Exception):
    """The request body is over the configured limit (413)."""


class BodyTimeoutError(Exception):
    """The request body did not arrive within the configured time (408)."""


@dataclass
class _Exchange:
    """What the layer knows about one request while it runs."""

    status: int = 0
    received: int = 0
    body_done: bool = False
    started: bool = False
    refused: tuple[int, str, str] | None = None  # (status, error, detail) that replaces whatever the app says
    disconnected: bool = False


class ServiceMiddleware:
    """See the module docstring. ``authenticate(scope, key_text)`` returns the key id of a valid key, or None."""

    def __init__(self, app: ASGIApp, max_body: int, body_timeout: float = 60.0, log_person_ids: bool = False) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.log_person_ids = log_person_ids
        self._id_key = secrets.token_bytes(16)  # person ids hash the same within one run of the service only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        deadline = time.monotonic() + self.body_timeout
        exchange = _Exchange()
        too_large = f"The request body is over the limit of {self.max_body:,} bytes; send a smaller image"

        async def guarded_send(message: Message) -> None:
            if exchange.refused is not None and not exchange.started and message["type"] == "http.response.start":
                await _send_error(exchange, send, *exchange.refused)  # the app's own answer to a cut body (400...)
                return
            if exchange.refused is not None and exchange.started and exchange.status == exchange.refused[0]:
                return  # the rest of the app's replaced response
            if message["type"] == "http.response.start":
                exchange.status, exchange.started = message["status"], True
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        async def guarded_receive() -> Message:
            if exchange.body_done:
                message = await receive()  # after the body only http.disconnect comes: no deadline
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    exchange.refused = (408, "RequestTimeout",
                                        f"The request body did not arrive within {self.body_timeout:g} s; send it faster")
                    raise BodyTimeoutError(exchange.refused[2]) from None
            if message["type"] == "http.disconnect":
                exchange.disconnected = True
            elif message["type"] == "http.request":
                exchange.received += len(message.get("body", b""))
                exchange.body_done = not message.get("more_body", False)
                if exchange.received > self.max_body:
                    exchange.refused = (413, "RequestTooLarge", too_large)
                    raise BodyTooLargeError(too_large)
            return message

        headers = dict(scope["headers"])
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        try:
            if declared > self.max_body:
                await _send_error(exchange, send, 413, "RequestTooLarge", too_large, close=True)
            elif scope["path"].startswith(PROTECTED_PREFIX) and (problem := self._unauthorized(scope, headers)):
                await _send_error(exchange, send, 401, "Unauthorized", problem, close=declared > 0,
                                  extra=[(b"www-authenticate", b"ApiKey")])
            else:
                await self.app(scope, guarded_receive, guarded_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: every failure becomes a JSON answer
            if exchange.refused is not None:
                if not exchange.started:
                    await _send_error(exchange, send, *exchange.refused, close=True)
            elif exchange.disconnected or _gone(exc):
                exchange.status = 499  # the client went away: nothing to answer, nothing to trace
            else:
                errors.error("Unexpected error in %s %s", scope["method"], self._logged_path(scope), exc_info=exc)
                if not exchange.started:
                    await _send_error(exchange, send, 500, "InternalError", "An unexpected error; it was logged on the server")
                else:
                    exchange.status = 500
        finally:
            log.info("%s %s %s %.1fms %dB key=%s", scope["method"], self._logged_path(scope), exchange.status,
                     (time.perf_counter() - began) * 1000, max(exchange.received, declared),
                     scope.get("state", {}).get("key_id", "-"))

    def _unauthorized(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        """Why a request to a protected path may not go on (no or a bad key), or None; before any body is read."""
        text = headers.get(b"x-api-key", b"").decode("latin-1")
        if not text:
            return NO_KEY
        keys = scope["app"].state.service.keys
        key = keys.authenticate(text)
        if key is None:
            return BAD_KEY
        scope.setdefault("state", {})["key_id"] = key.key_id
        return None

    def _logged_path(self, scope: Scope) -> str:
        """The path as it may go in a log: person ids hashed (unless configured otherwise), then %-escaped."""
        path = scope["path"]
        if not self.log_person_ids:
            for name, value in (scope.get("path_params") or {}).items():
                if _PRIVATE_PARAM in name and isinstance(value, str) and value:
                    digest = hmac.new(self._id_key, value.encode(), hashlib.sha256).hexdigest()[:10]
                    path = path.replace(f"/{value}", f"/~{digest}", 1)
        return urllib.parse.quote(path, safe=_LOG_SAFE)


def _gone(exc: BaseException) -> bool:
    return isinstance(exc, (ClientDisconnect, ConnectionResetError, BrokenPipeError))


async def _send_error(exchange: _Exchange, send: Send, status: int, kind: str, detail: str, *, close: bool = False,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": kind, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the body was not read (or not all of it): the connection cannot carry another request
        headers.append((b"connection", b"close"))
    exchange.status, exchange.started = status, True
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or []) + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})
