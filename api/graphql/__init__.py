"""GraphQL at ``/graphql`` (GraphiQL in a browser): see docs/graphql.md."""

from __future__ import annotations

from fastapi import Request
from strawberry.fastapi import GraphQLRouter

from api.graphql.context import Context, viewer_from_header
from api.graphql.schema import schema
from ledger.log import Ledger


def graphql_router(ledger: Ledger, *, anonymous_certificates: bool = False) -> GraphQLRouter:
    """The ``/graphql`` router; each request gets its own context and loaders.

    The context getter is ``async`` so FastAPI runs it on the event loop rather than
    handing it to a worker thread (a thread hop per request costs more than the one
    indexed token lookup it makes)."""

    async def context(request: Request) -> Context:
        viewer, refusal = viewer_from_header(ledger, request.headers.get("authorization"))
        return Context(ledger, viewer, refusal, anonymous_certificates)

    return GraphQLRouter(schema, context_getter=context, graphql_ide="graphiql")


__all__ = ["graphql_router", "schema"]
