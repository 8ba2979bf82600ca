"""Request-scoped access to the one ``Ledger`` an app serves."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request

from ledger.errors import MalformedError
from ledger.log import Ledger
from ledger.tokens import Viewer, viewer_from_authorization


def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def get_viewer(request: Request) -> Viewer:
    """Who reads: the participant of a bearer token (the same tokens as GraphQL), or
    anonymous without one. A token that does not authenticate is refused (401)."""
    ledger: Ledger = request.app.state.ledger
    return viewer_from_authorization(ledger.engine, request.headers.get("authorization"))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def _refuse_constant(name: str) -> Any:
    raise MalformedError(f"{name} is not valid JSON", field="body")


async def json_body(request: Request) -> Any:
    """The raw JSON body, parsed without coercion so floats can be refused by field."""
    raw = await request.body()
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise MalformedError(f"body is not valid JSON: {exc}", field="body") from exc


BodyDep = Annotated[Any, Depends(json_body)]
