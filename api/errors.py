"""Every error leaves the API as JSON ``{error, detail, field}`` with one status code."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from ledger.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    LedgerError,
    MalformedError,
    NotFoundError,
    ProofError,
    SignatureError,
)

log = logging.getLogger("alu-ledger.api")


class ErrorModel(BaseModel):
    """Every refusal's body, whatever the status."""

    error: str = Field(
        description="malformed, invalid, bad_signature, forbidden, not_found, conflict,"
        " too_large, unavailable or internal",
        examples=["malformed"],
    )
    detail: str = Field(examples=["payload.mass_kg: must be a positive integer"])
    field: str | None = Field(default=None, examples=["payload.mass_kg"])


_MEANINGS = {
    401: "Bad signature, or an API token that does not authenticate",
    403: "The signer or reader may not do this",
    404: "Not found",
    409: "Replay, or a conflict with what the ledger records",
    413: "Body larger than the route's limit",
    422: "Malformed or invalid input; `field` names what",
    503: "The database is unavailable for a moment; retry after `Retry-After` seconds",
}


_ERROR_REF = {"$ref": "#/components/schemas/ErrorModel"}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for refusals a route can answer with, each with the error body
    as JSON (also on routes whose answer is text; ``install`` registers the component).
    422 here replaces FastAPI's own validation body, which this API never sends."""
    return {
        status: {
            "description": _MEANINGS[status],
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        for status in statuses
    }


def _with_error_component(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["ErrorModel"] = ErrorModel.model_json_schema()
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


#: What any route may answer besides its own refusals.
EVERY_ROUTE = documented(422, 503)

STATUS: dict[type[LedgerError], int] = {
    MalformedError: 422,
    InvalidError: 422,
    SignatureError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    ProofError: 500,
}


def status_of(error: LedgerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, detail: str, field: str | None = None) -> dict[str, str]:
    body = {"error": code, "detail": detail}
    if field:
        body["field"] = field
    return body


def install(app: FastAPI) -> None:
    _with_error_component(app)

    @app.exception_handler(LedgerError)
    async def _ledger_error(_request: Request, error: LedgerError) -> JSONResponse:
        detail = f"{error.field}: {error.detail}" if error.field else error.detail
        return JSONResponse(
            error_body(error.code, detail, error.field), status_code=status_of(error)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(
            str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")
        )
        return JSONResponse(
            error_body("malformed", f"{field}: {first.get('msg', 'invalid')}", field or None),
            status_code=422,
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, error: DBAPIError) -> JSONResponse:
        """A connection the database dropped (a restart): the pool has let go of it and of
        every connection as old (no ping before each use, which would cost a round trip
        per request), so the request can be retried at once; it changed nothing stored."""
        if error.connection_invalidated:
            log.warning("database connection lost: %s", error.orig)
            detail = "the database connection was lost; retry the request"
            return JSONResponse(
                error_body("unavailable", detail), status_code=503, headers={"Retry-After": "1"}
            )
        return await _unexpected(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        """A fault of ours: logged with the request id, answered without its text."""
        request_id = getattr(request.state, "request_id", None) or secrets.token_hex(8)
        log.error("request %s failed", request_id, exc_info=error)
        detail = f"internal error; quote request id {request_id} to the operator"
        return JSONResponse(
            error_body("internal", detail), status_code=500, headers={"X-Request-Id": request_id}
        )

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, error: HTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else "http_error"
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code)
