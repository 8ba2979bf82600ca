"""The pages a browser opens (``/``, ``/docs``, ``/graphql``) are served by the application
itself: every script and stylesheet they load is one of ours, under ``/static``, copied from
a pinned npm package and unchanged since (``api/static/vendor/manifest.json``). GraphiQL
opens on an example buyer query that runs against a demo ledger, and says where the token
goes. In Chromium with every request off this host refused, both UIs still render."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.pages import STATIC
from ledger.demo import load_demo
from ledger.tokens import issue_token
from tests.conftest import make_env
from tests.support import serving

ROOT = Path(__file__).resolve().parents[1]
VENDOR = Path(str(STATIC)) / "vendor"
ASSET_REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A demo ledger served over HTTP, and the demo buyer's API token."""
    tmp = tmp_path_factory.mktemp("pages")
    env = make_env(f"sqlite:///{tmp / 'ledger.db'}", tmp / "data")
    load_demo(env.ledger, env.settings, tmp / "keys")
    token = issue_token(env.ledger.engine, "foshan-extrusion").token
    with serving(env.ledger) as url:
        yield url, token
    env.ledger.engine.dispose()


def page(url: str, path: str) -> str:
    response = httpx.get(url + path, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def references(html: str) -> list[str]:
    return ASSET_REFERENCE.findall(html)


@pytest.mark.parametrize("path", ["/", "/docs", "/graphql"])
def test_a_page_loads_nothing_from_another_site(site: tuple[str, str], path: str) -> None:
    url, _ = site
    html = page(url, path)
    assert "unpkg.com" not in html and "jsdelivr" not in html
    for reference in references(html):
        assert not reference.startswith(("http:", "https:", "//")), reference
        if reference.startswith("/static/"):
            assert httpx.get(url + reference).status_code == 200, reference


def test_the_landing_page_links_docs_graphql_log_key_and_checkpoint(
    site: tuple[str, str],
) -> None:
    url, _ = site
    links = set(references(page(url, "/")))
    assert {"/docs", "/graphql", "/v1/log-key", "/v1/checkpoint", "/openapi.json"} <= links
    for link in ("/docs", "/v1/log-key", "/v1/checkpoint", "/openapi.json"):
        assert httpx.get(url + link).status_code == 200


def test_graphiql_opens_on_an_example_query_and_shows_where_the_token_goes(
    site: tuple[str, str],
) -> None:
    url, _ = site
    html = page(url, "/graphql")
    example = (Path(str(STATIC)) / "graphiql-example.graphql").read_text()
    assert json.dumps(example).replace("</", "<\\/") in html
    assert "Authorization" in html and "Bearer" in html


def test_the_example_query_runs_for_the_demo_buyer(site: tuple[str, str]) -> None:
    url, token = site
    query = (Path(str(STATIC)) / "graphiql-example.graphql").read_text()
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(url + "/graphql", json={"query": query}, headers=headers).json()
    assert "errors" not in answer, answer
    assert answer["data"]["batches"]["edges"], "the demo has batches to show"
    anonymous = httpx.post(url + "/graphql", json={"query": query}).json()
    assert "Authorization: Bearer" in anonymous["errors"][0]["message"]  # says what to send


# -- the vendored files ---------------------------------------------------------------------
def manifest() -> dict:
    return json.loads((VENDOR / "manifest.json").read_text())


def test_vendored_files_are_the_pinned_packages_unchanged() -> None:
    pinned = json.loads((ROOT / "scripts" / "assets" / "package.json").read_text())
    locked = json.loads((ROOT / "scripts" / "assets" / "package-lock.json").read_text())
    assert set(manifest()) == set(pinned["dependencies"])
    for name, entry in manifest().items():
        assert entry["version"] == pinned["dependencies"][name]
        assert locked["packages"][f"node_modules/{name}"]["version"] == entry["version"]
        for file, digest in entry["files"].items():
            data = (VENDOR / name / file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{name}/{file} was edited"


def test_every_vendored_package_keeps_its_licence() -> None:
    for name, entry in manifest().items():
        assert any(Path(file).name.lower().startswith("license") for file in entry["files"]), name


def test_nothing_is_vendored_that_the_manifest_leaves_out() -> None:
    listed = {f"{name}/{file}" for name, entry in manifest().items() for file in entry["files"]}
    present = {
        path.relative_to(VENDOR).as_posix()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert present == listed


# -- in a browser, offline --------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium for the browser tests (.ci/run installs it)")
        pytest.skip("no chromium on this machine (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def rendered_offline(browser: object, url: str, path: str, selector: str, text: str) -> str:
    """Open ``path`` with every request off ``url``'s host refused; wait for the first
    ``selector`` holding ``text`` and return its text. Fails if anything was refused."""
    context = browser.new_context()  # type: ignore[attr-defined]
    refused: list[str] = []

    def route(request_route: object) -> None:
        request = request_route.request  # type: ignore[attr-defined]
        if request.url.startswith(url):
            request_route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(request.url)
            request_route.abort()  # type: ignore[attr-defined]

    context.route("**/*", route)
    tab = context.new_page()
    tab.goto(url + path)
    element = tab.locator(selector, has_text=text).first
    element.wait_for(timeout=15_000)
    assert refused == [], f"{path} asked other sites for {refused}"
    return str(element.inner_text())


def test_graphiql_renders_offline_with_the_example_query(
    site: tuple[str, str], browser: object
) -> None:
    url, _ = site
    editor = rendered_offline(browser, url, "/graphql", ".graphiql-query-editor", "BuyerBatches")
    assert "query BuyerBatches" in editor and "pageInfo" in editor


def test_swagger_ui_renders_offline_with_the_operations(
    site: tuple[str, str], browser: object
) -> None:
    url, _ = site
    path = rendered_offline(browser, url, "/docs", ".opblock-summary-path", "/v1/statements")
    assert path.startswith("/v1/statements")
