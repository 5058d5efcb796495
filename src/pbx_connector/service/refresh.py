"""Keeping the core's caches fresh off the request path.

A PBX sends its token and asks for names with every call; the core keeps a token it
found valid, and the lookup settings, for a second or two (`tokens.VALID_FOR`,
`lookup.SETTINGS_TTL`). When such a copy ran out, the request that found it so read the
store again, in a thread (`api.deps.quick`), and on a busy event loop a thread waits for
the interpreter lock in steps of its switch interval (5 ms): those requests were the
slowest percent of a lookup benchmark (p99 11-13 ms with one worker against 5 ms with
the reads taken away, docs/benchmarks.md). So a copy in steady use is read again here,
by one thread of its own, a while before it runs out, and no request waits for that.

What a copy may be trusted for does not change: a copy is used only within its time
since the read that made it, and any write this process commits drops it at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class Refresher:
    """Runs each piece of work asked for `soon`, one at a time, at most once per key at
    a time (a second ask while the first is pending or running is dropped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def soon(self, key: str, work: Callable[[], object]) -> None:
        with self._lock:
            if self._closed or key in self._pending:
                return
            self._pending.add(key)
            if self._pool is None:
                # Made when first needed: a CLI command never starts the thread.
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="pbx-refresh")
            pool = self._pool
        pool.submit(self._run, key, work)

    def _run(self, key: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception as exc:
            # The request that finds the copy run out reads the store itself and reports
            # what fails there; here it is only said for whoever debugs.
            log.debug("refreshing %s failed: %s", key.partition(":")[0], type(exc).__name__)
        finally:
            with self._lock:
                self._pending.discard(key)

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is pending (at most `timeout` seconds); whether so."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._pending:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def close(self) -> None:
        """Stop taking work; what runs ends on its own."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
