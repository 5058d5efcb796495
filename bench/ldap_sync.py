"""LDAP user sync benchmark: pbx-connector's ``ldap-users`` sync against the limit.

Run from the project root::

    .venv/bin/python -m bench.ldap_sync [--users 20000]

A private slapd (``tests.servers.slapd.start_slapd``) is loaded with ``--users``
inetOrgPerson entries below ``ou=people`` (``directory_tree(..., contacts=0)``) in a
temporary directory and stopped at the end. Every measured command runs as its own
subprocess and is timed with ``time.perf_counter`` around ``subprocess.run``:

* ``limit``  – ``ldapsearch -LLL -x -ZZ`` (StartTLS, verified against the test CA) bound as
               the size-limited reader, paged with ``-E pr=500/noprompt``, the
               ``ldap-users`` filter and exactly the attributes the profile requests,
               output to /dev/null;
* ``first``  – ``pbx-connector --db DB sync NAME --json`` on a fresh database (the
               ``ldap-users`` profile is created beforehand, untimed);
* ``resync`` – the same command again, the directory unchanged.

Targets: ``first`` at most 3 × limit, ``resync`` at most 1.5 × limit. The limit is the
median of 3 runs; ``first`` and ``resync`` the medians of 3 cycles, each on a fresh
database (1 cycle if the first one takes longer than 5 minutes). The numbers and the
sync counts are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# `python -m bench.ldap_sync` from the project root puts the root on sys.path, which makes
# `tests` (the throwaway slapd) importable; this covers being started from elsewhere.
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import ldap  # noqa: E402
from tests.servers.slapd import (  # noqa: E402
    DEFAULT_SUFFIX,
    SlapdServer,
    directory_tree,
    find_binary,
    start_slapd,
)

from bench.csv_import import cpu_model  # noqa: E402
from pbx_connector.mapping import RowMapper  # noqa: E402
from pbx_connector.templates import get_template  # noqa: E402

TEMPLATE: Final = "ldap-users"
PROFILE: Final = "bench"
# The ldap-users template's filter (docs/directories.md); the same for ldapsearch.
FILTER: Final = "(&(objectClass=inetOrgPerson)(uid=*))"
PAGE_SIZE: Final = 500
REPETITIONS: Final = 3
# A cycle of first sync + re-sync taking longer than this is not repeated.
CYCLE_BUDGET_SECONDS: Final = 300.0
FIRST_TARGET: Final = 3.0
RESYNC_TARGET: Final = 1.5

VENV_BIN: Final = Path(sys.executable).parent
PBX: Final = str(VENV_BIN / "pbx-connector")


def profile_attributes() -> list[str]:
    """What the ldap-users profile requests: the fields its default variables use (the
    template has no pre-filter) plus the key, the way sources/ldap.py builds the list."""
    template = get_template(TEMPLATE)
    fields = sorted(RowMapper.compile(template.variables).fields_used())
    keys = [k.strip() for k in template.key.split(",") if k.strip()]
    return [*fields, *(k for k in keys if k not in fields)]


# --- running and timing --------------------------------------------------------------


@dataclass
class Env:
    work: Path
    server: SlapdServer
    base_env: dict[str, str]
    attributes: list[str]

    @property
    def base_dn(self) -> str:
        return f"ou=people,{self.server.suffix}"

    def ldap_env(self) -> dict[str, str]:
        return {**self.base_env, "LDAPTLS_CACERT": str(self.server.ca_file)}

    def pbx_env(self, home: Path) -> dict[str, str]:
        return {**self.base_env, "PBX_CONNECTOR_HOME": str(home)}


def run(
    cmd: Sequence[str], env: dict[str, str] | None = None, *, discard: bool = False
) -> tuple[float, str]:
    """Run `cmd`, fail loudly on a non-zero exit; return (wall seconds, stdout).
    With `discard`, stdout goes to /dev/null (and "" is returned)."""
    stdout = subprocess.DEVNULL if discard else subprocess.PIPE
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = f"{(proc.stdout or '')[-2000:]}\n{proc.stderr[-2000:]}"
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n{tail}")
    return elapsed, proc.stdout or ""


def fresh_dir(env: Env, name: str) -> Path:
    path = env.work / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def ldapsearch_cmd(env: Env) -> list[str]:
    s = env.server
    return [
        "ldapsearch", "-LLL", "-x", "-H", s.uri, "-ZZ",
        "-D", s.reader_dn, "-w", s.reader_password,
        "-b", env.base_dn, "-E", f"pr={PAGE_SIZE}/noprompt",
        FILTER, *env.attributes,
    ]  # fmt: skip


def time_limit(env: Env) -> float:
    return run(ldapsearch_cmd(env), env.ldap_env(), discard=True)[0]


def count_limit_entries(env: Env) -> int:
    """Entries ldapsearch returns (one untimed run): the "dn:" / "dn::" lines."""
    out = run(ldapsearch_cmd(env), env.ldap_env())[1]
    return sum(1 for line in out.splitlines() if line.startswith("dn:"))


def create_profile(env: Env, home: Path, db: Path) -> None:
    s = env.server
    cmd = [PBX, "--db", str(db), "profile", "create", PROFILE, "--template", TEMPLATE]
    for setting in (
        f"uri={s.uri}",
        f"ca_file={s.ca_file}",
        f"bind_dn={s.reader_dn}",
        f"bind_password={s.reader_password}",
        f"base_dn={env.base_dn}",
    ):
        cmd += ["--set", setting]
    run(cmd, env.pbx_env(home))


def pbx_sync(env: Env, home: Path, db: Path) -> tuple[float, dict[str, Any]]:
    elapsed, out = run([PBX, "--db", str(db), "sync", PROFILE, "--json"], env.pbx_env(home))
    return elapsed, json.loads(out)


@dataclass
class Cycle:
    first: float
    resync: float
    first_report: dict[str, Any]
    resync_report: dict[str, Any]


def pbx_cycle(env: Env, i: int) -> Cycle:
    """First sync and unchanged re-sync on a fresh database."""
    home = fresh_dir(env, f"pbx-{i}")
    db = home / "pbx.db"
    create_profile(env, home, db)
    first, first_report = pbx_sync(env, home, db)
    resync, resync_report = pbx_sync(env, home, db)
    shutil.rmtree(home, ignore_errors=True)
    return Cycle(first, resync, first_report, resync_report)


def pbx_cycles(env: Env) -> list[Cycle]:
    cycles = [pbx_cycle(env, 0)]
    if cycles[0].first + cycles[0].resync > CYCLE_BUDGET_SECONDS:
        return cycles
    cycles += [pbx_cycle(env, i) for i in range(1, REPETITIONS)]
    return cycles


def median_of(measure: Callable[[], float], times: int = REPETITIONS) -> float:
    return statistics.median(measure() for _ in range(times))


# --- reporting -----------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    target: float | None = None  # as a multiple of the limit's time


def print_table(results: list[Result], limit: float) -> None:
    print(f"{'measurement':<44} {'seconds':>8} {'× limit':>8}  {'target':<15} met")
    for r in results:
        target = f"≤ {r.target:.1f} × limit" if r.target is not None else "-"
        met = "-" if r.target is None else ("yes" if r.seconds <= r.target * limit else "NO")
        print(f"{r.name:<44} {r.seconds:8.3f} {r.seconds / limit:8.2f}  {target:<15} {met}")


def _shown(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def check_cycle(i: int, cycle: Cycle, users: int) -> None:
    first, resync = cycle.first_report["counts"], cycle.resync_report["counts"]
    print(f"cycle {i + 1}: (b) {cycle.first:.2f} s, (c) {cycle.resync:.2f} s")
    print(f"  (b) counts: {_shown(first)}")
    print(f"  (c) counts: {_shown(resync)}")
    accounted = sum(first.get(k, 0) for k in ("created", "invalid", "conflicts", "skipped"))
    verdict = "as expected" if accounted == users else "UNEXPECTED"
    print(
        f"  (b) created + invalid + conflicts + skipped = {accounted}"
        f" (expected {users:,}, every entry): {verdict}"
    )
    expected = {"created": 0, "updated": 0, "deleted": 0, "unchanged": first.get("created")}
    wrong = {k: resync.get(k) for k, v in expected.items() if resync.get(k) != v}
    verdict = "as expected" if not wrong else f"UNEXPECTED {wrong}"
    print(f"  (c) expected unchanged = (b) created = {first.get('created')}, 0 changes: {verdict}")
    for name, report in (("(b)", cycle.first_report), ("(c)", cycle.resync_report)):
        if report.get("status") != "ok":
            print(f"  {name} status {report.get('status')!r}: {report.get('message')!r}")


def print_invalid(report: dict[str, Any]) -> None:
    errors = report.get("errors", [])
    if not errors:
        return
    print(
        f"(b) rows not created ({len(errors)} listed; the hand-made test users of"
        " directory_tree include uids with filter/DN metacharacters on purpose):"
    )
    for e in errors:
        print(f"  {e.get('kind')}: {e.get('ref')}: {e.get('message')}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown"


def slapd_version() -> str:
    slapd = find_binary("slapd")
    if slapd is None:
        return "not found"
    # slapd -VV prints its version to stderr and exits 0 (some builds: non-zero).
    proc = subprocess.run([str(slapd), "-VV"], capture_output=True, text=True, check=False)
    return _first_line(proc.stderr or proc.stdout).replace("@(#) $", "").rstrip(" $")


def ldapsearch_version() -> str:
    proc = subprocess.run(["ldapsearch", "-VV"], capture_output=True, text=True, check=False)
    line = _first_line(proc.stderr or proc.stdout).removeprefix("ldapsearch: ")
    return line.replace("@(#) $", "").rstrip(" $")


def load() -> str:
    proc = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def print_machine() -> None:
    print("machine:")
    print(f"  nproc:       {os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})")
    print(f"  CPU:         {cpu_model()}")
    print(f"  Python:      {platform.python_version()} ({platform.python_implementation()})")
    print(f"  python-ldap: {ldap.__version__}")
    print(f"  SQLite:      {sqlite3.sqlite_version}")
    print(f"  slapd:       {slapd_version()}")
    print(f"  ldapsearch:  {ldapsearch_version()}")
    print(f"  OS:          {platform.platform()}")
    print(f"  load before: {load()}")


# --- main ----------------------------------------------------------------------------


def benchmark(env: Env, users: int) -> None:
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
    print(f"(a) ldapsearch returned {found:,} entries (expected {users:,}): {verdict}\n")

    limit = median_of(lambda: time_limit(env))
    cycles = pbx_cycles(env)
    print(f"(a): median of {REPETITIONS} runs, every run a subprocess")
    print(f"(b), (c): median of {len(cycles)} cycle(s), each on a fresh database\n")
    first = statistics.median(c.first for c in cycles)
    resync = statistics.median(c.resync for c in cycles)
    print_table(
        [
            Result("(a) limit: ldapsearch -ZZ -E pr=500 > null", limit),
            Result("(b) pbx-connector first ldap-users sync", first, FIRST_TARGET),
            Result("(c) pbx-connector re-sync, no changes", resync, RESYNC_TARGET),
        ],
        limit,
    )
    print()
    for i, cycle in enumerate(cycles):
        check_cycle(i, cycle, users)
    print_invalid(cycles[0].first_report)
    print(f"load after: {load()}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--users", type=int, default=20_000, help="inetOrgPerson entries in ou=people"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-ldap-"))
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
        benchmark(Env(work, server, base_env, profile_attributes()), args.users)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
