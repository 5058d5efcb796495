"""The `pbx-connector` console script. It installs the interrupt handler before anything
heavy is imported, so that Ctrl-C at any moment ends the command with one line and exit
code 130, never a traceback: a run in progress changes nothing (its changes commit
together with its outcome)."""

from __future__ import annotations

import signal
import sys

from pbx_connector.errors import Interrupted
from pbx_connector.interrupts import on_signal

EXIT_INTERRUPTED = 130
_MESSAGE = "error: interrupted; a run in progress was stopped and changed nothing\n"


def main() -> None:
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from pbx_connector.cli.base import main as cli_main

        cli_main()
    except (Interrupted, KeyboardInterrupt):
        _ignore_signals()  # a second Ctrl-C while the message is written changes nothing
        sys.stderr.write(_MESSAGE)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        # The command is done: a Ctrl-C while the interpreter shuts down (joining
        # threads, closing connections) must not print a traceback over its result.
        _ignore_signals()


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
