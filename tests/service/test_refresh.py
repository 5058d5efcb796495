"""The thread that keeps the core's caches fresh: one piece of work per key at a time,
failures kept to itself, nothing taken after it is closed."""

from __future__ import annotations

import threading

from pbx_connector.service.refresh import Refresher


def test_work_asked_for_twice_while_pending_runs_once() -> None:
    refresher = Refresher()
    release = threading.Event()
    runs: list[str] = []

    def work(name: str) -> None:
        release.wait(5)
        runs.append(name)

    refresher.soon("a", lambda: work("a1"))
    refresher.soon("a", lambda: work("a2"))  # a1 pending or running: dropped
    refresher.soon("b", lambda: work("b"))
    assert not refresher.idle(timeout=0.05)
    release.set()
    assert refresher.idle()
    assert runs == ["a1", "b"]
    refresher.soon("a", lambda: work("a3"))  # done: asked again, runs again
    assert refresher.idle()
    assert runs == ["a1", "b", "a3"]
    refresher.close()


def test_a_failure_stays_in_the_thread_and_frees_its_key() -> None:
    refresher = Refresher()
    ran: list[int] = []

    def fails() -> None:
        ran.append(1)
        raise RuntimeError("store unreachable")

    refresher.soon("k", fails)
    assert refresher.idle()
    refresher.soon("k", fails)
    assert refresher.idle()
    assert ran == [1, 1]
    refresher.close()


def test_nothing_is_taken_after_close() -> None:
    refresher = Refresher()
    ran: list[int] = []
    refresher.close()
    refresher.soon("k", lambda: ran.append(1))
    assert refresher.idle(timeout=0.1)
    assert ran == []
