"""The table the serve workers balance their connections by (``api/connection_balance.py``);
the workers themselves are tested in tests/test_serve_workers.py."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from api.connection_balance import ConnectionTable


def _hold_connections(table: ConnectionTable, count: int) -> None:
    slot = table.claim()
    assert slot is not None
    for _ in range(count):
        table.opened(slot)


def _hold_until(table: ConnectionTable, count: int, held: Any, release: Any) -> None:
    _hold_connections(table, count)
    held.set()
    release.wait(30)


def test_a_worker_may_accept_while_it_holds_no_more_than_any_other() -> None:
    spawn = multiprocessing.get_context("spawn")
    table = ConnectionTable(workers=2)
    mine = table.claim()
    assert mine == 0
    assert table.least_loaded(mine)  # alone
    held, release = spawn.Event(), spawn.Event()
    other = spawn.Process(target=_hold_until, args=(table, 2, held, release))
    other.start()
    try:
        assert held.wait(30)
        assert table.held() == {multiprocessing.current_process().pid: 0, other.pid: 2}
        for _ in range(2):
            table.opened(mine)
            assert table.least_loaded(mine)
        table.opened(mine)
        assert not table.least_loaded(mine)  # 3 against 2
        table.closed(mine)
        assert table.least_loaded(mine)
    finally:
        release.set()
        other.join()


def test_a_replacement_takes_the_slot_of_a_worker_that_is_gone() -> None:
    table = ConnectionTable(workers=1)
    child = multiprocessing.get_context("spawn").Process(target=_hold_connections, args=(table, 5))
    child.start()
    child.join()
    assert table.claim() == 0  # the dead child's slot, its count cleared
    assert table.held() == {multiprocessing.current_process().pid: 0}
    assert table.claim() == 1  # a second claimant takes a free one
    table.release(0)
    assert list(table.held().values()) == [0]


def test_a_released_slot_ignores_the_closes_of_its_former_holder() -> None:
    table = ConnectionTable(workers=1)
    slot = table.claim()
    assert slot is not None
    table.opened(slot)
    table.release(slot)  # shutting down: its last connection closes after
    child = multiprocessing.get_context("spawn").Process(target=_hold_connections, args=(table, 1))
    child.start()
    child.join()  # the child claimed the free slot 0 and held one connection
    table.closed(slot)  # the former holder's late close leaves the child's count alone
    assert table.held() == {child.pid: 1}


def test_a_dead_workers_slot_is_freed_rather_than_waited_for() -> None:
    table = ConnectionTable(workers=2)
    mine = table.claim()
    assert mine is not None
    child = multiprocessing.get_context("spawn").Process(target=_hold_connections, args=(table, 0))
    child.start()
    child.join()  # gone, its slot still claimed with no connections
    table.opened(mine)
    assert table.least_loaded(mine)  # 1 against a dead worker's 0: not a reason to wait
    assert table.held() == {multiprocessing.current_process().pid: 1}


def test_a_worker_that_died_unreaped_is_not_waited_for() -> None:
    """A dead worker stays a zombie until its parent reaps it, and ``kill`` still finds it;
    its slot is freed all the same."""
    table = ConnectionTable(workers=2)
    mine = table.claim()
    assert mine is not None
    child = multiprocessing.get_context("spawn").Process(target=_hold_connections, args=(table, 0))
    child.start()
    assert child.pid is not None
    try:
        # Wait for the exit and leave the child unreaped (WNOWAIT): a zombie.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        table.opened(mine)
        assert table.least_loaded(mine)
        assert table.held() == {multiprocessing.current_process().pid: 1}
    finally:
        child.join()
