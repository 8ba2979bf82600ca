"""Request ids: every HTTP request gets one, in ``request.state.request_id`` and in the
``X-Request-Id`` response header, so an error answer and the server log meet on it.

A client may send its own ``X-Request-Id`` (at most 64 characters of ``A-Z a-z 0-9 -``,
e.g. a UUID); anything else is ignored and a random id is made instead, so nothing a
client sends reaches a log line or a header unchecked.
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
MAX_LENGTH = 64
_VALID = re.compile(rf"[A-Za-z0-9-]{{1,{MAX_LENGTH}}}")


#: Random per process, so ids from several server processes (and restarts) never meet.
_PROCESS_PREFIX = secrets.token_hex(8)
_sequence = itertools.count(1)


def new_request_id() -> str:
    """A unique id: the process's random prefix and a counter (``3f2a...-1a``). Not a
    secret, only a handle to find the request in the logs, so no system call per request."""
    return f"{_PROCESS_PREFIX}-{next(_sequence):x}"


def valid_request_id(value: str) -> bool:
    return _VALID.fullmatch(value) is not None


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text = value.decode("latin-1")
            return text if valid_request_id(text) else None
    return None


class RequestIds:
    """Pure ASGI middleware: ``app.add_middleware(RequestIds)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id_of(connection: HTTPConnection | Any) -> str:
    """The request's id (a new one if no ``RequestIds`` middleware gave it one)."""
    state = connection.scope.get("state") or {}
    found = state.get("request_id")
    return found if isinstance(found, str) else new_request_id()
