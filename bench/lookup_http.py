"""HTTP benchmark of the caller-name lookup a PBX asks for every call: `GET /lookup.txt`
of `pbx-connector serve`, with `wrk` on loopback, on a store of 1,000,000 phonebook
entries and 10,000 users, against the limit of the same server stack answering a constant.

Run from the project root (needs Debian's `wrk`; PostgreSQL's server binaries for the
PostgreSQL part)::

    .venv/bin/python -m bench.lookup_http [--rows 1000000] [--users 10000]
        [--sync-rows 100000] [--duration 30] [--connections 16] [--workers 1,2]
        [--paths 20000] [--keep DIR] [--skip-postgres | --only-postgres] [--profile]

What it does, in order (bench/README.md has the longer story):

1. Generates a phonebook CSV of `--rows` entries (the generator of `bench.csv_import`),
   a users CSV of `--users` users with direct numbers, mobiles and extensions, and the
   two files of a third profile `other` (`--sync-rows` entries, the second file with a
   changed organisation in every row). Imports the phonebook and the users with one
   `sync` each, as the product fills a store, and prints how long that took. With
   `--keep DIR` the built SQLite store is kept in DIR and copied from there next time.
2. Pre-generates `--paths` request paths `/lookup.txt?number=…`: known numbers of the
   phonebook and of the users in the usual forms (`+49 991 …`, `0991 …`, `0049…`,
   `+49 (0)991 …`, E.164, a `+` not percent-encoded, spaces as `+`), users' extensions,
   and unknown numbers and extensions. Half send the lookup token as `Authorization:
   Bearer`, half as `?token=`. A sample is checked over HTTP first (known numbers must
   get a name, unknown ones an empty body).
3. Times the same numbers in-process, one connection, one by one: a bare indexed
   `SELECT` with the stdlib driver, the product's lookup statement through the driver,
   the same through SQLAlchemy (`store.lookup.find`), the whole core call
   (`app.lookup.name`), and the token check of every request (`app.tokens.authenticate`).
4. For each N of `--workers`: wrk (2 threads, `--connections`, `--duration` s) against a
   bench-only app factory (`limit_app` below: the real application plus
   `/bench/constant` without authentication and `/bench/constant-auth` with the lookup
   routes' authentication dependency, started by uvicorn as `serve --workers N` starts
   it), `/bench/constant` once more asked the lookup's own requests (their query
   strings, tokens and headers, which FastAPI reads for every route), then against
   `pbx-connector serve --workers N` with the idle store. Each server just started gets
   `WARM_UP_S` seconds of the same load first, reported apart and not counted.
5. Imports `other` once, then for each N measures the lookup again while `other` is
   synchronised over and over (every run updates all `--sync-rows` entries).
6. With `--profile`: the lookup load once more against one worker (SQLite) under
   cProfile in every thread (`profiled_app` below), and where its time goes.
7. Unless `--skip-postgres`: the same store built the same way on a throwaway
   PostgreSQL server (`tests/servers/postgres.py`), and steps 3-5 on it.

The RSS of every `serve` (the sum over its process tree, read from /proc every 0.2 s)
is printed at its peak and after the measurements. Nothing is asserted: read the `met`
column (zero errors, p99 under 10 ms, at least 60% of the requests/s of the constant
without authentication from the same number of workers, asked a bare path and asked the
lookup's requests, RSS under 300 MB).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, quote_plus

import httpx
from starlette.requests import Request

from bench.csv_import import PBX, PhonebookGenerator, cpu_model, write_csv
from bench.http_search import wrk_latency_ms

if TYPE_CHECKING:
    from fastapi import FastAPI

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
# `python -m bench.lookup_http` from the project root puts the root on sys.path, which
# makes `tests.servers.postgres` importable; a run from elsewhere would not find it.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

SEED: Final = 20261201
OTHER_SEED: Final = 20261130
LUA: Final = Path(__file__).with_suffix(".lua")
P99_TARGET_MS: Final = 10.0
SHARE_TARGET: Final = 0.60
RSS_TARGET_MB: Final = 300.0
#: A CSV import slower than this would make the bulk-insert path the better way to
#: build the store (the issue's bound); 1,000,000 rows take one to two minutes.
IMPORT_BUDGET_S: Final = 300.0
#: The longest any one in-process timing loop runs.
LADDER_BUDGET_S: Final = 10.0
#: How many paths are checked over HTTP before the load.
CHECKED_PATHS: Final = 400
RSS_INTERVAL_S: Final = 0.2
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")

USERS_COLUMNS: Final = (
    "username",
    "displayname",
    "givenname",
    "surname",
    "email",
    "extension",
    "phone",
    "mobile",
)
#: The users' direct numbers and extensions: +49 9971 4NNNNN ↔ extension 1NNNN. No
#: phonebook number has the area code 9971 (bench.csv_import.LANDLINE_AREAS).
USER_AREA: Final = "9971"
#: Unknown numbers: area codes and a mobile prefix the generator never writes.
UNKNOWN_AREAS: Final = ("3641", "6221", "1575")


# --- the bench-only application: the real one plus a constant -------------------------


def limit_app() -> FastAPI:
    """The application of a `serve` worker (`api.app.from_environment`: the store named
    by the environment, every route and middleware of the product) plus two constant
    routes, matched first: `/bench/constant` answers a fixed name and does nothing else
    (the limit of the server stack), `/bench/constant-auth` does so after the same
    authentication as `/lookup.txt`, read the same way (`caller_of`: the token from the
    query string or the header, from the cache of checked tokens or the store). Started
    by uvicorn as `--factory`, never by the product."""
    from fastapi import Response

    from pbx_connector.api.app import from_environment
    from pbx_connector.api.deps import caller_of

    api = from_environment()

    async def constant() -> Response:
        return Response("Jürgen Müller", media_type="text/plain; charset=utf-8")

    async def constant_auth(request: Request) -> Response:
        app = request.app.state.core
        await caller_of(request, app, request.query_params.get("token"))
        return Response("Jürgen Müller", media_type="text/plain; charset=utf-8")

    # Routes of the application itself, first in its list, as `/lookup.txt` is
    # (`api.routes.lookup.install`): the limit is the stack, not the route's place.
    before = list(api.router.routes)
    api.add_api_route("/bench/constant", constant, methods=["GET"])
    api.add_api_route("/bench/constant-auth", constant_auth, methods=["GET"])
    added = [r for r in api.router.routes if r not in before]
    api.router.routes[:] = added + before
    return api


#: The label of the constant asked the lookup's own requests.
SAME_REQUESTS: Final = "constant, the lookup's requests"

#: Where `profiled_app` writes its statistics (set by `profile_lookups`).
PROFILE_ENV: Final = "PBX_BENCH_PROFILE"
#: Functions whose own time is waiting (for work, for the lock, for the network), not
#: working: left out of the profile's sums. uvloop's loop is among them: its own time is
#: its waiting for sockets plus its C work (reading, httptools parsing, writing).
WAITS: Final = (
    "'get' of '_queue.SimpleQueue'",
    "'acquire' of '_thread.lock'",
    "'poll' of 'select.epoll'",
    "of 'uvloop.loop.Loop'",
    "built-in method time.sleep",
)


def profiled_app() -> FastAPI:
    """`limit_app` under cProfile in every thread (the event loop's and the threads the
    store reads run in), the statistics written to `$PBX_BENCH_PROFILE` when the
    application shuts down (uvicorn ends the process by its signal afterwards, so an
    `atexit` hook would never run). For one worker only; run by uvicorn as `--factory`."""
    import cProfile
    import pstats
    from contextlib import asynccontextmanager

    api = limit_app()
    profiles: list[cProfile.Profile] = []

    def in_new_thread(*_: Any) -> None:
        # Called by the first event of each thread started from now on: swap this hook
        # for a profiler of the thread's own.
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    product_lifespan = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with product_lifespan(app):
            main = cProfile.Profile()
            profiles.append(main)
            threading.setprofile(in_new_thread)
            main.enable()
            yield
            main.disable()
            pstats.Stats(*profiles).dump_stats(os.environ[PROFILE_ENV])

    api.router.lifespan_context = lifespan
    return api


# --- processes: CPU and memory read from /proc ------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in brackets and may hold spaces: the fields follow the last ")".
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(roots: Sequence[int]) -> tuple[int, int, int]:
    """The summed VmRSS and VmHWM (each process's own peak) of the trees, in KiB, and
    how many processes there are."""
    pids = [p for r in roots for p in process_tree(r)]
    return (
        sum(_status_kib(p, "VmRSS") for p in pids),
        sum(_status_kib(p, "VmHWM") for p in pids),
        len(pids),
    )


def tree_pss_kib(roots: Sequence[int]) -> int:
    """The summed PSS of the trees in KiB: RSS with each shared page divided among the
    processes that share it (the libraries of the workers), so it adds up."""
    total = 0
    for pid in (p for r in roots for p in process_tree(r)):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_cpu_s(roots: Sequence[int]) -> float:
    """CPU seconds (user + system) spent so far by the trees' live processes."""
    total = 0
    for pid in (p for r in roots for p in process_tree(r)):
        fields = _proc_stat(pid)
        if fields is not None:
            # utime, stime, and those of its children that ended (a PostgreSQL backend
            # that served a sync, reaped by the postmaster).
            total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds all cores of the machine spent busy since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def autogroup() -> str:
    """The kernel's autogroup setting: with it on, every PostgreSQL backend (a session of
    its own) is a scheduling group of its own, and on two saturated cores those groups
    waited up to seconds for the CPU (docs/benchmarks.md)."""
    try:
        value = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown (no /proc/sys/kernel/sched_autogroup_enabled)"
    return {"1": "1 (on)", "0": "0 (off)"}.get(value, value)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class RssWatch:
    """Samples the summed RSS of a process tree until stopped; keeps the peak."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(RSS_INTERVAL_S):
            self.peak_kib = max(self.peak_kib, tree_rss_kib([self.root])[0])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- wrk --------------------------------------------------------------------------------


@dataclass
class WrkResult:
    label: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    named: int
    empty: int
    #: CPU use during the measurement, in cores (1.0 = one core busy all the time).
    server_cores: float = 0.0
    wrk_cores: float = 0.0
    other_cores: float = 0.0
    load: str = ""

    @classmethod
    def parse(cls, label: str, out: str) -> WrkResult:
        def latency(pct: str) -> float:
            return wrk_latency_ms(out, pct)

        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        counted = re.search(
            r"lookup_http: non-2xx (\d+), 2xx with a body (\d+), 2xx empty (\d+)", out
        )
        sockets = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        if not rate or not total or not counted:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        errors = int(counted[1])
        if sockets:
            errors += sum(int(x) for x in sockets.groups())
        return cls(
            label,
            float(rate[1]),
            latency("50"),
            latency("99"),
            errors,
            int(total[1]),
            int(counted[2]),
            int(counted[3]),
        )


def run_wrk(
    label: str,
    url: str,
    paths: Path,
    token: str,
    args: argparse.Namespace,
    ours: Callable[[], list[int]],
    during: Callable[[], None] | None = None,
) -> WrkResult:
    """wrk against `url` with the paths of `paths`; `ours` gives the root processes of
    the server side (serve, PostgreSQL), whose CPU is counted as the server's. `during`,
    if given, runs after wrk ended and before the CPU is read again (joining syncs)."""
    load = load_average()
    busy0, server0, self0 = machine_busy_s(), tree_cpu_s(ours()), _self_cpu_s()
    children0 = _children_cpu_s()
    started = time.perf_counter()
    cmd = [
        "wrk",
        "-t2",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        str(paths),
        token,
    ]
    with tempfile.TemporaryFile("w+") as out:
        wrk = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        # wait4 gives wrk's own CPU time; Popen.wait would not.
        _, status, usage = os.wait4(wrk.pid, 0)
        wrk.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    server1 = tree_cpu_s(ours())
    if during is not None:
        during()
    # The server's CPU while `during` ran too (PostgreSQL finishing a sync's writes).
    server2 = tree_cpu_s(ours())
    elapsed = time.perf_counter() - started
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk exited {wrk.returncode}:\n{text}")
    result = WrkResult.parse(label, text)
    wrk_s = usage.ru_utime + usage.ru_stime
    # Everything the machine did besides serve (and PostgreSQL), wrk, this process and
    # its other children (the syncs): other people's work.
    ours_s = (server2 - server0) + wrk_s + (_self_cpu_s() - self0)
    ours_s += _children_cpu_s() - children0 - wrk_s
    result.server_cores = (server1 - server0) / args.duration
    result.wrk_cores = wrk_s / args.duration
    result.other_cores = max(0.0, (machine_busy_s() - busy0 - ours_s) / elapsed)
    result.load = load
    return result


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- data -------------------------------------------------------------------------------


def user_rows(count: int) -> Iterator[list[str]]:
    """Users with a direct number and an extension each, every second one a mobile."""
    gen = PhonebookGenerator(seed=SEED + 2)
    for i in range(count):
        row = gen.row()
        given, surname = row[2], row[3]
        mobile = f"+49 176 5{i:06d}" if i % 2 == 0 else ""
        yield [
            f"user{i:05d}",
            f"{surname}, {given}",
            given,
            surname,
            f"user{i:05d}@example.com",
            f"1{i:04d}",
            f"+49 {USER_AREA} 4{i:05d}",
            mobile,
        ]


def _write_users(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(USERS_COLUMNS)
        writer.writerows(user_rows(count))


@dataclass
class Ask:
    """One request: the number as the PBX sends it, and whether a name must come back."""

    number: str
    known: bool
    kind: str
    #: The number as it goes into the URL's query string.
    query: str


def _forms(e164: str, rng: random.Random) -> tuple[str, str]:
    """`e164` in a usual form, and how it is put in a query string."""
    import phonenumbers

    parsed = phonenumbers.parse(e164)
    national = str(parsed.national_number)
    fmt = phonenumbers.PhoneNumberFormat
    international = phonenumbers.format_number(parsed, fmt.INTERNATIONAL)
    german = parsed.country_code == 49
    choices = ["international", "e164", "0049", "raw plus", "plus spaces"]
    if german:
        choices += ["national", "national", "national slash", "trunk zero"]
    style = rng.choice(choices)
    if style == "e164":
        text = e164
    elif style == "0049":
        text = f"00{parsed.country_code}{national}"
    elif style == "national":
        text = phonenumbers.format_number(parsed, fmt.NATIONAL)
    elif style == "national slash":
        text = phonenumbers.format_number(parsed, fmt.NATIONAL).replace(" ", "/", 1)
    elif style == "trunk zero":
        text = international.replace(" ", " (0)", 1)
    else:
        text = international
    if style == "raw plus":
        # A PBX that does not percent-encode `+`: it arrives as a space.
        return text, "+" + quote(text[1:], safe="")
    if style == "plus spaces":
        return text, quote_plus(text)
    return text, quote(text, safe="")


def make_asks(
    phonebook_csv: Path, users: int, count: int, normalise: Callable[[str], str | None]
) -> list[Ask]:
    """`count` requests: 55% numbers of phonebook entries, 10% users' numbers, 10% users'
    extensions, 20% unknown numbers, 5% unknown extensions. Only the phonebook rows picked
    are normalised (a million would take a minute)."""
    rng = random.Random(SEED)
    with phonebook_csv.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        numbers = [header.index(c) for c in ("phone", "mobile", "homephone")]
        rows = list(reader)
    asks: list[Ask] = []
    user_ext = [f"1{i:04d}" for i in range(users)]
    while len(asks) < count:
        draw = rng.random()
        if draw < 0.55:
            row = rng.choice(rows)
            given = [row[i] for i in numbers if row[i]]
            e164 = normalise(rng.choice(given)) if given else None
            if e164 is None:
                continue
            text, query = _forms(e164, rng)
            asks.append(Ask(text, True, "phonebook", query))
        elif draw < 0.65:
            i = rng.randrange(users)
            e164 = f"+49{USER_AREA}4{i:05d}"
            if i % 2 == 0 and rng.random() < 0.5:
                e164 = f"+491765{i:06d}"  # the even ones have a mobile (user_rows)
            text, query = _forms(e164, rng)
            asks.append(Ask(text, True, "user", query))
        elif draw < 0.75:
            ext = rng.choice(user_ext)
            asks.append(Ask(ext, True, "extension", ext))
        elif draw < 0.95:
            area = rng.choice(UNKNOWN_AREAS)
            e164 = normalise(f"+49 {area} {rng.randrange(10**6, 10**7)}")
            if e164 is None:
                continue
            text, query = _forms(e164, rng)
            asks.append(Ask(text, False, "unknown", query))
        else:
            ext = str(rng.randrange(20000, 30000))
            asks.append(Ask(ext, False, "unknown extension", ext))
    return asks


def write_paths(path: Path, asks: Sequence[Ask], token: str) -> None:
    """The lookup paths for the Lua script: every second one carries `?token=`."""
    with path.open("w") as f:
        for i, ask in enumerate(asks):
            if i % 2:
                f.write(f"- /lookup.txt?number={ask.query}&token={token}\n")
            else:
                f.write(f"h /lookup.txt?number={ask.query}\n")


# --- the store --------------------------------------------------------------------------


def pbx(env: dict[str, str], db: str, *args: str, timeout: float = 3600) -> str:
    done = subprocess.run(
        [PBX, "--db", db, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pbx-connector {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


@dataclass
class Files:
    phonebook: Path
    users: Path
    other_a: Path
    other_b: Path


def generate_files(where: Path, args: argparse.Namespace) -> tuple[Files, float]:
    started = time.perf_counter()
    files = Files(
        where / "phonebook.csv", where / "users.csv", where / "other-a.csv", where / "other-b.csv"
    )
    write_csv(files.phonebook, PhonebookGenerator().rows(args.rows))
    _write_users(files.users, args.users)
    other = list(PhonebookGenerator(seed=OTHER_SEED).rows(args.sync_rows))
    write_csv(files.other_a, other)
    org = 4  # the organisation column: changed in every row, so each sync updates all
    write_csv(files.other_b, [[*r[:org], r[org] + " (neu)", *r[org + 1 :]] for r in other])
    return files, time.perf_counter() - started


@dataclass
class Built:
    """What building a store took, and the lookup token made in it."""

    phonebook_s: float
    phonebook_output: str
    users_s: float
    users_output: str
    token: str
    other_s: float = 0.0
    other_output: str = ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def build_store(env: dict[str, str], db: str, files: Files) -> Built:
    """Fill a fresh store as an administrator would: a CSV phonebook profile and a CSV
    users profile, one `sync` each; then the profile `other` (not synchronised yet) and
    a token of the role `lookup`."""
    pbx(
        env,
        db,
        "profile",
        "create",
        "bench",
        "-t",
        "csv-phonebook",
        "--set",
        f"path={files.phonebook}",
    )
    _log("importing the phonebook")
    started = time.perf_counter()
    phonebook_out = pbx(env, db, "sync", "bench")
    phonebook_s = time.perf_counter() - started
    _log(f"phonebook imported in {phonebook_s:.1f} s")
    pbx(env, db, "profile", "create", "staff", "-t", "csv-users", "--set", f"path={files.users}")
    started = time.perf_counter()
    users_out = pbx(env, db, "sync", "staff")
    users_s = time.perf_counter() - started
    pbx(
        env,
        db,
        "profile",
        "create",
        "other",
        "-t",
        "csv-phonebook",
        "--set",
        f"path={files.other_a}",
    )
    token = pbx(env, db, "token", "create", "bench", "--role", "lookup").strip()
    return Built(phonebook_s, _last_line(phonebook_out), users_s, _last_line(users_out), token)


def import_other(env: dict[str, str], db: str, built: Built) -> None:
    started = time.perf_counter()
    out = pbx(env, db, "sync", "other")
    built.other_s = time.perf_counter() - started
    built.other_output = _last_line(out)


def keep_sqlite(
    keep: Path, args: argparse.Namespace, env: dict[str, str]
) -> tuple[Files, Built, float]:
    """The kept store of `--keep DIR`, built there first if it is missing or was built
    with other sizes. Returns the files, the build (as recorded), and the seconds the
    generation of the files took when it was built."""
    keep.mkdir(parents=True, exist_ok=True)
    record = keep / "build.json"
    sizes = {"rows": args.rows, "users": args.users, "sync_rows": args.sync_rows}
    files = Files(
        keep / "phonebook.csv", keep / "users.csv", keep / "other-a.csv", keep / "other-b.csv"
    )
    if record.exists():
        saved = json.loads(record.read_text())
        if saved["sizes"] == sizes and (keep / "pristine.db").exists():
            _log(f"reusing the store kept in {keep}")
            return files, Built(**saved["built"]), float(saved["generate_s"])
    for stale in keep.glob("pristine.db*"):
        stale.unlink()
    shutil.rmtree(keep / "home", ignore_errors=True)
    record.unlink(missing_ok=True)
    files, generate_s = generate_files(keep, args)
    built = build_store(env, str(keep / "pristine.db"), files)
    conn = sqlite3.connect(keep / "pristine.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one file to copy
    finally:
        conn.close()
    record.touch(mode=0o600)  # it holds the store's lookup token
    record.write_text(
        json.dumps({"sizes": sizes, "built": built.__dict__, "generate_s": generate_s}, indent=1)
    )
    return files, built, generate_s


# --- in-process timings -----------------------------------------------------------------


@dataclass
class Timing:
    label: str
    per_lookup_us: float
    count: int
    found: int

    @property
    def per_s(self) -> float:
        return 1e6 / self.per_lookup_us


def time_each(label: str, items: Sequence[Any], call: Callable[[Any], Any]) -> Timing:
    """`call` for each item, after a warm-up of 200; at most `LADDER_BUDGET_S` seconds.
    Per-lookup time is the total over the count (the loop's own cost included)."""
    for item in items[:200]:
        call(item)
    found = 0
    done = 0
    deadline = time.perf_counter() + LADDER_BUDGET_S
    started = time.perf_counter()
    for item in items:
        if call(item):
            found += 1
        done += 1
        if done % 256 == 0 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - started
    return Timing(label, elapsed / done * 1e6, done, found)


#: The bare statement: the indexed number columns that can hold an E.164 number, the
#: first hit wins (no precedence between sources beyond the order written, no ties).
BARE_E164: Final = " UNION ALL ".join(
    f"SELECT displayname FROM {t} WHERE {c}_e164 = :n"
    for t in ("phonebook", "users")
    for c in ("phone", "mobile", "homephone")
)
BARE_EXTENSION: Final = "SELECT displayname FROM users WHERE extension = :n"


def ladder(url: str, asks: Sequence[Ask], token: str, bare: Callable[[], Any]) -> list[Timing]:
    """The in-process timings of step 3 on the store at `url`; `bare()` opens a plain
    driver connection (sqlite3 or psycopg) to it."""
    from sqlalchemy import text

    from pbx_connector.domain.phone import PhoneNormaliser
    from pbx_connector.service import App
    from pbx_connector.service.lookup import asked_number
    from pbx_connector.store import lookup as lookup_store

    normaliser = PhoneNormaliser("DE", "")
    # What each number is compared as: worked out before the clocks run, for the rows
    # that time the store alone.
    compared: list[tuple[str, str]] = []
    for ask in asks:
        asked = asked_number(ask.number, normaliser)
        if asked is None:
            raise RuntimeError(f"{ask.number!r} is no number")
        if asked.e164 is not None:
            compared.append(("e164", asked.e164))
        elif asked.internal is not None:
            compared.append(("internal", asked.internal))
    app = App.open(url)
    out: list[Timing] = []
    raw = bare()
    try:
        is_pg = not isinstance(raw, sqlite3.Connection)

        def plain(sql: str) -> str:
            return re.sub(r":(\w+)", r"%(\1)s", sql) if is_pg else sql

        e164_sql = plain(BARE_E164) + " LIMIT 1"
        ext_sql = plain(BARE_EXTENSION) + " LIMIT 1"

        def driver(item: tuple[str, Any]) -> bool:
            return raw.execute(item[0], item[1]).fetchone() is not None

        # The statements and their parameters are made before the clock runs: these rows
        # time the driver and the database alone.
        bare_calls = [
            (e164_sql if kind == "e164" else ext_sql, {"n": value}) for kind, value in compared
        ]
        out.append(time_each("bare indexed SELECT, driver only", bare_calls, driver))
        statements: dict[str, Any] = {}
        product_calls: list[tuple[str, Any]] = []
        for kind, value in compared:
            stmt = statements.get(kind)
            if stmt is None:
                made = lookup_store.statement(kind, False)  # type: ignore[arg-type]
                stmt = statements[kind] = made.compile(dialect=app.engine.dialect)
            params = stmt.construct_params(lookup_store.parameters(kind, value, None))  # type: ignore[arg-type]
            if stmt.positiontup:
                product_calls.append((str(stmt), tuple(params[n] for n in stmt.positiontup)))
            else:
                product_calls.append((str(stmt), params))
        out.append(time_each("the product's statement, driver only", product_calls, driver))
    finally:
        raw.close()
    with app.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        out.append(
            time_each(
                "store.lookup.find (SQLAlchemy, one connection)",
                compared,
                lambda item: lookup_store.find(conn, item[0], item[1]) is not None,
            )
        )
    out.append(
        time_each(
            "app.lookup.name (the core: settings, normalise, find)",
            asks,
            lambda ask: app.lookup.name(ask.number) != "",
        )
    )
    app.lookup.name(asks[0].number)  # the settings read, as serve's first lookup does

    def at_once(ask: Ask) -> bool:
        # What serve's event loop does: None (the settings due again after 2 s, or the
        # store busy) is answered by the lookup that may wait, in a thread there.
        found = app.lookup.name_at_once(ask.number)
        return (app.lookup.name(ask.number) if found is None else found) != ""

    out.append(time_each("app.lookup.name_at_once, else name (serve's event loop)", asks, at_once))
    out.append(
        time_each(
            "app.tokens.authenticate (a token's check in the store)",
            [token] * min(len(asks), 20000),
            lambda t: app.tokens.authenticate(t) is not None,
        )
    )
    out.append(
        time_each(
            "app.tokens.cached (a token checked within the last second)",
            [token] * min(len(asks), 20000),
            lambda t: app.tokens.cached(t) is not None or app.tokens.authenticate(t) is not None,
        )
    )
    app.engine.dispose()
    return out


# --- servers ----------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _started(proc: subprocess.Popen[bytes], log: Path, base: str, workers: int) -> None:
    """Wait until every worker has started: wrk opens its connections once, and a
    worker still starting would get none of them."""
    deadline = time.monotonic() + 120
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    # With one worker, uvicorn logs the start-up before it listens.
    while True:
        try:
            httpx.get(f"{base}/login", timeout=10)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{base} does not answer") from None
            time.sleep(0.1)


@dataclass
class Served:
    """A measured server's memory."""

    label: str
    peak_mib: float = 0.0
    after_mib: float = 0.0
    hwm_mib: float = 0.0
    pss_mib: float = 0.0
    processes: int = 0


class Server:
    """A server process on a free loopback port; its log in `log`."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, workers: int) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._file = log.open("w")
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )
        try:
            _started(self.proc, log, self.base, workers)
        except BaseException:
            self.stop()
            raise
        self.watch = RssWatch(self.proc.pid)

    def memory(self, label: str) -> Served:
        time.sleep(1)  # let the last responses' garbage go before the "after" reading
        rss, hwm, count = tree_rss_kib([self.proc.pid])
        pss = tree_pss_kib([self.proc.pid])
        self.watch.stop()
        peak = max(self.watch.peak_kib, rss)
        return Served(label, peak / 1024, rss / 1024, hwm / 1024, pss / 1024, count)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._file.close()


def check_sample(base: str, asks: Sequence[Ask], token: str) -> tuple[int, list[str]]:
    """Ask `CHECKED_PATHS` of the numbers one by one: a known number must get a name, an
    unknown one an empty body, and everything a 200. Returns the count and what was wrong."""
    wrong: list[str] = []
    sample = asks[:CHECKED_PATHS]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        for ask in sample:
            answer = client.get(f"/lookup.txt?number={ask.query}", timeout=10)
            if answer.status_code != 200 or bool(answer.text) != ask.known:
                wrong.append(
                    f"{ask.kind} {ask.number!r} ({ask.query}): {answer.status_code} {answer.text!r}"
                )
    return len(sample), wrong


class Syncer:
    """Synchronises `other` over and over, switching its file each time, until stopped.
    `turn` carries on from the Syncer before: each run must find the other file than the
    run before it, or it would change nothing."""

    def __init__(self, env: dict[str, str], db: str, files: Files, turn: int) -> None:
        self.env, self.db, self.files = env, db, files
        self.took: list[float] = []
        self.outputs: list[str] = []
        self.turn = turn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            path = self.files.other_b if self.turn % 2 == 0 else self.files.other_a
            try:
                pbx(self.env, self.db, "profile", "set", "other", f"path={path}")
                started = time.perf_counter()
                out = pbx(self.env, self.db, "sync", "other", timeout=600)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                # Reported with the results: a sync that failed under load is a finding.
                self.outputs.append(f"FAILED: {str(exc)[-500:]}")
                return
            self.took.append(time.perf_counter() - started)
            self.outputs.append(_last_line(out))
            self.turn += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=660)


@dataclass
class StoreRun:
    """Everything measured on one store (SQLite or PostgreSQL)."""

    kind: str
    built: Built
    timings: list[Timing] = field(default_factory=list)
    results: list[WrkResult] = field(default_factory=list)
    memory: list[Served] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    syncs: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    #: What each warm-up measured (not counted).
    warmups: list[str] = field(default_factory=list)


#: Seconds of load on a server just started before it is measured: what is measured is
#: a server in steady use (its connections to the store open, the token checked), and
#: what the first seconds cost is reported apart.
WARM_UP_S: Final = 5


def warm_up(
    run: StoreRun, label: str, url: str, paths: Path, token: str, args: argparse.Namespace
) -> None:
    """`WARM_UP_S` seconds of the same load against a server just started, not counted;
    what they measured goes to the report."""
    short = argparse.Namespace(**{**vars(args), "duration": WARM_UP_S})
    r = run_wrk(f"warm-up: {label}", url, paths, token, short, list)
    run.warmups.append(
        f"{label}: {r.requests_per_s:.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
        f"errors {r.errors}"
    )


def measure_store(
    run: StoreRun,
    db: str,
    env: dict[str, str],
    work: Path,
    files: Files,
    asks: Sequence[Ask],
    args: argparse.Namespace,
    extra: Callable[[], list[int]],
) -> None:
    """Steps 4 and 5 on the store `db`. `extra` gives the roots of server processes
    besides serve (PostgreSQL's), whose CPU counts as the server's."""
    token = run.built.token
    tag = run.kind
    paths = work / f"lookup-{tag}.paths"
    write_paths(paths, asks, token)
    constant = work / "constant.paths"
    constant.write_text("- /bench/constant\n")
    constant_auth = work / f"constant-auth-{tag}.paths"
    constant_auth.write_text(f"h /bench/constant-auth\n- /bench/constant-auth?token={token}\n")
    # The lookup's own requests (query strings, tokens, headers) sent to the constant:
    # what the stack does for them (FastAPI reads every query string and header) without
    # the lookup.
    constant_same = work / f"constant-same-{tag}.paths"
    constant_same.write_text(paths.read_text().replace("/lookup.txt?", "/bench/constant?"))
    limit_env = {**env, "PBX_CONNECTOR_DB": db}
    for workers in args.workers:
        of = f"{workers} worker{'s' if workers > 1 else ''}"
        _log(f"{tag}: the constant, {of}")
        limit = Server(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.lookup_http:limit_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "info",
            ],
            limit_env,
            work / f"limit-{tag}-{workers}.log",
            workers,
        )
        try:

            def ours_limit(server: Server = limit) -> list[int]:
                return [server.proc.pid, *extra()]

            warm_up(run, f"{tag}: constant + auth ({of})", limit.base, constant_auth, token, args)

            run.results.append(
                run_wrk(f"{tag}: constant ({of})", limit.base, constant, "", args, ours_limit)
            )
            run.results.append(
                run_wrk(
                    f"{tag}: constant + auth ({of})",
                    limit.base,
                    constant_auth,
                    token,
                    args,
                    ours_limit,
                )
            )
            run.results.append(
                run_wrk(
                    f"{tag}: {SAME_REQUESTS} ({of})",
                    limit.base,
                    constant_same,
                    token,
                    args,
                    ours_limit,
                )
            )
        finally:
            limit.stop()
        _log(f"{tag}: lookups, idle store, {of}")
        serve = _serve(db, env, work / f"serve-{tag}-{workers}.log", workers)
        try:
            count, wrong = check_sample(serve.base, asks, token)
            run.checked.append(
                f"{of}: {count} paths asked one by one, {count - len(wrong)} answered as expected"
                + "".join(f"\n    wrong: {w}" for w in wrong[:10])
            )

            def ours_serve(server: Server = serve) -> list[int]:
                return [server.proc.pid, *extra()]

            warm_up(run, f"{tag}: lookup, idle ({of})", serve.base, paths, token, args)
            run.results.append(
                run_wrk(f"{tag}: lookup, idle ({of})", serve.base, paths, token, args, ours_serve)
            )
            run.memory.append(serve.memory(f"{tag}, idle store ({of})"))
        finally:
            serve.stop()
            _tail(run, serve.log)
    _log(f"{tag}: importing 'other' ({args.sync_rows:,} rows)")
    import_other(env, db, run.built)
    turn = 0  # the import read other-a: the first sync reads other-b
    for workers in args.workers:
        of = f"{workers} worker{'s' if workers > 1 else ''}"
        _log(f"{tag}: lookups during syncs, {of}")
        serve = _serve(db, env, work / f"serve-{tag}-syncs-{workers}.log", workers)
        try:

            def ours_serve(server: Server = serve) -> list[int]:
                return [server.proc.pid, *extra()]

            warm_up(run, f"{tag}: lookup, before the syncs ({of})", serve.base, paths, token, args)
            syncer = Syncer(env, db, files, turn)
            try:
                run.results.append(
                    run_wrk(
                        f"{tag}: lookup, during syncs ({of})",
                        serve.base,
                        paths,
                        token,
                        args,
                        ours_serve,
                        during=syncer.stop,
                    )
                )
            finally:
                syncer.stop()
            turn = syncer.turn
            failed = [o for o in syncer.outputs if o.startswith("FAILED")]
            done = [o for o in syncer.outputs if not o.startswith("FAILED")]
            run.syncs.append(
                f"{of}: {len(syncer.took)} syncs of 'other', "
                + ", ".join(
                    f"{t:.1f} s ({_updated(o)})" for t, o in zip(syncer.took, done, strict=True)
                )
                + "".join(f"\n    {o}" for o in failed)
            )
            run.memory.append(serve.memory(f"{tag}, after the syncs ({of})"))
        finally:
            serve.stop()
            _tail(run, serve.log)


def _updated(output: str) -> str:
    """`100000 updated` from the last line of `sync`."""
    match = re.search(r"(\d+) updated", output)
    return f"{match[1]} updated" if match else output


def _serve(db: str, env: dict[str, str], log: Path, workers: int) -> Server:
    return Server([PBX, "--db", db, "serve", "--workers", str(workers)], env, log, workers)


def _tail(run: StoreRun, log: Path) -> None:
    text = log.read_text(errors="replace")
    if "Traceback" in text:
        run.tracebacks.append(f"{log.name}:\n{text[-3000:]}")


# --- the report -------------------------------------------------------------------------


def _workers(label: str) -> str:
    """`(2 workers)` of a measurement's label."""
    return label[label.index("(") :]


def _mib_ok(mib: float) -> str:
    return "yes" if mib * 1.048576 < RSS_TARGET_MB else "no"


def print_report(
    runs: list[StoreRun],
    args: argparse.Namespace,
    asks: Sequence[Ask],
    setup: list[str],
    loads: tuple[str, str],
    profile: list[str],
) -> None:
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.platform()}")
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    print(f"kernel.sched_autogroup_enabled: {autogroup()}")
    print(f"load average before: {loads[0]}; after: {loads[1]}")
    print(
        f"wrk: 2 threads, {args.connections} connections, {args.duration} s per measurement, "
        "on the same 2 cores as the server"
    )
    kinds: dict[str, int] = {}
    for ask in asks:
        kinds[ask.kind] = kinds.get(ask.kind, 0) + 1
    known = sum(a.known for a in asks)
    print(
        f"requests: {len(asks):,} paths ("
        + ", ".join(f"{k} {v:,}" for k, v in kinds.items())
        + f"); known {known / len(asks):.1%}; half with ?token=, half with a Bearer header"
    )
    for line in setup:
        print(line)
    for run in runs:
        b = run.built
        print(f"\n{run.kind}:")
        print(f"  phonebook import, {args.rows:,} rows, one sync: {b.phonebook_s:.1f} s")
        print(f"    {b.phonebook_output}")
        if b.phonebook_s > IMPORT_BUDGET_S:
            print(f"    over {IMPORT_BUDGET_S:.0f} s: the bulk-insert path would build it faster")
        print(f"  users import, {args.users:,} users: {b.users_s:.1f} s: {b.users_output}")
        if b.other_s:
            print(f"  'other' first import, {args.sync_rows:,} rows: {b.other_s:.1f} s")
        for line in run.checked:
            print(f"  checked before the load, {line}")
        print("  in-process, one lookup after another, the same numbers, one connection:")
        print(f"    {'':56} {'µs each':>8} {'per s':>8} {'found':>7}")
        for t in run.timings:
            print(
                f"    {t.label:56} {t.per_lookup_us:8.1f} {t.per_s:8.0f} {t.found / t.count:7.1%}"
            )
        for line in run.syncs:
            print(f"  during syncs, {line}")
    print()
    print(
        f"{'measurement':50} {'req/s':>6} {'share':>5} {'same':>5} {'p50 ms':>6} {'p99 ms':>6} "
        f"{'errors':>6} {'named':>6} {'serve':>5} {'µs/req':>6} {'wrk':>4} {'other':>5}  load"
    )
    limits: dict[str, float] = {}
    same_limits: dict[str, float] = {}
    for run in runs:
        for r in run.results:
            key = run.kind + _workers(r.label)
            if ": constant (" in r.label:
                limits[key] = r.requests_per_s
            if f": {SAME_REQUESTS} (" in r.label:
                same_limits[key] = r.requests_per_s
            share = r.requests_per_s / limits[key] if limits.get(key) else 0.0
            same = r.requests_per_s / same_limits[key] if same_limits.get(key) else 0.0
            named = r.named / max(1, r.named + r.empty)
            per_request = r.server_cores * 1e6 / r.requests_per_s if r.requests_per_s else 0.0
            print(
                f"{r.label:50} {r.requests_per_s:6.0f} {share:5.2f} {same:5.2f} "
                f"{r.p50_ms:6.2f} {r.p99_ms:6.2f} {r.errors:6d} {named:6.1%} "
                f"{r.server_cores:5.2f} {per_request:6.0f} {r.wrk_cores:4.2f} "
                f"{r.other_cores:5.2f}  {r.load}"
            )
    print(
        "share: of the req/s of the constant asked for a bare path (no query string, no "
        "authentication; same store, same workers). same: of the constant asked the "
        "lookup's own requests (query strings, tokens, headers; no authentication). "
        "named: 2xx with a name.\nserve, wrk, other: cores busy during the measurement "
        "(serve with PostgreSQL; other: everything else on the machine). µs/req: serve's "
        "CPU per request. load: load average at the start."
    )
    print()
    print(f"{'target':72} {'measured':>10} {'target':>10}  met")
    for run in runs:
        for r in run.results:
            if ": lookup" not in r.label:
                continue
            limit = limits.get(run.kind + _workers(r.label), 0.0)
            share = r.requests_per_s / limit if limit else 0.0
            same_limit = same_limits.get(run.kind + _workers(r.label), 0.0)
            same = r.requests_per_s / same_limit if same_limit else 0.0
            rows = (
                ("errors", f"{r.errors}", "0", r.errors == 0),
                (
                    "p99",
                    f"{r.p99_ms:.2f} ms",
                    f"< {P99_TARGET_MS:.0f} ms",
                    r.p99_ms < P99_TARGET_MS,
                ),
                (
                    "share of the constant",
                    f"{share:.2f}",
                    f">= {SHARE_TARGET:.2f}",
                    share >= SHARE_TARGET,
                ),
                (
                    "share of the constant, same requests",
                    f"{same:.2f}",
                    f">= {SHARE_TARGET:.2f}",
                    same >= SHARE_TARGET,
                ),
            )
            for what, measured, target, met in rows:
                label = f"{r.label}: {what}"
                print(f"{label:72} {measured:>10} {target:>10}  {'yes' if met else 'no'}")
        for m in run.memory:
            for what, mib in (("after", m.after_mib), ("peak", m.peak_mib)):
                label = f"serve RSS {what}, {m.label}"
                print(f"{label:72} {mib:6.0f} MiB {'< 300 MB':>10}  {_mib_ok(mib)}")
    print()
    print(
        "memory of serve, all its processes: VmRSS summed (peak: sampled every "
        f"{RSS_INTERVAL_S} s), VmHWM (each process's own peak) summed, PSS summed (after)"
    )
    for run in runs:
        for m in run.memory:
            print(
                f"  {m.label:38} {m.processes} processes: RSS peak {m.peak_mib:.0f} MiB, "
                f"after {m.after_mib:.0f} MiB; VmHWM {m.hwm_mib:.0f} MiB; PSS {m.pss_mib:.0f} MiB"
            )
    print()
    print(f"warm-ups ({WARM_UP_S} s of the same load on each server just started; not counted):")
    for run in runs:
        for line in run.warmups:
            print(f"  {line}")
    print()
    print("during syncs against idle (the same workers):")
    for run in runs:
        idle = {_workers(r.label): r for r in run.results if ": lookup, idle" in r.label}
        for r in run.results:
            base = idle.get(_workers(r.label))
            if ": lookup, during syncs" not in r.label or base is None:
                continue
            print(
                f"  {run.kind} {_workers(r.label)}: p99 {base.p99_ms:.2f} -> {r.p99_ms:.2f} ms "
                f"({r.p99_ms / base.p99_ms:.2f}x), req/s {base.requests_per_s:.0f} -> "
                f"{r.requests_per_s:.0f} ({r.requests_per_s / base.requests_per_s:.2f}x), "
                f"errors {base.errors} -> {r.errors}"
            )
    if profile:
        print()
        for line in profile:
            print(line)
    for run in runs:
        for tb in run.tracebacks:
            print(f"serve logged a traceback ({run.kind}):\n{tb}")


# --- where the time goes ----------------------------------------------------------------


def _component(filename: str, name: str) -> str:
    """The part of the stack a profiled function belongs to."""
    if filename == "~":
        if "sqlite3" in name or "psycopg" in name:
            return "database driver (C)"
        return "built-ins (C)"
    match = re.search(r"site-packages/([A-Za-z0-9_]+)", filename)
    if match:
        return match[1]
    match = re.search(r"pbx_connector/([A-Za-z0-9_]+)", filename)
    if match:
        return f"pbx_connector.{match[1].removesuffix('.py')}"
    match = re.search(r"python3\.\d+/([A-Za-z0-9_]+)", filename)
    return f"stdlib {match[1].removesuffix('.py')}" if match else filename


def profile_lookups(
    db: str, env: dict[str, str], work: Path, paths: Path, token: str, args: argparse.Namespace
) -> list[str]:
    """The lookup load against `profiled_app` (one worker): what the server spends its
    time on, by component and by function (own time; waiting left out)."""
    import pstats

    out = work / "lookup.prof"
    server = Server(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.lookup_http:profiled_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--no-access-log",
            "--log-level",
            "info",
        ],
        {**env, "PBX_CONNECTOR_DB": db, PROFILE_ENV: str(out)},
        work / "profile.log",
        1,
    )
    try:
        result = run_wrk("profiled", server.base, paths, token, args, lambda: [server.proc.pid])
    finally:
        server.stop()
    stats: Any = pstats.Stats(str(out))
    rows = [
        (tottime, calls, _component(f, name), f"{Path(f).name}:{line} {name}")
        for (f, line, name), (_, calls, tottime, _, _) in stats.stats.items()
        if not any(w in name for w in WAITS)
    ]
    total = sum(r[0] for r in rows)
    per_request = 1e6 / max(1, result.requests)
    lines = [
        f"where the time goes: SQLite, 1 worker under cProfile (every thread), "
        f"{result.requests:,} lookups at {result.requests_per_s:.0f} req/s (cProfile slows "
        f"it); own time per lookup, waiting left out, {total * per_request:.0f} µs in all:"
    ]
    by_component: dict[str, float] = {}
    for tottime, _, component, _ in rows:
        by_component[component] = by_component.get(component, 0.0) + tottime
    for component, seconds in sorted(by_component.items(), key=lambda kv: -kv[1])[:14]:
        lines.append(f"  {component:36} {seconds * per_request:7.1f} µs {seconds / total:6.1%}")
    lines.append("  the 20 functions with the most own time:")
    for tottime, calls, _, where in sorted(rows, key=lambda r: -r[0])[:20]:
        lines.append(
            f"    {tottime * per_request:7.1f} µs {calls / max(1, result.requests):6.2f}× "
            f"{where[:90]}"
        )
    return lines


# --- main -------------------------------------------------------------------------------


def _sqlite_bare(path: Path) -> Callable[[], Any]:
    def connect() -> Any:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    return connect


def build_sqlite(
    work: Path, args: argparse.Namespace, setup: list[str]
) -> tuple[Built, Files, dict[str, str], Path]:
    """The SQLite store in `work` (built there, or copied from `--keep DIR`)."""
    db = work / "store.db"
    if args.keep is None:
        env = {**os.environ, "PBX_CONNECTOR_HOME": str(work / "home")}
        files, generate_s = generate_files(work, args)
        setup.append(f"generating the CSV files: {generate_s:.1f} s")
        return build_store(env, str(db), files), files, env, db
    keep = Path(args.keep).resolve()
    env = {**os.environ, "PBX_CONNECTOR_HOME": str(keep / "home")}
    files, built, generate_s = keep_sqlite(keep, args, env)
    started = time.perf_counter()
    shutil.copyfile(keep / "pristine.db", db)
    setup.append(f"generating the CSV files: {generate_s:.1f} s (when the kept store was built)")
    setup.append(
        f"SQLite store kept in {keep} (--keep), copied in {time.perf_counter() - started:.1f} s; "
        "its import times are those recorded when it was built"
    )
    return built, files, env, db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="phonebook entries")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--sync-rows", type=int, default=100_000, help="rows of 'other'")
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--paths", type=int, default=20_000, help="pre-generated requests")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="serve --workers values to measure, comma-separated (default 1,2)",
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="keep the built SQLite store in DIR, reuse it"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--only-postgres",
        action="store_true",
        help="measure PostgreSQL alone (the SQLite store is still built, or reused with "
        "--keep, for its files)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the lookups in one worker (SQLite) with cProfile",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian package wrk)")
    if args.skip_postgres and args.only_postgres:
        sys.exit("--skip-postgres and --only-postgres leave nothing to measure")
    if args.users > 10_000:
        sys.exit("--users: at most 10,000 (their extensions are 10000-19999)")
    loads_before = load_average()
    _log(f"load average {loads_before}")
    setup: list[str] = []
    runs: list[StoreRun] = []
    from pbx_connector.domain.phone import PhoneNormaliser

    normaliser = PhoneNormaliser("DE", "")
    with tempfile.TemporaryDirectory(prefix="pbx-bench-lookup-") as tmp:
        work = Path(tmp)
        built, files, env, db = build_sqlite(work, args, setup)
        sqlite_run = StoreRun("SQLite", built)
        asks = make_asks(
            files.phonebook, args.users, args.paths, lambda n: normaliser.normalise(n).e164
        )
        if not args.only_postgres:
            runs.append(sqlite_run)
            _log("in-process timings (SQLite)")
            sqlite_run.timings = ladder(str(db), asks, sqlite_run.built.token, _sqlite_bare(db))
            measure_store(sqlite_run, str(db), env, work, files, asks, args, list)
        profile: list[str] = []
        if args.profile and not args.only_postgres:
            _log("profiling the lookups (SQLite, 1 worker)")
            paths = work / "lookup-SQLite.paths"
            profile = profile_lookups(str(db), env, work, paths, built.token, args)
        if not args.skip_postgres:
            runs.append(_postgres(work, args, files, asks, setup))
        loads_after = load_average()
    print_report(runs, args, asks, setup, (loads_before, loads_after), profile)


def _postgres(
    work: Path, args: argparse.Namespace, files: Files, asks: Sequence[Ask], setup: list[str]
) -> StoreRun:
    from tests.servers.postgres import postgres_available, start_postgres

    if not postgres_available():
        sys.exit("PostgreSQL's server binaries are not installed (or pass --skip-postgres)")
    server = start_postgres(work / "postgres")
    try:
        url = server.create_database("bench")
        env = {**os.environ, "PBX_CONNECTOR_HOME": str(work / "home-pg")}
        setup.append(
            f"PostgreSQL {server.bin_dir.parent.name}: the throwaway server of "
            "tests/servers/postgres.py (fsync off, synchronous_commit off)"
        )
        _log("building the PostgreSQL store")
        built = build_store(env, url, files)
        setup.append(_statistics(server))
        run = StoreRun("PostgreSQL", built)
        import psycopg

        def bare() -> Any:
            return psycopg.connect(
                host=server.host,
                port=server.port,
                user=server.user,
                dbname="bench",
                autocommit=True,
            )

        _log("in-process timings (PostgreSQL)")
        run.timings = ladder(url, asks, built.token, bare)
        postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
        measure_store(run, url, env, work, files, asks, args, lambda: [postmaster])
        return run
    finally:
        server.stop()


def _statistics(server: Any) -> str:
    """Wait for autovacuum to analyse the freshly imported phonebook, as it would on any
    PostgreSQL server a while after a large import: the planner needs the statistics.
    The product runs no ANALYZE itself. After two minutes, ANALYZE by hand."""
    started = time.monotonic()
    with server.connect("bench") as conn:
        while time.monotonic() - started < 120:
            row = conn.execute(
                "SELECT last_autoanalyze FROM pg_stat_user_tables WHERE relname = 'phonebook'"
            ).fetchone()
            if row is not None and row[0] is not None:
                waited = time.monotonic() - started
                return (
                    f"PostgreSQL: autovacuum analysed the phonebook {waited:.0f} s after the import"
                )
            time.sleep(1)
        conn.execute("ANALYZE")
    return "PostgreSQL: autovacuum had not analysed the phonebook after 120 s: ANALYZE by hand"


if __name__ == "__main__":
    main()
