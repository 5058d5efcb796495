"""Ctrl-C that lands at a safe point.

A SIGINT raised at an arbitrary bytecode can hit a database driver mid-protocol (psycopg
in pipeline mode turns it into a broken connection and an error of its own). So while a
run works, the first Ctrl-C only asks it to stop: the run checks at safe points (every
batch of rows read or written) and stops there, changing nothing. A second Ctrl-C stops
at once. Outside a run, Ctrl-C stops at once as usual."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from pbx_connector.errors import Interrupted

_pending = False
_depth = 0


def on_signal(signum: int, frame: FrameType | None) -> None:
    """The SIGINT/SIGTERM handler of the command line."""
    global _pending
    if _depth > 0 and not _pending:
        _pending = True
        if sys.stderr.isatty():  # someone at a terminal pressed it: say it was heard
            sys.stderr.write("stopping at the next safe point (Ctrl-C again to stop at once)…\n")
        return
    _pending = False
    raise Interrupted


def check() -> None:
    """A safe point: stop here if an interrupt is pending."""
    global _pending
    if _pending:
        _pending = False
        raise Interrupted


@contextmanager
def deferred() -> Iterator[None]:
    """Within this block, the first interrupt waits for the next `check`. Work that
    finishes before one is reached is not undone: the interrupt is then dropped, and the
    command ends as it would have. Only the main thread receives signals, so only it
    defers them."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def dropped_while_finishing() -> bool:
    """Whether an interrupt arrived too late to stop the work (it finished first); it is
    cleared."""
    global _pending
    was, _pending = _pending, False
    return was
