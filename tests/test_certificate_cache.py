"""Certificate bundles are served from a per-process cache between rebuilds.

A grade's bundle is built against the latest checkpoint at most once per
``certificate_cache_seconds``, at once when the grade is revoked, and REST and GraphQL
share it. The cached bundle verifies offline like a fresh one. Runs on SQLite and
PostgreSQL; the concurrency cases (one build for many waiting requests, a bundle past its
age served while the refresh thread rebuilds it, a build that began before a revocation not
handed to a request that saw the revocation) use a builder that can be held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

import api.routes.certificates as certificates_route
from api.app import create_app
from ledger.certificates import build_bundle, verify_bundle
from ledger.certificates.cache import (
    BundleCache,
    attach_bundle_cache,
    bundle_cache,
    cached_bundle,
)
from ledger.errors import NotFoundError
from ledger.log import Ledger
from ledger.settings import Settings
from tests.conftest import LedgerEnv
from tests.grading_support import CENTRE, issue, set_up_grading


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def graded(env: LedgerEnv) -> tuple[LedgerEnv, int]:
    set_up_grading(env)
    return env, issue(env, "tier-2").index


def client(env: LedgerEnv, **settings: Any) -> TestClient:
    options = {"data_dir": env.settings.data_dir, "database_url": env.settings.database_url}
    return TestClient(create_app(env.ledger, Settings(**options, **settings)))


def revoke(env: LedgerEnv, grade_index: int) -> int:
    payload = {"grade_record_index": grade_index, "reason": "data error"}
    return env.append("grade.revoke", payload, env.participant_keys[CENTRE]).index


def tree_size_of(bundle: dict[str, Any]) -> int:
    return int(bundle["checkpoint"].split("\n")[1])


def test_a_second_request_within_the_window_is_served_without_a_build(
    graded: tuple[LedgerEnv, int],
) -> None:
    env, grade_index = graded
    http = client(env, graphql_anonymous_certificates=True)
    cache = bundle_cache(env.ledger)
    assert cache.builds == 0
    first = http.get(f"/v1/certificates/{grade_index}")
    second = http.get(f"/v1/certificates/{grade_index}")
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert cache.builds == 1
    assert second.content == first.content
    # GraphQL's field reads the same cache.
    query = f"{{ certificate(gradeIndex: {grade_index}) {{ bundle }} }}"
    answer = http.post("/graphql", json={"query": query}).json()
    assert answer["data"]["certificate"]["bundle"] == first.json()
    assert cache.builds == 1
    verdict = verify_bundle(second.json(), env.ledger.verifier_key)
    assert verdict.status == "valid", verdict.reasons


def test_a_cached_bundle_is_answered_without_a_worker_thread(
    graded: tuple[LedgerEnv, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a bundle to build goes to a worker thread; the grade's status comes from the
    app's revocation reader, so a cached bundle is answered on the event loop."""
    env, grade_index = graded
    http = client(env)
    handed_over: list[Any] = []
    run_in_threadpool = certificates_route.run_in_threadpool

    async def counted(func: Any, *args: Any) -> Any:
        handed_over.append(func)
        return await run_in_threadpool(func, *args)

    monkeypatch.setattr(certificates_route, "run_in_threadpool", counted)
    answers = [http.get(f"/v1/certificates/{grade_index}") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert handed_over == [cached_bundle]  # the first request, which built it
    revoke(env, grade_index)
    assert (
        verify_bundle(
            http.get(f"/v1/certificates/{grade_index}").json(), env.ledger.verifier_key
        ).status
        == "revoked"
    )
    assert len(handed_over) == 2  # the status changed: built again, in a worker thread


def test_a_revocation_is_served_at_once(graded: tuple[LedgerEnv, int]) -> None:
    env, grade_index = graded
    http = client(env, certificate_cache_seconds=3600)
    cache = bundle_cache(env.ledger)
    active = http.get(f"/v1/certificates/{grade_index}").json()
    assert verify_bundle(active, env.ledger.verifier_key).status == "valid"
    revocation = revoke(env, grade_index)
    revoked = http.get(f"/v1/certificates/{grade_index}").json()
    assert cache.builds == 2
    verdict = verify_bundle(revoked, env.ledger.verifier_key)
    assert verdict.status == "revoked", verdict.reasons
    assert revoked["records"]["revocation"]["record"]["index"] == revocation
    assert tree_size_of(revoked) == env.ledger.tree_size()
    # ... and then cached like any other bundle.
    assert http.get(f"/v1/certificates/{grade_index}").json() == revoked
    assert cache.builds == 2


def test_after_the_window_the_bundle_is_rebuilt_against_the_newer_checkpoint(
    graded: tuple[LedgerEnv, int],
) -> None:
    env, grade_index = graded
    http = client(env)
    clock = Clock()
    cache = attach_bundle_cache(env.ledger, 1.0, clock=clock)
    first = http.get(f"/v1/certificates/{grade_index}").json()
    size = env.ledger.tree_size()
    assert tree_size_of(first) == size
    env.attest(env.participant_keys[CENTRE], 3)  # the log moves on
    clock.now += 0.9
    assert http.get(f"/v1/certificates/{grade_index}").json() == first
    assert cache.builds == 1
    clock.now += 0.2
    # Past the window: still the cached bundle, while the refresh thread rebuilds it.
    assert http.get(f"/v1/certificates/{grade_index}").json() == first
    cache.close()  # waits for the rebuild under way
    newer = http.get(f"/v1/certificates/{grade_index}").json()
    assert cache.builds == 2
    assert tree_size_of(newer) == size + 3
    for bundle in (first, newer):  # the older checkpoint is still a valid bundle
        verdict = verify_bundle(bundle, env.ledger.verifier_key)
        assert verdict.status == "valid", verdict.reasons


def test_a_missing_grade_is_a_404_and_nothing_is_cached(graded: tuple[LedgerEnv, int]) -> None:
    env, grade_index = graded
    http = client(env)
    missing = http.get(f"/v1/certificates/{grade_index - 1}")
    assert missing.status_code == 404
    assert missing.json()["field"] == "grade_record_index"
    assert len(bundle_cache(env.ledger)) == 0


def test_caching_can_be_turned_off(graded: tuple[LedgerEnv, int]) -> None:
    env, grade_index = graded
    http = client(env, certificate_cache_seconds=0)
    for _ in range(3):
        assert http.get(f"/v1/certificates/{grade_index}").status_code == 200
    assert bundle_cache(env.ledger).builds == 3


# -- the cache itself: bounded, one build at a time -------------------------------------
def fake_builder(calls: list[int], gate: Callable[[int], None] | None = None) -> Any:
    def build(_ledger: Ledger, grade_index: int) -> dict[str, Any]:
        calls.append(grade_index)
        if gate is not None:
            gate(grade_index)
        return {"grade_index": grade_index, "build": len(calls), "records": {}}

    return build


def test_the_cache_is_a_bounded_lru(sqlite_env: LedgerEnv) -> None:
    calls: list[int] = []
    cache = BundleCache(60, max_entries=2, build=fake_builder(calls))
    ledger = sqlite_env.ledger  # no grades: every grade reads as active
    for grade_index in (101, 102, 101, 103):  # 101 used again, so 102 is the oldest
        cache.get(ledger, grade_index)
    assert calls == [101, 102, 103] and len(cache) == 2
    cache.get(ledger, 101)
    cache.get(ledger, 102)
    assert calls == [101, 102, 103, 102]
    assert cache.get(ledger, 101).json == b'{"grade_index":101,"build":1,"records":{}}'
    with pytest.raises(ValueError):
        BundleCache(1, max_entries=0)


def test_requests_for_a_grade_being_built_wait_for_that_one_build(
    sqlite_env: LedgerEnv,
) -> None:
    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def gate(_grade_index: int) -> None:
        started.set()
        assert release.wait(10)

    cache = BundleCache(60, build=fake_builder(calls, gate))
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get, sqlite_env.ledger, 7) for _ in range(8)]
        assert started.wait(10)
        release.set()
        results = [future.result(10) for future in futures]
    assert calls == [7]
    assert all(result is results[0] for result in results)


def test_a_bundle_past_its_age_is_served_while_the_refresh_thread_rebuilds_it(
    sqlite_env: LedgerEnv,
) -> None:
    calls: list[int] = []
    holding, release = threading.Event(), threading.Event()
    rebuilt_on: list[str] = []

    def gate(_grade_index: int) -> None:
        if len(calls) == 2:  # hold the rebuild
            rebuilt_on.append(threading.current_thread().name)
            holding.set()
            assert release.wait(10)

    clock = Clock()
    cache = BundleCache(1.0, build=fake_builder(calls, gate), clock=clock)
    ledger = sqlite_env.ledger
    first = cache.get(ledger, 7)
    clock.now += 5
    assert cache.get(ledger, 7) is first  # starts the rebuild, not held up by it
    assert holding.wait(10)
    assert cache.get(ledger, 7) is first  # nor is any other request
    assert calls == [7, 7]  # one rebuild at a time
    release.set()
    cache.close()  # waits for the rebuild under way
    assert cache.get(ledger, 7).bundle["build"] == 2
    assert calls == [7, 7]
    assert rebuilt_on[0].startswith("bundle-refresh")


def test_a_failed_rebuild_keeps_the_cached_bundle_and_is_tried_again(
    sqlite_env: LedgerEnv, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def gate(_grade_index: int) -> None:
        if len(calls) == 2:
            raise RuntimeError("the database went away")

    clock = Clock()
    cache = BundleCache(1.0, build=fake_builder(calls, gate), clock=clock)
    ledger = sqlite_env.ledger
    first = cache.get(ledger, 7)
    clock.now += 5
    assert cache.get(ledger, 7) is first
    cache.close()  # waits for the rebuild, which fails
    assert "rebuilding the bundle of grade 7 failed" in caplog.text
    assert cache.get(ledger, 7) is first  # still served; and rebuilt again
    cache.close()  # waits for the rebuild under way
    assert cache.get(ledger, 7).bundle["build"] == 3


def test_a_build_begun_before_a_revocation_is_not_served_after_it(
    graded: tuple[LedgerEnv, int],
) -> None:
    """A request that sees the revocation while an older rebuild is running waits for it,
    finds it without the revocation, and builds again."""
    env, grade_index = graded
    holding, release = threading.Event(), threading.Event()
    builds: list[int] = []

    def build(ledger: Ledger, index: int) -> dict[str, Any]:
        bundle = build_bundle(ledger, index)
        builds.append(index)
        if len(builds) == 2:  # the age-driven rebuild: built, then held
            holding.set()
            assert release.wait(10)
        return bundle

    clock = Clock()
    cache = BundleCache(1.0, build=build, clock=clock)
    first = cache.get(env.ledger, grade_index)
    assert "revocation" not in first.bundle["records"]
    clock.now += 5
    assert cache.get(env.ledger, grade_index) is first  # the rebuild runs on, then is held
    assert holding.wait(10)
    revoke(env, grade_index)
    with ThreadPoolExecutor(1) as pool:
        after = pool.submit(cache.get, env.ledger, grade_index)
        release.set()
        bundle = after.result(10).bundle
    assert "revocation" in bundle["records"]
    assert verify_bundle(bundle, env.ledger.verifier_key).status == "revoked"
    assert len(builds) == 3
    assert cache.get(env.ledger, grade_index).bundle is bundle
    cache.close()


def test_a_failed_build_reaches_every_waiting_request(sqlite_env: LedgerEnv) -> None:
    def build(ledger: Ledger, index: int) -> dict[str, Any]:
        return build_bundle(ledger, index)

    cache = BundleCache(60, build=build)
    with pytest.raises(NotFoundError):
        cache.get(sqlite_env.ledger, 0)
    with pytest.raises(NotFoundError):
        cached_bundle(sqlite_env.ledger, 0)
    assert len(cache) == 0 and cache.builds == 0
