"""A fork server for the crash suite: it imports the installed `pbx-connector` command
once, then runs every command the suite asks for in a forked process of its own.

A kill is only worth something while a run works; an interpreter that starts afresh for
every command spends half a second importing before it does anything. Here the imports
are paid once (with a warm-up command), and each command still runs in a process of its
own, through the same entry point as the console script (`sys.exit(main())`), with its
own arguments, environment, working directory, standard streams and session, ending the
way the console script ends (see `finish`).

Protocol, one JSON object a line. The suite writes
`{"argv": [...], "env": {...}, "cwd": DIR, "stdout": FILE, "stderr": FILE}`; the server
answers `{"pid": PID}` as soon as the command runs, and `{"pid": PID, "exit": CODE}` once
its process has ended and been reaped (CODE as `subprocess` reports it: negative for a
signal). The server serves one command at a time and ends when its input ends.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, NoReturn

COMMAND = "pbx-connector"
#: A command that imports what commands import only when they run (the CLI framework's
#: adapters, the SQLite driver, migrations), on a store that lives and dies in memory.
WARM_UP = ["--db", "sqlite:///:memory:", "runs", "--json"]
#: Modules a command imports later still: the PostgreSQL driver, phone number metadata.
PRELOAD = ("psycopg", "sqlalchemy.dialects.postgresql.psycopg", "phonenumbers")


def load_main() -> Callable[[], Any]:
    """The console script's entry point, as the installed distribution declares it."""
    (entry,) = entry_points(group="console_scripts", name=COMMAND)
    main: Callable[[], Any] = entry.load()
    return main


def warm_up(main: Callable[[], Any]) -> None:
    """Import once what every command would import again. Only a matter of time: what
    is not imported here, a command imports itself."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    sys.argv = [COMMAND, *WARM_UP]
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        contextlib.suppress(SystemExit),
    ):
        main()


def _redirect(fd: int, path: str, flags: int) -> None:
    target = os.open(path, flags, 0o644)
    os.dup2(target, fd)
    os.close(target)


def run_command(main: Callable[[], Any], request: dict[str, Any]) -> NoReturn:
    """In the forked process: become the command, then exit as the console script does."""
    os.setsid()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # found again from the new $TMPDIR
    _redirect(0, os.devnull, os.O_RDONLY)
    _redirect(1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    _redirect(2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    sys.argv = [COMMAND, *request["argv"]]
    try:
        result = main()
    except SystemExit as exc:
        result = exc.code
    except BaseException as exc:  # what the interpreter would print, then end with
        sys.excepthook(type(exc), exc, exc.__traceback__)
        finish(1, interrupted=isinstance(exc, KeyboardInterrupt))
    finish(_exit_code(result))


def _exit_code(result: object) -> int:
    """The exit code of `sys.exit(result)`."""
    if result is None:
        return 0
    if isinstance(result, int):
        return result
    print(result, file=sys.stderr)
    return 1


def finish(code: int, *, interrupted: bool = False) -> NoReturn:
    """End as the interpreter ends a script: wait for the other threads, run the atexit
    handlers, collect garbage (so that finalisers run), flush the standard streams.
    Tearing the modules down is left out: it would only free memory, and in a forked
    copy of the server it would first copy nearly every page of it (0.4 s a command).
    An uncaught KeyboardInterrupt ends the process by SIGINT, as CPython does."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _answer(message: dict[str, Any]) -> None:
    # Flushed at once: nothing may sit in the buffer that a forked process inherits.
    print(json.dumps(message), flush=True)


def serve(main: Callable[[], Any]) -> None:
    for line in sys.stdin:
        request = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_command(main, request)
        _answer({"pid": pid})
        _, status = os.waitpid(pid, 0)
        _answer({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    entry = load_main()
    warm_up(entry)
    # What the server holds now, the garbage collector of a forked command leaves alone
    # (and so does not copy).
    gc.freeze()
    serve(entry)
