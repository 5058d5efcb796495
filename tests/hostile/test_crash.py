"""kill -9 and Ctrl-C at random points of a sync, on SQLite and on PostgreSQL.

Each scenario starts from a snapshot of the store (its "before" state) and runs
`pbx-connector sync` in a process of its own. After a random delay, drawn from a seeded
RNG over the measured duration of an unkilled run, the process gets SIGKILL (or SIGINT).
Then the suite checks what the crash left behind:

1. the records are exactly the before or the after state, never a mix;
2. every table, index and unique constraint of the schema is still there;
3. the next sync (not killed) succeeds and yields the after state;
4. `pbx-connector runs --json` shows no run as `running` once its process is gone, right
   after the signal and after the next sync; the killed run is shown as interrupted, or
   with the final status it had committed;
5. no plan spool file is left behind, in the data directory or in $TMPDIR;
6. the killed run's lock does not block the next run.

Commands run through the installed command's entry point in forked processes
(`crash_child.py`), so that the signals land in the work of a run rather than in
interpreter start-up; `test_ctrl_c_during_start_up` covers start-up with the console
script itself. Two lanes (own store, data directory, $TMPDIR and fork server each) run
side by side to use two cores. The figures of every campaign are printed at its end
(`pytest -s`), for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import pytest
from cryptography.fernet import Fernet
from psycopg import sql
from sqlalchemy import Engine, UniqueConstraint, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from pbx_connector.store.tables import metadata, phonebook, runs
from tests.helpers import PHONEBOOK_HEADER, write_csv
from tests.servers.postgres import PostgresServer

SEED = 20_251_125
#: Rows of the first import: above the size at which a first import into SQLite drops
#: and rebuilds the lookup indexes (20,000), small enough for 20 kills in seconds.
ROWS = 22_000
#: Rows the re-sync adds to the ones it changes.
ADDED = 2_000
KILLS = 20
INTERRUPTS = 12
STARTUP_INTERRUPTS = 6
LANES = 2
RUN_TIMEOUT = 120.0
#: The exit code noted for a command that had to be killed after RUN_TIMEOUT.
HUNG = -999
PROFILE = "pb"
HEADER = ["id", *PHONEBOOK_HEADER]
#: Problems a failing campaign lists (its figures count them all).
SHOWN_PROBLEMS = 60
#: Runs `runs --json` lists: the snapshot's, the signalled one and the next one fit.
RUNS_SHOWN = 5
KILLED_RUN_STATUSES = frozenset({"interrupted", "ok", "failed", "aborted"})
FORK_SERVER = Path(__file__).with_name("crash_child.py")

Entry = tuple[str, str]
T = TypeVar("T")


# --- the stores ----------------------------------------------------------------------


class Stores(Protocol):
    """Named stores, and snapshots of them, on one backend."""

    name: str

    def new(self, label: str) -> str:
        """The URL of a fresh, empty store."""
        ...

    def snapshot(self, url: str, label: str) -> str:
        """Keep a copy of the store at `url`; returns a handle for `restore`."""
        ...

    def restore(self, snapshot: str, url: str) -> None:
        """Make the store at `url` an exact copy of the snapshot."""
        ...

    def close(self) -> None: ...


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    assert database
    return Path(database)


class SqliteStores:
    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root

    def new(self, label: str) -> str:
        return f"sqlite:///{self.root / f'{label}.db'}"

    def snapshot(self, url: str, label: str) -> str:
        target = self.root / f"{label}.snapshot"
        # The backup API copies what is committed, whatever still sits in the WAL.
        with (
            closing(sqlite3.connect(_sqlite_file(url))) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        return str(target)

    def restore(self, snapshot: str, url: str) -> None:
        path = _sqlite_file(url)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(snapshot, path)
        path.chmod(0o600)  # as an administrator keeps it: it holds password hashes

    def close(self) -> None:
        pass


class PostgresStores:
    name = "postgres"

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.prefix = f"pbxc_crash_{os.getpid()}"
        self.names: list[str] = []
        # CREATE DATABASE … TEMPLATE fails while another session uses the template.
        self._lock = threading.Lock()

    def _name(self, label: str) -> str:
        name = f"{self.prefix}_{label}"
        if name not in self.names:
            self.names.append(name)
        return name

    def _create(self, name: str, template: str) -> None:
        statement = sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        with self._lock:
            self.server.drop_database(name)
            with self.server.connect() as conn:
                conn.execute(statement)

    def new(self, label: str) -> str:
        name = self._name(label)
        self._create(name, "template0")
        return self.server.url(name)

    def snapshot(self, url: str, label: str) -> str:
        name = self._name(f"{label}_snapshot")
        source = make_url(url).database
        assert source
        self._create(name, source)
        return name

    def restore(self, snapshot: str, url: str) -> None:
        name = make_url(url).database
        assert name
        self._create(name, snapshot)

    def close(self) -> None:
        for name in self.names:
            self.server.drop_database(name)


# --- reading a store, without the application's code --------------------------------------


def _reading(url: str, read: Callable[[Engine], T]) -> T:
    # NullPool: no connection outlives a check (PostgreSQL copies or drops no database
    # that has one).
    engine = create_engine(url, poolclass=NullPool)
    try:
        return read(engine)
    finally:
        engine.dispose()


def read_entries(url: str) -> frozenset[Entry] | None:
    """(displayname, phone) of every phonebook entry; None when the table cannot be read."""

    def read(engine: Engine) -> frozenset[Entry] | None:
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(phonebook.c.displayname, phonebook.c.phone))
                return frozenset((r.displayname, r.phone) for r in rows)
        except SQLAlchemyError:
            return None

    return _reading(url, read)


def last_run_id(url: str) -> int:
    def read(engine: Engine) -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.max(runs.c.id))).scalar() or 0)

    return _reading(url, read)


def runs_since(url: str, after_id: int) -> int:
    """How many runs were recorded after `after_id`, straight from the table."""

    def read(engine: Engine) -> int:
        query = select(func.count()).select_from(runs).where(runs.c.id > after_id)
        try:
            with engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except SQLAlchemyError:
            return 0

    return _reading(url, read)


def schema_problems(url: str) -> list[str]:
    """What the store lacks of the tables, indexes and unique constraints of the schema."""

    def read(engine: Engine) -> list[str]:
        problems: list[str] = []
        with engine.connect() as conn:
            found = inspect(conn)
            tables = set(found.get_table_names())
            for table in metadata.sorted_tables:
                if table.name not in tables:
                    problems.append(f"table {table.name} is missing")
                    continue
                indexes = found.get_indexes(table.name)
                names = {ix["name"] for ix in indexes}
                uniques = {frozenset(ix["column_names"]) for ix in indexes if ix["unique"]}
                uniques |= {
                    frozenset(uc["column_names"]) for uc in found.get_unique_constraints(table.name)
                }
                problems += [
                    f"index {ix.name} is missing" for ix in table.indexes if ix.name not in names
                ]
                problems += [
                    f"unique constraint {table.name}({', '.join(c.columns.keys())}) is missing"
                    for c in table.constraints
                    if isinstance(c, UniqueConstraint)
                    and frozenset(c.columns.keys()) not in uniques
                ]
        return problems

    try:
        return _reading(url, read)
    except SQLAlchemyError as exc:
        return [f"the schema cannot be read: {exc}"]


# --- running commands -----------------------------------------------------------------------


class ForkServer:
    """`crash_child.py` in a process of its own: commands, their pids and exit codes."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(FORK_SERVER)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._input: IO[str] = self.proc.stdin
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, output: IO[str]) -> None:
        for line in output:
            self._answers.put(json.loads(line))

    def start(self, request: dict[str, Any]) -> int:
        self._input.write(json.dumps(request) + "\n")
        self._input.flush()
        return int(self._answers.get(timeout=RUN_TIMEOUT)["pid"])

    def exit_code(self, timeout: float) -> int | None:
        """The exit code of the command started last, or None if it runs on after
        `timeout` seconds."""
        try:
            return int(self._answers.get(timeout=timeout)["exit"])
        except queue.Empty:
            return None

    def close(self) -> None:
        self._input.close()
        self.proc.wait(timeout=RUN_TIMEOUT)


@dataclass
class Lane:
    """One worker: its own store, data directory, $TMPDIR and fork server."""

    index: int
    root: Path
    url: str
    env: dict[str, str]
    server: ForkServer
    #: Seconds an unkilled run of each scenario took last in this lane: the machine's
    #: load changes while a campaign runs.
    pace: dict[str, float] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def fresh_directories(self) -> None:
        for path in (self.home, self.tmp):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)

    def start(self, *args: str) -> int:
        # Files, not pipes: a process blocked on a full pipe would not be where the RNG
        # meant to stop it.
        return self.server.start(
            {
                "argv": ["--db", self.url, *args],
                "env": self.env,
                "cwd": str(self.root),
                "stdout": str(self.root / "stdout"),
                "stderr": str(self.root / "stderr"),
            }
        )

    def output(self) -> tuple[str, str]:
        """Standard output and error of the command started last."""
        return (
            (self.root / "stdout").read_text(errors="replace"),
            (self.root / "stderr").read_text(errors="replace"),
        )

    def stop(self, pid: int, sig: signal.Signals, delay: float) -> tuple[int, bool]:
        """Send `sig` after `delay` seconds unless the command ended before: its exit code
        and whether the signal went out."""
        code = self.server.exit_code(delay)
        if code is not None:
            return code, False
        with suppress(ProcessLookupError):  # it ended just now: its exit code is on its way
            os.kill(pid, sig)
        code = self.server.exit_code(RUN_TIMEOUT)
        if code is None:
            os.kill(pid, signal.SIGKILL)
            code = self.server.exit_code(RUN_TIMEOUT)
            assert code is not None, f"process {pid} outlived SIGKILL"
            return HUNG, True
        return code, True

    def run(self, *args: str) -> tuple[int, str, str, float]:
        """Run a command to its end: exit code, stdout, stderr, seconds."""
        began = time.monotonic()
        pid = self.start(*args)
        code = self.server.exit_code(RUN_TIMEOUT)
        if code is None:
            os.kill(pid, signal.SIGKILL)
            self.server.exit_code(RUN_TIMEOUT)
            code = HUNG
        elapsed = time.monotonic() - began
        return code, *self.output(), elapsed

    def must(self, *args: str) -> str:
        code, out, err, _ = self.run(*args)
        assert code == 0, f"pbx-connector {' '.join(args)}: exit {code}\n{out}\n{err}"
        return out

    def runs(self) -> list[dict[str, Any]] | None:
        """`pbx-connector runs --json`: the runs as the command line shows them (None
        when the command fails)."""
        code, out, _, _ = self.run("runs", "--json", "--limit", str(RUNS_SHOWN))
        if code != 0:
            return None
        data = json.loads(out)
        items: list[dict[str, Any]] = data["items"] if isinstance(data, dict) else data
        return items

    def leftover_spools(self) -> list[str]:
        found = [p.name for p in self.home.rglob("*.spool")]
        return found + [p.name for p in self.tmp.glob("pbx-connector-plan-*")]


# --- the world: data, snapshots, calibration --------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    snapshot: str
    before: frozenset[Entry]
    after: frozenset[Entry]
    #: Seconds of an unkilled run (the slowest lane, with all lanes busy).
    duration: float


@dataclass
class World:
    stores: Stores
    lanes: list[Lane]
    scenarios: dict[str, Scenario] = field(default_factory=dict)

    def in_lanes(self, work: Callable[[Lane], T]) -> list[T]:
        with ThreadPoolExecutor(len(self.lanes)) as pool:
            return list(pool.map(work, self.lanes))


def _row(i: int, name: str, phone: str) -> list[str]:
    values = {
        "id": str(i),
        "displayname": name,
        "phone": phone,
        "givenname": f"Given{i}",
        "surname": f"Sur{i}",
        "organisation": f"Org {i % 97}",
        "email": f"p{i}@example.org",
        "mobile": f"+49 170 {3_000_000 + i}" if i % 4 == 0 else "",
    }
    return [values.get(h, "") for h in HEADER]


def _write_data(root: Path) -> dict[str, tuple[Path, frozenset[Entry]]]:
    """The first import, a re-sync that renames a third of the entries, renumbers a
    seventh and adds some, and a mirror file without 40% of the entries."""
    first = [_row(i, f"Person {i:05d}", f"+49 991 {1_000_000 + i}") for i in range(ROWS)]
    changed = [
        _row(
            i,
            f"Person {i:05d}" + (" (moved)" if i % 3 == 0 else ""),
            f"+49 89 {2_000_000 + i}" if i % 7 == 0 else f"+49 991 {1_000_000 + i}",
        )
        for i in range(ROWS + ADDED)
    ]
    kept = [r for i, r in enumerate(first) if i % 5 not in (0, 1)]
    return {
        name: (write_csv(root / f"{name}.csv", HEADER, rows), frozenset((r[1], r[2]) for r in rows))
        for name, rows in (("first", first), ("changed", changed), ("kept", kept))
    }


def _calibrate(
    world: World, name: str, snapshot: str, before: frozenset[Entry], after: frozenset[Entry]
) -> None:
    """Unkilled runs in every lane at once (under the load of a campaign): how long a run
    takes, and that it yields the after state."""

    def one(lane: Lane) -> float:
        lane.fresh_directories()
        world.stores.restore(snapshot, lane.url)
        assert read_entries(lane.url) == before
        code, out, err, elapsed = lane.run("sync", PROFILE)
        assert code == 0, f"unkilled {name}: exit {code}\n{out}\n{err}"
        assert read_entries(lane.url) == after, f"unkilled {name}: unexpected records"
        return elapsed

    duration = max(world.in_lanes(one))
    world.scenarios[name] = Scenario(name, snapshot, before, after, duration)


def _base_env() -> dict[str, str]:
    env = {**os.environ, "PBX_CONNECTOR_SECRET_KEY": Fernet.generate_key().decode()}
    env.pop("PBX_CONNECTOR_DB", None)
    return env


def _lane(index: int, root: Path, stores: Stores, env: dict[str, str]) -> Lane:
    path = root / f"lane{index}"
    path.mkdir()
    lane_env = {**env, "PBX_CONNECTOR_HOME": str(path / "home"), "TMPDIR": str(path / "tmp")}
    return Lane(index, path, stores.new(f"lane{index}"), lane_env, ForkServer(env, path / "log"))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"crash-{request.param}")
    stores: Stores
    if request.param == "sqlite":
        stores = SqliteStores(root)
    else:
        stores = PostgresStores(request.getfixturevalue("postgres_server"))
    env = _base_env()
    lanes: list[Lane] = []
    try:
        lanes += [_lane(i, root, stores, env) for i in range(LANES + 1)]
        setup = lanes[-1]  # builds the snapshots; takes no part in the campaigns
        world = World(stores, lanes[:-1])
        data = _write_data(root)
        first_csv, first = data["first"]
        changed_csv, changed = data["changed"]
        kept_csv, kept = data["kept"]
        setup.fresh_directories()
        setup.must(
            *("profile", "create", PROFILE, "--template", "csv-phonebook"),
            *("--set", f"path={first_csv}", "--set", "key=id", "--set", "max_delete=100%"),
        )
        empty = stores.snapshot(setup.url, "first")
        setup.must("sync", PROFILE)
        assert read_entries(setup.url) == first
        setup.must("profile", "set", PROFILE, "mode=update", f"path={changed_csv}")
        resync = stores.snapshot(setup.url, "resync")
        setup.must("profile", "set", PROFILE, "mode=mirror", f"path={kept_csv}")
        mirror = stores.snapshot(setup.url, "mirror")
        _calibrate(world, "first import", empty, frozenset(), first)
        _calibrate(world, "re-sync with updates", resync, first, changed)
        _calibrate(world, "mirror delete", mirror, first, kept)
        yield world
    finally:
        for lane in lanes:
            lane.server.close()
        stores.close()


# --- one signal, and what it left ------------------------------------------------------


@dataclass
class Outcome:
    iteration: int
    delay: float
    exit_code: int
    #: The signal reached the process (else the command had ended already).
    signalled: bool
    #: "before", "after" or "partial".
    state: str
    #: Runs of the signalled command that `runs --json` showed as running right after
    #: the signal, before any other run (its process is gone).
    running_after_signal: int = 0
    schema_broken: bool = False
    next_failed: bool = False
    next_blocked: bool = False
    stuck: int = 0
    #: Statuses `runs --json` shows for the signalled command's runs after the next sync.
    statuses: list[str] = field(default_factory=list)
    spools: int = 0
    bad_exit: bool = False
    traceback: bool = False
    problems: list[str] = field(default_factory=list)


def interrupt_output_problems(code: int, stderr: str, finished: bool) -> list[str]:
    """Ctrl-C: exit 0 only for a command that finished; one line on stderr (besides
    warnings), no traceback."""
    lines = [
        line for line in stderr.splitlines() if line.strip() and not line.startswith("warning:")
    ]
    if code == 0:
        return [] if finished else ["exit 0, but the run did not finish"]
    if code == -signal.SIGINT and not lines:
        return []  # ended by the default action: before or after Python handles SIGINT
    if lines == ["interrupted"] or (len(lines) == 1 and lines[0].startswith("error:")):
        return []
    if not lines:
        return [f"exit {code} and nothing on stderr (expected 'interrupted' or an error line)"]
    tail = " | ".join(lines[-3:])[:300]
    return [f"exit {code}, stderr: {tail}"]


def one_signal(
    world: World, lane: Lane, scenario: Scenario, sig: signal.Signals, iteration: int
) -> Outcome:
    stores = world.stores
    # The seed fixes where in a run the signal lands, as a share of its duration.
    rng = random.Random(f"{SEED}/{stores.name}/{scenario.name}/{sig.name}/{iteration}")
    delay = rng.random() * lane.pace.get(scenario.name, scenario.duration)
    lane.fresh_directories()
    stores.restore(scenario.snapshot, lane.url)
    before_id = last_run_id(lane.url)

    code, signalled = lane.stop(lane.start("sync", PROFILE), sig, delay)
    _, stderr = lane.output()
    entries = read_entries(lane.url)
    state = (
        "before"
        if entries == scenario.before
        else "after"
        if entries == scenario.after
        else "partial"
    )
    outcome = Outcome(iteration, delay, code, signalled, state)
    where = f"{sig.name} #{iteration} after {delay:.2f}s (exit {code})"
    if code == HUNG:
        outcome.problems.append(f"{where}: the command did not end within {RUN_TIMEOUT:.0f}s")
    if state == "partial":
        size = "unreadable" if entries is None else f"{len(entries)} entries"
        outcome.problems.append(f"{where}: the store holds a partial state ({size})")
    if code == 0 and state != "after":
        outcome.problems.append(f"{where}: exit 0, but the store is in the {state} state")
    broken = schema_problems(lane.url)
    if broken:
        outcome.schema_broken = True
        outcome.problems.append(f"{where}: schema after the signal: {'; '.join(broken)}")
    if sig == signal.SIGINT:
        outcome.traceback = "Traceback" in stderr
        bad = interrupt_output_problems(code, stderr, state == "after")
        outcome.bad_exit = bool(bad)
        outcome.problems += [f"{where}: {b}" for b in bad]
    shown = lane.runs()
    if shown is None:
        outcome.problems.append(f"{where}: runs --json failed after the signal")
    for run in shown or []:
        if run["id"] > before_id and run["status"] == "running":
            outcome.running_after_signal += 1
            outcome.problems.append(
                f"{where}: run {run['id']} is shown as running, but its process is gone"
            )
    elapsed = _check_next_run(lane, scenario, outcome, before_id, where)
    if state == "before" and not outcome.next_failed:
        lane.pace[scenario.name] = elapsed  # the next sync did the whole work unkilled
    return outcome


def _run_id(stdout: str) -> int | None:
    """The id in a run's JSON report (printed for a failed run too)."""
    try:
        return int(json.loads(stdout)["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _run_message(stdout: str, stderr: str) -> str:
    """Why a run failed: the message of its JSON report, else its standard error."""
    try:
        return str(json.loads(stdout)["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return " | ".join(line for line in stderr.splitlines() if line.strip())[-300:]


def _check_next_run(
    lane: Lane, scenario: Scenario, outcome: Outcome, before_id: int, where: str
) -> float:
    """Checks 3 to 6, after the next sync; returns the seconds the next sync took."""
    code, out, err, elapsed = lane.run("sync", PROFILE, "--json")
    next_id = _run_id(out)
    if code != 0:
        outcome.next_failed = True
        message = _run_message(out, err)
        outcome.next_blocked = "already running" in message
        outcome.problems.append(f"{where}: the next sync exited {code}: {message}")
    else:
        entries = read_entries(lane.url)
        if entries != scenario.after:
            outcome.next_failed = True
            size = "unreadable" if entries is None else f"{len(entries)} entries"
            outcome.problems.append(
                f"{where}: the next sync did not yield the after state ({size})"
            )
        broken = schema_problems(lane.url)
        if broken and not outcome.schema_broken:
            outcome.schema_broken = True
            outcome.problems.append(f"{where}: schema after the next sync: {'; '.join(broken)}")

    spools = lane.leftover_spools()
    if spools:
        outcome.spools = len(spools)
        outcome.problems.append(f"{where}: spool files left after the next sync: {spools}")

    shown = lane.runs()
    if shown is None:
        outcome.problems.append(f"{where}: runs --json failed after the next sync")
    for run in shown or []:
        run_id, status = run["id"], run["status"]
        if run_id <= before_id:
            continue
        if run_id != next_id:
            outcome.statuses.append(status)
        if status == "running":
            outcome.stuck += 1
            outcome.problems.append(f"{where}: run {run_id} is still shown as running")
        elif run_id == next_id:
            continue
        elif status not in KILLED_RUN_STATUSES:
            outcome.problems.append(f"{where}: the signalled run {run_id} is {status!r}")
        elif status == "ok" and outcome.state != "after":
            outcome.problems.append(
                f"{where}: the signalled run {run_id} is 'ok', but its changes are not there"
            )
    return elapsed


# --- campaigns ----------------------------------------------------------------------------


def campaign(
    world: World, scenarios: Sequence[Scenario], sig: signal.Signals, count: int
) -> list[Outcome]:
    """`count` signals over the lanes; signal i goes to scenario i modulo their number."""
    lanes = len(world.lanes)

    def work(lane: Lane) -> list[Outcome]:
        return [
            one_signal(world, lane, scenarios[i % len(scenarios)], sig, i)
            for i in range(lane.index, count, lanes)
        ]

    outcomes = [o for batch in world.in_lanes(work) for o in batch]
    return sorted(outcomes, key=lambda o: o.iteration)


def figures(
    title: str, scenarios: Sequence[Scenario], outcomes: list[Outcome], seconds: float
) -> str:
    def count(test: Callable[[Outcome], object]) -> int:
        return sum(1 for o in outcomes if test(o))

    states = Counter(o.state for o in outcomes)
    statuses = Counter(status for o in outcomes for status in o.statuses)
    lines = [
        f"== {title}: {len(outcomes)} signals in {seconds:.0f} s",
        *(f"   {s.name}: an unkilled run takes {s.duration:.2f} s" for s in scenarios),
        f"   landed during the run {count(lambda o: o.signalled)}, "
        f"after the command had ended {count(lambda o: not o.signalled)}",
        "   store after the signal: "
        + ", ".join(f"{k} {states[k]}" for k in ("before", "after", "partial")),
        f"   schema broken {count(lambda o: o.schema_broken)}, "
        f"next sync failed {count(lambda o: o.next_failed)} "
        f"(blocked by the lock {count(lambda o: o.next_blocked)}), "
        f"spool files left {count(lambda o: o.spools)}",
        f"   runs shown as running right after the signal "
        f"{sum(o.running_after_signal for o in outcomes)}, "
        f"still after the next sync {sum(o.stuck for o in outcomes)}",
        "   the signalled run after the next sync: "
        + (", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "none recorded"),
    ]
    if any(o.bad_exit for o in outcomes):
        lines.append(
            f"   bad exit code or stderr {count(lambda o: o.bad_exit)}, "
            f"of which tracebacks {count(lambda o: o.traceback)}"
        )
    return "\n".join(lines)


def run_campaign(
    world: World, title: str, scenarios: Sequence[Scenario], sig: signal.Signals, count: int
) -> None:
    began = time.monotonic()
    outcomes = campaign(world, scenarios, sig, count)
    title = f"{title} / {world.stores.name}"
    print("\n" + figures(title, scenarios, outcomes, time.monotonic() - began))
    problems = [p for o in outcomes for p in o.problems]
    if problems:
        pytest.fail(
            f"{len(problems)} problems:\n" + "\n".join(problems[:SHOWN_PROBLEMS]), pytrace=False
        )


@pytest.mark.parametrize("scenario", ["first import", "re-sync with updates", "mirror delete"])
def test_kill_9_at_random_points(world: World, scenario: str) -> None:
    run_campaign(world, f"kill -9 / {scenario}", [world.scenarios[scenario]], signal.SIGKILL, KILLS)


def test_ctrl_c_at_random_points(world: World) -> None:
    run_campaign(world, "Ctrl-C", list(world.scenarios.values()), signal.SIGINT, INTERRUPTS)


def test_ctrl_c_during_start_up(tmp_path: Path) -> None:
    """The installed console script, interrupted while the interpreter starts and imports:
    no traceback either."""
    script = Path(sys.executable).with_name("pbx-connector")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pbx_connector.cli"]
    env = {**_base_env(), "PBX_CONNECTOR_HOME": str(tmp_path / "home")}
    command += ["--db", f"sqlite:///{tmp_path / 'store.db'}", "runs"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    began = time.monotonic()
    assert start().wait(timeout=RUN_TIMEOUT) == 0
    duration = time.monotonic() - began
    rng = random.Random(f"{SEED}/start-up")
    problems: list[str] = []
    tracebacks = 0
    for i in range(STARTUP_INTERRUPTS):
        delay = rng.uniform(0.0, duration)
        proc = start()
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        tracebacks += "Traceback" in stderr
        problems += [
            f"SIGINT #{i} after {delay:.2f}s: {p}"
            for p in interrupt_output_problems(proc.returncode, stderr, finished=True)
        ]
    print(
        f"\n== Ctrl-C during start-up: {STARTUP_INTERRUPTS} signals within {duration:.2f} s, "
        f"bad exit code or stderr {len(problems)}, of which tracebacks {tracebacks}"
    )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
