"""The HTTP edge: what a request may be before any route sees it.

A pure ASGI middleware, so it runs before FastAPI reads anything:

* a path or query string holding NUL is refused (PostgreSQL cannot hold it; SQLite
  would: both databases must refuse the same requests);
* a body is limited before it is read: a ``Content-Length`` over the route's limit is
  refused at once, a chunked body as soon as it passes the limit; nothing over the limit
  is ever held in memory, so oversized bodies leave memory flat;
* a JSON body is read once, by the strict reader (``ledger/strict_json.py``: UTF-8, no
  lone surrogates, no duplicate members, no NUL, bounded depth), a large one in a worker
  thread so it never holds the event loop (a small one inline, which costs less than the
  hand-off); routes take the parsed value from ``request.state.json_body``. GraphQL's
  query-string ``variables`` and ``extensions`` get the same reader.

Refusals are JSON ``{error, detail, field}``: ``413 too_large`` for size, ``422
malformed`` for the rest.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import anyio

from ledger.errors import MalformedError
from ledger.settings import Settings
from ledger.strict_json import parse_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BULK_PATH = "/v1/statements/bulk"
BUNDLE_PATHS = ("/v1/certificates/verify", "/graphql")
#: Bodies the strict reader does not parse (GraphQL's other transports).
NOT_JSON = ("multipart/", "application/graphql")


@dataclass(frozen=True)
class Limits:
    """Per-request limits (``LEDGER_MAX_*`` settings)."""

    body_bytes: int = 1_048_576
    bulk_body_bytes: int = 16_777_216
    certificate_body_bytes: int = 4_194_304
    json_depth: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            body_bytes=settings.max_body_bytes,
            bulk_body_bytes=settings.max_bulk_body_bytes,
            certificate_body_bytes=settings.max_certificate_body_bytes,
            json_depth=settings.max_json_depth,
        )

    def body_limit(self, path: str) -> tuple[int, str]:
        """The body limit of ``path`` and the setting that raises it."""
        if path == BULK_PATH:
            return self.bulk_body_bytes, "LEDGER_MAX_BULK_BODY_BYTES"
        if path.rstrip("/") in BUNDLE_PATHS:
            return self.certificate_body_bytes, "LEDGER_MAX_CERTIFICATE_BODY_BYTES"
        return self.body_bytes, "LEDGER_MAX_BODY_BYTES"


class Refusal(Exception):  # noqa: N818 - a response, not a fault
    """A request refused at the edge, with its status and error body."""

    def __init__(self, status: int, code: str, detail: str, field: str) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"error": code, "detail": f"{field}: {detail}", "field": field}


class InputLimits:
    """ASGI middleware applying ``Limits`` (module docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_target(scope, self.limits)
            if scope["method"] in ("POST", "PUT", "PATCH"):
                receive = await self._read_body(scope, receive)
        except Refusal as refusal:
            await _respond(send, refusal)
            return
        await self.app(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive:
        """Read the body within its limit, parse it if it is JSON, and hand the app a
        ``receive`` that replays it."""
        limit, setting = self.limits.body_limit(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _too_large(limit, setting)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, setting)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if body and not content_type.startswith(NOT_JSON):
            scope.setdefault("state", {})["json_body"] = await _parse(body, self.limits)
        return _replay(body, receive)


#: Bodies up to this size are parsed on the event loop (tens of microseconds, less than
#: handing them to a thread and back); larger ones in a worker thread.
INLINE_PARSE_BYTES = 16_384


async def _parse(body: bytes, limits: Limits) -> Any:
    try:
        if len(body) <= INLINE_PARSE_BYTES:
            return parse_json(body, max_depth=limits.json_depth)
        return await anyio.to_thread.run_sync(lambda: parse_json(body, max_depth=limits.json_depth))
    except MalformedError as error:
        raise Refusal(422, error.code, error.detail, error.field or "body") from None


def _check_target(scope: Scope, limits: Limits) -> None:
    """No NUL in the path or the query; GraphQL's query-string JSON read strictly."""
    if "\x00" in scope["path"]:
        raise Refusal(422, "malformed", "holds a NUL character", "path")
    query = scope.get("query_string", b"")
    if b"\x00" in unquote_to_bytes(query):
        raise Refusal(422, "malformed", "holds a NUL character", "query")
    if scope["path"].rstrip("/") == "/graphql" and query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name in ("variables", "extensions") and value:
                try:
                    parse_json(value, max_depth=limits.json_depth, where=name)
                except MalformedError as error:
                    raise Refusal(422, error.code, error.detail, error.field or name) from None


def _too_large(limit: int, setting: str) -> Refusal:
    return Refusal(
        413, "too_large", f"the body exceeds {limit} bytes (operator setting {setting})", "body"
    )


def _replay(body: bytes, downstream: Receive) -> Receive:
    """The body once, then the real channel (which reports the client's disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await downstream()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _respond(send: Send, refusal: Refusal) -> None:
    payload = json.dumps(refusal.body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
