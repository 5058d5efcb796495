"""Scheduled LDAP re-sync benchmark: an unchanged ``ldap-users`` re-sync run by the
scheduler of ``pbx-connector serve`` (in-process, no process start) against the limit.

Run from the project root::

    .venv/bin/python -m bench.scheduled_sync [--users 20000] [--runs 3]

A private slapd (``tests.servers.slapd.start_slapd``) is loaded with ``--users``
inetOrgPerson entries, exactly as ``bench/ldap_sync.py`` does, and the ``ldap-users``
profile gets the same settings (StartTLS verified against the test CA, the size-limited
reader, pages of 500). Then:

* ``limit``     – ``ldapsearch -LLL -x -ZZ -E pr=500/noprompt`` with the ``ldap-users``
                  filter and exactly the attributes the profile requests, output to
                  /dev/null, timed with ``time.perf_counter`` around ``subprocess.run``
                  (median of 3);
* first sync    – ``pbx-connector --db DB sync NAME --json`` on a fresh database (setup,
                  reported for information);
* CLI re-sync   – the same command again, unchanged (information: the wall time includes
                  the process start; the run record's own duration is shown beside it);
* ``scheduled`` – the profile is scheduled with the 6-field cron ``*/20 * * * * *``
                  (every 20 seconds) and ``pbx-connector serve`` is started on a free port.
                  The runs with trigger ``schedule`` whose slot comes after serve answers
                  are awaited until ``--runs`` of them are unchanged re-syncs (status ok,
                  nothing created, updated or deleted). Each one's duration is its run
                  record's ``finished - started``: from when the executor thread marked the
                  run running to when it recorded the result.

The run records are read from the SQLite store directly (read-only), because
``runs --json`` gives ``started`` and ``finished`` to the second only; at the end
``runs NAME --json`` is run once and its ids, triggers, statuses and counts are checked
against what was read. Target: the median of the scheduled re-syncs at most 1.5 × the
limit (the max is shown too). Nothing is asserted.

With ``--profile``, 3 more unchanged re-syncs of the same profile then run in one fresh
process (``run_profile`` through the library, after one untimed run) under cProfile, and
the top functions by own and by cumulative time are printed: where a re-sync's time goes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

# `python -m bench.scheduled_sync` from the project root puts the root on sys.path, which
# makes `tests` (the throwaway slapd) importable; this covers being started from elsewhere.
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.servers.slapd import (  # noqa: E402
    DEFAULT_SUFFIX,
    SlapdServer,
    directory_tree,
    start_slapd,
)

from bench.ldap_sync import (  # noqa: E402
    FILTER,
    PAGE_SIZE,
    PBX,
    PROFILE,
    REPETITIONS,
    RESYNC_TARGET,
    TEMPLATE,
    Env,
    Result,
    count_limit_entries,
    create_profile,
    load,
    median_of,
    pbx_sync,
    print_machine,
    print_table,
    profile_attributes,
    run,
    time_limit,
)
from pbx_connector.templates import get_template  # noqa: E402

#: Every 20 seconds: six fields, seconds first.
CRON: Final = "*/20 * * * * *"
INTERVAL_SECONDS: Final = 20.0
HOST: Final = "127.0.0.1"
SERVE_START_TIMEOUT: Final = 60.0
SERVE_STOP_TIMEOUT: Final = 30.0
POLL_SECONDS: Final = 1.0
#: Beyond the slots needed: a run that is not an unchanged re-sync, a slow one.
EXTRA_WAIT_SECONDS: Final = 120.0


# --- serve ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    port: int
    log_file: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError as exc:
            return f"(could not read {self.log_file}: {exc})"
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down, the executor finishes a run in progress), SIGKILL
        if it has not ended after SERVE_STOP_TIMEOUT."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=SERVE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=SERVE_STOP_TIMEOUT)


def start_serve(env: Env, home: Path, db: Path) -> Serve:
    port = free_port()
    cmd = [PBX, "--db", str(db), "serve", "--host", HOST, "--port", str(port)]
    # Exits with this process if it is killed before the finally clause runs.
    if setpriv := shutil.which("setpriv"):
        cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
    log_file = env.work / "serve.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            cmd, env=env.pbx_env(home), stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    return Serve(process, port, log_file)


def wait_until_listening(serve: Serve) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline:
        if serve.process.poll() is not None:
            raise RuntimeError(
                f"serve exited with code {serve.process.returncode}; log:\n{serve.tail()}"
            )
        try:
            with socket.create_connection((HOST, serve.port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"serve did not listen on port {serve.port} within {SERVE_START_TIMEOUT:.0f} s;"
        f" log:\n{serve.tail()}"
    )


# --- run records ---------------------------------------------------------------------


@dataclass
class RunRecord:
    id: int
    trigger: str
    status: str
    message: str
    counts: dict[str, Any]
    started: datetime
    finished: datetime | None
    scheduled_for: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()

    def unchanged_resync(self) -> bool:
        c = self.counts
        return (
            self.status == "ok"
            and c.get("created") == 0
            and c.get("updated") == 0
            and c.get("deleted") == 0
            and bool(c.get("unchanged"))
        )


def _utc(text: str | None) -> datetime | None:
    """A timestamp as SQLite holds it (naive UTC, microseconds)."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def read_runs(db: Path) -> list[RunRecord]:
    """The profile's runs, oldest first, from the store itself (read-only): the CLI's
    JSON has whole seconds only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)
    try:
        rows = conn.execute(
            "SELECT id, trigger, status, message, counts, started_at, finished_at,"
            " scheduled_for FROM runs WHERE profile_name = ? ORDER BY id",
            (PROFILE,),
        ).fetchall()
    finally:
        conn.close()
    records = []
    for rid, trigger, status, message, counts, started, finished, slot in rows:
        started_at = _utc(started)
        if started_at is None:  # a NOT NULL column
            raise RuntimeError(f"run {rid} has no start time")
        records.append(
            RunRecord(
                id=rid,
                trigger=trigger,
                status=status,
                message=message,
                counts=json.loads(counts) if counts else {},
                started=started_at,
                finished=_utc(finished),
                scheduled_for=_utc(slot),
            )
        )
    return records


def counted(records: list[RunRecord], ready: datetime) -> list[RunRecord]:
    """Finished scheduled runs for slots after serve answered that are unchanged re-syncs."""
    return [
        r
        for r in records
        if r.trigger == "schedule"
        and r.finished is not None
        and r.scheduled_for is not None
        and r.scheduled_for > ready
        and r.unchanged_resync()
    ]


def wait_for_runs(serve: Serve, db: Path, ready: datetime, wanted: int) -> list[RunRecord]:
    """Poll the store (a tiny read-only query every POLL_SECONDS) until `wanted` scheduled
    unchanged re-syncs have finished; returns every run record of the profile."""
    budget = (wanted + 1) * INTERVAL_SECONDS + EXTRA_WAIT_SECONDS
    deadline = time.monotonic() + budget
    while True:
        records = read_runs(db)
        if len(counted(records, ready)) >= wanted:
            return records
        if serve.process.poll() is not None:
            raise RuntimeError(
                f"serve exited with code {serve.process.returncode}; log:\n{serve.tail()}"
            )
        if time.monotonic() > deadline:
            print(f"  NOTE: gave up waiting after {budget:.0f} s")
            return records
        time.sleep(POLL_SECONDS)


def check_against_cli(env: Env, home: Path, db: Path, records: list[RunRecord]) -> None:
    """`runs NAME --json` once: the same runs as read from the store?"""
    out = run(
        [PBX, "--db", str(db), "runs", PROFILE, "--json", "--limit", "1000"], env.pbx_env(home)
    )[1]
    listed = {r["id"]: r for r in json.loads(out)}
    wrong = []
    for rec in records:
        cli = listed.get(rec.id)
        if cli is None:
            wrong.append(f"run {rec.id} not listed")
            continue
        for field, ours in (
            ("trigger", rec.trigger),
            ("status", rec.status),
            ("counts", rec.counts),
        ):
            if cli.get(field) != ours:
                wrong.append(f"run {rec.id} {field}: {cli.get(field)!r} != {ours!r}")
        # The CLI truncates both to whole seconds: less than 1 s apart from the store's.
        cli_seconds, seconds = _whole_seconds(cli), rec.seconds
        if cli_seconds is not None and seconds is not None and abs(cli_seconds - seconds) >= 1:
            wrong.append(f"run {rec.id} finished - started: {cli_seconds} s vs {seconds} s")
    verdict = "as expected" if not wrong else "UNEXPECTED: " + "; ".join(wrong)
    print(
        f"runs {PROFILE} --json lists {len(listed)} run(s); ids, triggers, statuses, counts"
        f" and whole-second durations agree with the store: {verdict}"
    )


def _whole_seconds(cli: dict[str, Any]) -> float | None:
    started, finished = cli.get("started"), cli.get("finished")
    if not started or not finished:
        return None
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


# --- reporting -----------------------------------------------------------------------


def _shown(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%H:%M:%S.%f")[:-3]


def print_runs(records: list[RunRecord], used: list[RunRecord]) -> None:
    used_ids = {r.id for r in used}
    print("run records (UTC; * = counted: scheduled, slot after serve answered, unchanged):")
    for r in records:
        seconds = "-" if r.seconds is None else f"{r.seconds:.3f} s"
        mark = "*" if r.id in used_ids else " "
        print(
            f" {mark} run {r.id:<3} {r.trigger:<9} {r.status:<8} slot {_time(r.scheduled_for)}"
            f"  started {_time(r.started)}  finished {_time(r.finished)}  {seconds}"
        )
        print(f"      counts: {_shown(r.counts)}")
        if r.status not in ("ok",):
            print(f"      message: {r.message!r}")


def print_invalid(report: dict[str, Any]) -> None:
    errors = report.get("errors", [])
    if not errors:
        return
    print(
        f"first sync: rows not created ({len(errors)} listed; the hand-made test users of"
        " directory_tree include uids with filter/DN metacharacters on purpose):"
    )
    for e in errors:
        print(f"  {e.get('kind')}: {e.get('ref')}: {e.get('message')}")


# --- main ----------------------------------------------------------------------------


def benchmark(env: Env, users: int, wanted: int, profile: bool = False) -> None:
    print(f"slapd: {env.server.uri} (StartTLS), {env.server.entry_count:,} entries loaded")
    print(f"search: base {env.base_dn}, filter {FILTER}, pages of {PAGE_SIZE}")
    defaults = {s.name: s.default for s in get_template(TEMPLATE).settings}
    if defaults.get("filter") != FILTER or defaults.get("page_size") != str(PAGE_SIZE):
        print(
            f"  NOTE: the {TEMPLATE} defaults differ: {defaults.get('filter')!r}, "
            f"page_size {defaults.get('page_size')!r}"
        )
    print(f"attributes (ldap-users default variables + key): {' '.join(env.attributes)}")
    found = count_limit_entries(env)
    verdict = "as expected" if found == users else "UNEXPECTED"
    print(f"(a) ldapsearch returned {found:,} entries (expected {users:,}): {verdict}")
    limit = median_of(lambda: time_limit(env))

    home = env.work / "pbx"
    home.mkdir()
    db = home / "pbx.db"
    create_profile(env, home, db)
    first, first_report = pbx_sync(env, home, db)
    print(
        f"first sync (CLI, setup, not measured): {first:.2f} s,"
        f" status {first_report.get('status')}, counts: {_shown(first_report['counts'])}"
    )
    cli_wall, cli_report = pbx_sync(env, home, db)
    print(
        f"CLI re-sync (information): {cli_wall:.2f} s, status {cli_report.get('status')},"
        f" counts: {_shown(cli_report['counts'])}"
    )
    cli_record = next((r for r in read_runs(db) if r.id == cli_report.get("id")), None)

    schedule = [PBX, "--db", str(db), "profile", "schedule", PROFILE, CRON]
    run(schedule, env.pbx_env(home))
    print(f"schedule: {CRON!r} (every {INTERVAL_SECONDS:.0f} s)")
    start = time.perf_counter()
    serve = start_serve(env, home, db)
    try:
        wait_until_listening(serve)
        ready = datetime.now(UTC)
        print(
            f"serve: http://{HOST}:{serve.port}/ listening {time.perf_counter() - start:.1f} s"
            f" after start (pid {serve.process.pid}); waiting for {wanted} scheduled"
            " unchanged re-sync(s)"
        )
        records = wait_for_runs(serve, db, ready, wanted)
    finally:
        serve.stop()
    # uvicorn ends with a non-zero code on SIGTERM; its log says whether it shut down.
    print(f"serve stopped (exit code {serve.process.returncode} after SIGTERM)\n")

    used = counted(records, ready)[:wanted]
    durations = [r.seconds for r in used if r.seconds is not None]
    results = [Result("(a) limit: ldapsearch -ZZ -E pr=500 > null", limit)]
    if durations:
        results += [
            Result(
                "(b) scheduled re-sync in serve, median",
                statistics.median(durations),
                RESYNC_TARGET,
            ),
            Result("(b) scheduled re-sync in serve, max", max(durations)),
        ]
    results.append(Result("(c) CLI re-sync, wall (process start incl.)", cli_wall))
    if cli_record is not None and cli_record.seconds is not None:
        results.append(Result("(c) CLI re-sync, its run record", cli_record.seconds))
    print(f"(a): median of {REPETITIONS} runs, every run a subprocess")
    print(
        f"(b): {len(durations)} scheduled run(s) in one serve process, each its run record's"
        " finished - started"
    )
    print("(c): one CLI re-sync before serve started (information only)\n")
    print_table(results, limit)
    print()
    if len(durations) < wanted:
        print(f"NOTE: only {len(durations)} of {wanted} scheduled unchanged re-syncs finished")
    expected = first_report["counts"].get("created")
    wrong = [r.id for r in used if r.counts.get("unchanged") != expected]
    verdict = "as expected" if not wrong else f"UNEXPECTED in run(s) {wrong}"
    print(f"(b) runs: {', '.join(f'{d:.3f} s' for d in durations) or 'none'}")
    print(f"(b) expected unchanged = first sync's created = {expected}: {verdict}")
    print_runs(records, used)
    check_against_cli(env, home, db, records)
    print_invalid(first_report)
    errors = [line for line in serve.tail(200).splitlines() if "ERROR" in line]
    if errors:
        print("serve log errors:")
        for line in errors:
            print(f"  {line}")
    if profile:
        profile_resyncs(env, home, db)


#: Run by `profile_resyncs` in a fresh process: argv is the store's URL and the profile.
PROFILE_SCRIPT: Final = """
import cProfile, pstats, sys
from pbx_connector.store.db import open_store_engine
from pbx_connector.sync.runner import run_profile
engine = open_store_engine(sys.argv[1])
run_profile(engine, sys.argv[2])
profiler = cProfile.Profile()
profiler.enable()
for _ in range(3):
    report = run_profile(engine, sys.argv[2])
profiler.disable()
print("counts of the last profiled run:", report["counts"])
stats = pstats.Stats(profiler, stream=sys.stdout)
stats.sort_stats("tottime").print_stats(25)
stats.sort_stats("cumulative").print_stats(25)
"""


def profile_resyncs(env: Env, home: Path, db: Path) -> None:
    """3 unchanged re-syncs in one process under cProfile (after one untimed run)."""
    print("\nprofile: 3 unchanged re-syncs with run_profile in one process (cProfile)")
    out = run([sys.executable, "-c", PROFILE_SCRIPT, f"sqlite:///{db}", PROFILE], env.pbx_env(home))
    print(out[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--users", type=int, default=20_000, help="inetOrgPerson entries in ou=people"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="scheduled unchanged re-syncs to wait for"
    )
    parser.add_argument(
        "--profile", action="store_true", help="then profile 3 re-syncs in one process"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Progress shows while the runs are awaited, and in order with a traceback.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-scheduled-"))
    base_env = {k: v for k, v in os.environ.items() if k != "PBX_CONNECTOR_DB"}
    server: SlapdServer | None = None
    try:
        print_machine()
        print()
        start = time.perf_counter()
        server = start_slapd(
            work / "slapd",
            suffix=DEFAULT_SUFFIX,
            entries=lambda suffix: directory_tree(suffix, users=args.users, contacts=0),
        )
        print(f"slapd loaded and started in {time.perf_counter() - start:.1f} s")
        env = Env(work, server, base_env, profile_attributes())
        benchmark(env, args.users, args.runs, args.profile)
        print(f"load after: {load()}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
