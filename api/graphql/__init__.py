"""GraphQL at ``/graphql`` (GraphiQL in a browser): see docs/graphql.md."""

from __future__ import annotations

from fastapi import Request
from strawberry.fastapi import GraphQLRouter

from api.graphql.context import Context
from api.graphql.cost import DEFAULT_MAX_COST
from api.graphql.execution import DEFAULT_TIME_LIMIT_S
from api.graphql.schema import make_schema, schema
from api.pages import graphiql_html
from api.request_ids import request_id_of
from ledger.log import Ledger


def graphql_router(
    ledger: Ledger,
    *,
    anonymous_certificates: bool = False,
    max_cost: int = DEFAULT_MAX_COST,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> GraphQLRouter:
    """The ``/graphql`` router; each request gets its own context and loaders.

    ``max_cost``: the most an operation may cost (``cost.py``); ``time_limit_s``: how long
    one request may read for. The context getter runs on the event loop and does no I/O
    (the token is looked up on first use); everything else of a request, from parsing to
    the last resolver, runs in a worker thread (``execution.py``)."""
    limited = (
        schema
        if (max_cost, time_limit_s) == (DEFAULT_MAX_COST, DEFAULT_TIME_LIMIT_S)
        else make_schema(max_cost=max_cost, time_limit_s=time_limit_s)
    )

    async def context(request: Request) -> Context:
        authorization = request.headers.get("authorization")
        return Context(ledger, authorization, anonymous_certificates, request_id_of(request))

    router = _Router(limited, context_getter=context, graphql_ide="graphiql")
    for route in router.routes:
        # GraphQL is described by its own schema (SDL, introspection, GraphiQL), not by the
        # REST document, which could only say "200, or a 400 in strawberry's words".
        route.include_in_schema = False  # type: ignore[attr-defined]
    return router


class _Router(GraphQLRouter[Context, None]):
    """Strawberry's router with our GraphiQL page (``api/pages.py``: served assets, no
    CDN; an example buyer query; the token's place shown)."""

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_html()


__all__ = ["graphql_router", "schema"]
