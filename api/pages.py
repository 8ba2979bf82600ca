"""The pages a browser opens: a landing page at ``/``, Swagger UI at ``/docs`` and
GraphiQL at ``/graphql``, all served by the application from ``api/static``.

Nothing loads from a CDN: the browser libraries are copied from pinned npm packages into
``api/static/vendor`` by the one asset pipeline (``scripts/assets``, README "Browser
assets"), whose ``manifest.json`` records each file's package, version and digest. So the
docs work offline and where public CDNs are out of reach.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from ledger import __version__

STATIC = files("api") / "static"
VENDOR = "/static/vendor"


@cache
def graphiql_html() -> str:
    """GraphiQL opening on an example buyer query, the token's place shown in Headers."""
    page = (STATIC / "graphiql.html").read_text(encoding="utf-8")
    example = (STATIC / "graphiql-example.graphql").read_text(encoding="utf-8")
    # JSON is a JavaScript string literal; "</" escaped so no text can close the script.
    return page.replace("__EXAMPLE_QUERY__", json.dumps(example).replace("</", "<\\/"))


@cache
def landing_html() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8").replace("__VERSION__", __version__)


def install(app: FastAPI) -> None:
    """Mount the static files and add ``/`` and ``/docs`` (the app is created with
    ``docs_url=None`` and ``redoc_url=None``; ``/graphql`` takes ``graphiql_html``)."""
    app.mount("/static", StaticFiles(packages=[("api", "static")]), name="static")

    @app.get("/", include_in_schema=False)
    async def landing() -> HTMLResponse:
        return HTMLResponse(landing_html())

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
        )
