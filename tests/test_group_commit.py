"""Group commit: statements that arrive together are appended in one transaction under one
checkpoint, each caller still getting its own record, proof and (shared) checkpoint, and a
refused statement failing no other. On SQLite and PostgreSQL; across server processes on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from ledger import keys, merkle, statements
from ledger.audit import Auditor
from ledger.checkpoints import open_checkpoint
from ledger.errors import ConflictError, ForbiddenError, LedgerError, NotFoundError, SignatureError
from ledger.group_commit import GroupCommitter
from ledger.log import Appended
from ledger.storage.db import read_session, write_session
from ledger.storage.repository import Repository
from tests.conftest import LedgerEnv, attestation


@pytest.fixture
def smelter(env: LedgerEnv) -> Any:
    return env.register("yunnan-hydro", "smelter")


@pytest.fixture
def committer(env: LedgerEnv) -> Iterator[GroupCommitter]:
    # A long wait gathers everything the test submits into as few groups as possible.
    writer = GroupCommitter(env.ledger, max_wait_s=0.3, max_statements=64)
    yield writer
    writer.close()


def attest(key: Any, n: int) -> statements.SignedStatement:
    return attestation(key, n)


def submit_all(committer: GroupCommitter, signed: list[Any]) -> list[Appended | LedgerError]:
    """Submit from one thread each, at once; each caller's answer or refusal."""
    start = threading.Barrier(len(signed))

    def one(item: Any) -> Appended | LedgerError:
        start.wait()
        try:
            return committer.submit(item)
        except LedgerError as error:
            return error

    with ThreadPoolExecutor(len(signed)) as pool:
        return list(pool.map(one, signed))


def checks_out(env: LedgerEnv, appended: Appended, signed: statements.SignedStatement) -> None:
    """The caller's record is its statement, proven into the checkpoint it was given."""
    assert appended.record.to_dict()["statement"] == signed.statement.to_dict()
    checkpoint = open_checkpoint(appended.checkpoint, env.ledger.verifier)
    assert checkpoint.size == appended.tree_size
    proof = env.ledger.inclusion_proof(appended.index, appended.tree_size)
    # The writer answers the proof from the nodes it held, with no read; it is the stored one.
    assert appended.inclusion_proof() == proof
    merkle.verify_inclusion(  # raises unless the proof leads to the checkpoint's root
        appended.record.leaf_hash, appended.index, appended.tree_size, proof.hashes, checkpoint.root
    )


def test_statements_that_arrive_together_share_one_transaction_and_checkpoint(
    env: LedgerEnv, smelter: Any, committer: GroupCommitter
) -> None:
    signed = [attest(smelter, n) for n in range(12)]
    size = env.ledger.tree_size()

    answers = submit_all(committer, signed)

    assert all(isinstance(a, Appended) for a in answers), answers
    groups = {a.checkpoint for a in answers if isinstance(a, Appended)}
    assert len(groups) < len(signed)  # grouped: fewer checkpoints than statements
    assert env.ledger.tree_size() == size + len(signed)
    assert sorted(a.index for a in answers if isinstance(a, Appended)) == list(
        range(size, size + len(signed))
    )
    for appended, statement in zip(answers, signed, strict=True):
        assert isinstance(appended, Appended)
        checks_out(env, appended, statement)


def test_a_refused_statement_fails_no_other_in_its_group(
    env: LedgerEnv, smelter: Any, committer: GroupCommitter
) -> None:
    stranger = keys.generate()
    good = [attest(smelter, n) for n in range(6)]
    unregistered = attest(stranger, 100)
    forged = statements.SignedStatement(attest(smelter, 101).statement, b"\x00" * 64)
    replay = attest(smelter, 50)
    env.ledger.append(replay)  # recorded before: sending it again is a replay
    size = env.ledger.tree_size()

    answers = submit_all(committer, [*good, unregistered, forged, replay])

    appended = [a for a in answers if isinstance(a, Appended)]
    refused = [a for a in answers if isinstance(a, LedgerError)]
    assert len(appended) == 6
    assert env.ledger.tree_size() == size + 6
    kinds = sorted(type(error).__name__ for error in refused)
    assert kinds == sorted(["ForbiddenError", "SignatureError", "ConflictError"])
    for error in refused:  # each names its own field, with no position in a group
        assert error.field is not None and error.field.startswith(("statement", "signature"))
    assert isinstance(answers[6], ForbiddenError)
    assert isinstance(answers[7], SignatureError)
    for appended_one, statement in zip(answers[:6], good, strict=True):
        assert isinstance(appended_one, Appended)
        checks_out(env, appended_one, statement)
    assert Auditor(env.ledger.engine, env.ledger.verifier, workers=1).run().ok


def test_a_group_takes_savepoints_only_when_a_statement_is_refused(
    env: LedgerEnv, smelter: Any
) -> None:
    """The common case, nothing refused, is one atomic append with no savepoint; a
    refusal rolls that attempt back and the group runs again with a savepoint apiece."""
    seen: list[str] = []

    def capture(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SAVEPOINT"):
            seen.append(statement)

    event.listen(env.ledger.engine, "before_cursor_execute", capture)
    try:
        clean = env.ledger.append_group([attest(smelter, n) for n in range(4)])
        assert all(isinstance(outcome, Appended) for outcome in clean) and seen == []
        size = env.ledger.tree_size()
        forged = statements.SignedStatement(attest(smelter, 9).statement, b"\x00" * 64)
        mixed = env.ledger.append_group([attest(smelter, 5), forged, attest(smelter, 6)])
    finally:
        event.remove(env.ledger.engine, "before_cursor_execute", capture)
    assert [type(outcome).__name__ for outcome in mixed] == [
        "Appended",
        "SignatureError",
        "Appended",
    ]
    # (SQLAlchemy emits a savepoint when its statement first touches the database: the
    # forged one is refused before it does)
    assert len(seen) == 2 and env.ledger.tree_size() == size + 2
    assert Auditor(env.ledger.engine, env.ledger.verifier, workers=1).run().ok


def test_a_group_reads_no_replays_and_the_unique_index_still_refuses_one(
    env: LedgerEnv, smelter: Any
) -> None:
    """A group is written with no query for replays: the unique (signer, nonce) index
    refuses one when the records are written, and the retry (which looks replays up)
    names it, the rest of the group recorded."""
    replay_lookups: list[str] = []

    def capture(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "records.nonce IN" in statement:
            replay_lookups.append(statement)

    event.listen(env.ledger.engine, "before_cursor_execute", capture)
    try:
        clean = [attest(smelter, n) for n in range(4)]
        assert all(isinstance(a, Appended) for a in env.ledger.append_group(clean))
        assert replay_lookups == []
        size = env.ledger.tree_size()
        fresh = attest(smelter, 4)
        outcomes = env.ledger.append_group([fresh, clean[2]])
    finally:
        event.remove(env.ledger.engine, "before_cursor_execute", capture)
    assert isinstance(outcomes[0], Appended)
    checks_out(env, outcomes[0], fresh)
    assert isinstance(outcomes[1], ConflictError)
    assert outcomes[1].field == "statement.nonce"
    assert len(replay_lookups) == 1 and env.ledger.tree_size() == size + 1


def test_a_group_is_written_in_one_statement_on_postgresql(env: LedgerEnv, smelter: Any) -> None:
    """Every statement run under the head lock is a round trip that concurrent appenders
    queue behind, so on PostgreSQL the records, tree nodes, checkpoint and head of a
    group go in one statement (SQLite runs in the process and keeps its four)."""
    writes: list[str] = []

    def capture(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH")):
            writes.append(statement)

    signed = [attest(smelter, n) for n in range(5)]
    event.listen(env.ledger.engine, "before_cursor_execute", capture)
    try:
        outcomes = env.ledger.append_group(signed)
    finally:
        event.remove(env.ledger.engine, "before_cursor_execute", capture)
    postgres = env.ledger.engine.dialect.name == "postgresql"
    assert len(writes) == (1 if postgres else 4)
    for appended, statement in zip(outcomes, signed, strict=True):
        assert isinstance(appended, Appended)
        checks_out(env, appended, statement)
    with read_session(env.ledger.engine) as session:
        head = Repository(session).head()
    assert head is not None and head.size == outcomes[-1].tree_size
    assert head.last_leaf_hash == outcomes[-1].record.leaf_hash
    assert Auditor(env.ledger.engine, env.ledger.verifier, workers=1).run().ok


def test_a_group_verifies_known_signers_before_it_takes_the_head_lock(
    env: LedgerEnv, smelter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the head lock every other writer waits: a group's signatures by signers the
    process has seen are verified before it, and not again under it."""
    env.ledger.append(attest(smelter, 0))  # the process learns the smelter's public key
    locked, verified_under_lock = False, 0
    lock_head, verify = Repository.lock_head, keys.verify

    def lock_head_and_note(repo: Repository) -> Any:
        nonlocal locked
        head = lock_head(repo)
        locked = True
        return head

    def counting_verify(*args: Any) -> None:
        nonlocal verified_under_lock
        verified_under_lock += locked
        verify(*args)

    monkeypatch.setattr(Repository, "lock_head", lock_head_and_note)
    monkeypatch.setattr(keys, "verify", counting_verify)
    signed = [attest(smelter, n) for n in range(1, 5)]
    forged = statements.SignedStatement(attest(smelter, 9).statement, b"\x00" * 64)

    outcomes = env.ledger.append_group(signed)
    assert verified_under_lock == 0
    for appended, statement in zip(outcomes, signed, strict=True):
        assert isinstance(appended, Appended)
        checks_out(env, appended, statement)
    # A signature that failed ahead is verified again under the lock, and refused there.
    assert isinstance(env.ledger.append_group([forged])[0], SignatureError)


def test_callers_on_an_event_loop_await_the_writer_without_a_thread(
    env: LedgerEnv, smelter: Any, committer: GroupCommitter
) -> None:
    signed = [attest(smelter, n) for n in range(8)]

    async def submit_together() -> list[Any]:
        calls = (committer.submit_async(item) for item in signed)
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(submit_together())

    assert len({a.checkpoint for a in answers}) < len(signed)
    for appended, statement in zip(answers, signed, strict=True):
        assert isinstance(appended, Appended)
        checks_out(env, appended, statement)
    refused = asyncio.run(submit_together())  # the same statements again: replays
    assert all(isinstance(error, ConflictError) for error in refused)


def test_a_caller_that_gives_up_while_queued_is_not_appended_and_the_writer_goes_on(
    env: LedgerEnv, smelter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request task cancelled while its statement waits in the queue cancels its
    answer: the writer drops that statement rather than fail on answering it (which
    would stop the writer thread and leave every later caller waiting)."""
    held, release = threading.Event(), threading.Event()
    append_group = env.ledger.append_group

    def first_group_held(batch: list[Any], joining: Any) -> list[Appended | LedgerError]:
        if not held.is_set():
            held.set()
            assert release.wait(30)
        return append_group(batch, joining)

    monkeypatch.setattr(env.ledger, "append_group", first_group_held)
    writer = GroupCommitter(env.ledger, max_wait_s=0.0)
    given_up = attest(smelter, 1)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(writer.submit, attest(smelter, 0))
            assert held.wait(30)

            async def give_up() -> None:
                task = asyncio.ensure_future(writer.submit_async(given_up))
                await asyncio.sleep(0.05)  # queued behind the held group
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

            asyncio.run(give_up())
            release.set()
            assert isinstance(first.result(30), Appended)
        answers: list[Appended] = []  # from a daemon thread: a stopped writer fails, not hangs
        caller = threading.Thread(
            target=lambda: answers.append(writer.submit(attest(smelter, 2))), daemon=True
        )
        caller.start()
        caller.join(30)
    finally:
        writer.close()
    assert answers, "the writer stopped: a later caller waits for ever"
    later = answers[0]
    assert later.index == first.result().index + 1  # the statement given up was dropped
    with pytest.raises(NotFoundError):
        env.ledger.record(later.index + 1)


def test_the_same_nonce_twice_in_one_group_is_recorded_once(
    env: LedgerEnv, smelter: Any, committer: GroupCommitter
) -> None:
    signed = attest(smelter, 1)
    answers = submit_all(committer, [signed, signed, signed])
    assert sum(isinstance(a, Appended) for a in answers) == 1
    assert sum(isinstance(a, ConflictError) for a in answers) == 2


def test_a_bulk_goes_through_the_same_writer_atomically(
    env: LedgerEnv, smelter: Any, committer: GroupCommitter
) -> None:
    size = env.ledger.tree_size()
    bulk = [attest(smelter, n) for n in range(3)]
    appended = committer.submit_many(bulk)
    assert [a.index for a in appended] == [size, size + 1, size + 2]
    with pytest.raises(ConflictError) as refused:
        committer.submit_many([attest(smelter, 9), bulk[0]])
    assert refused.value.field == "statements[1].statement.nonce"
    assert env.ledger.tree_size() == size + 3


def test_a_group_waits_only_until_as_many_as_the_last_group_are_in(
    env: LedgerEnv, smelter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers answered together come back together: once as many statements as the
    last group held are queued, the writer appends them without waiting out max_wait
    (5 s here), and a group still takes everything already queued."""
    sizes: list[int] = []
    first_appended, release = threading.Event(), threading.Event()
    append_group = env.ledger.append_group

    def first_group_held(batch: list[Any], joining: Any) -> list[Appended | LedgerError]:
        sizes.append(len(batch))
        appended = append_group(batch, joining)
        if len(sizes) == 1:  # appended, but its callers not yet answered
            first_appended.set()
            release.wait(30)
        return appended

    monkeypatch.setattr(env.ledger, "append_group", first_group_held)
    writer = GroupCommitter(env.ledger, max_wait_s=5.0)
    try:
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(writer.submit, attest(smelter, 0))
            assert first_appended.wait(30)
            queued = [pool.submit(writer.submit, attest(smelter, n)) for n in (1, 2)]
            time.sleep(0.2)  # both wait behind the held group of one
            release.set()
            assert all(isinstance(f.result(30), Appended) for f in (first, *queued))
        started = time.monotonic()
        pair = submit_all(writer, [attest(smelter, 3), attest(smelter, 4)])
        waited = time.monotonic() - started
    finally:
        writer.close()
    assert all(isinstance(a, Appended) for a in pair)
    assert sizes == [1, 2, 2]  # after a group of one, both queued went together
    assert waited < 2.5, waited  # the pair was complete: max_wait was not waited out


def test_statements_queued_while_a_group_waits_for_the_head_lock_join_it(
    env: LedgerEnv, smelter: Any
) -> None:
    """Another process's group holds the head lock (here, a transaction of the test's
    own). The writer's group of one waits for it; the two statements submitted meanwhile
    join that group once it has the lock, rather than wait a whole turn more."""
    signed = [attest(smelter, n) for n in range(3)]
    writer = GroupCommitter(env.ledger, max_wait_s=0.0)
    try:
        with ThreadPoolExecutor(3) as pool:
            with write_session(env.ledger.engine) as session:
                Repository(session).lock_head()
                first = pool.submit(writer.submit, signed[0])
                time.sleep(0.5)  # taken by the writer, which now waits for the lock
                queued = [pool.submit(writer.submit, item) for item in signed[1:]]
                time.sleep(0.5)
            answers = [future.result(30) for future in (first, *queued)]
    finally:
        writer.close()
    assert len({answer.checkpoint for answer in answers}) == 1  # one group
    for appended, statement in zip(answers, signed, strict=True):
        checks_out(env, appended, statement)


def test_close_lets_what_is_queued_finish(env: LedgerEnv, smelter: Any) -> None:
    writer = GroupCommitter(env.ledger, max_wait_s=0.2)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer.submit, attest(smelter, n)) for n in range(4)]
        time.sleep(0.05)
        writer.close()
        answers = [future.result(timeout=30) for future in futures]
    assert len({a.index for a in answers}) == 4
    with pytest.raises(RuntimeError):
        writer.submit(attest(smelter, 9))


# -- several server processes -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.postgres
def test_two_server_processes_group_and_serialise_concurrent_submitters(
    pg_url: str, tmp_path: Path
) -> None:
    """``alu-ledger serve --workers 2`` on PostgreSQL: 16 clients submit at once; every
    statement is recorded exactly once, groups come from both processes, the log audits."""
    from ledger.bootstrap import init_ledger
    from ledger.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    ledger = init_ledger(settings).ledger
    env = LedgerEnv(ledger, settings, keys.read_private_key(tmp_path / "data/operator-key.pem"))
    key = env.register("yunnan-hydro", "smelter")
    port = free_port()
    cli = str(Path(sys.executable).parent / "alu-ledger")
    server = subprocess.Popen(
        [
            *(cli, "serve", "--data-dir", str(settings.data_dir), "--database", pg_url),
            *("--port", str(port), "--workers", "2"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        # Both worker processes up: each answer's request id names its process.
        processes: set[str] = set()
        deadline = time.monotonic() + 60
        while len(processes) < 2 and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{url}/v1/log-key", timeout=1)
                processes.add(answer.headers["x-request-id"].rsplit("-", 1)[0])
            except httpx.HTTPError:
                time.sleep(0.2)
        signed = [attest(key, n) for n in range(64)]

        def post(item: Any) -> httpx.Response:
            return httpx.post(f"{url}/v1/statements", json=item.to_dict(), timeout=60)

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(post, signed))
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert [r.status_code for r in responses] == [201] * len(signed)
    indexes = [r.json()["inclusion_proof"]["index"] for r in responses]
    assert len(set(indexes)) == len(signed)
    assert len({r.json()["checkpoint"] for r in responses}) < len(signed)
    # Both processes answered (a request id's prefix names its process; with both
    # accepting, 64 connections all land on one worker's socket with odds 2**-63).
    assert len({r.headers["x-request-id"].rsplit("-", 1)[0] for r in responses}) == 2
    assert Auditor(ledger.engine, ledger.verifier, workers=1).run().ok
    ledger.engine.dispose()
