"""Authentication benchmark: pbx-connector's LDAP password check against the limit.

Run from the project root::

    .venv/bin/python -m bench.auth_check [--checks 1000] [--users 200] [--profile]

A private slapd (``tests.servers.slapd.start_slapd`` with a small ``directory_tree``) runs
in a temporary directory and is stopped at the end. Every check is a successful one for
the hand-made user ``alice`` (``tests.servers.slapd.ALICE``), bound through the bind
template ``uid=%,ou=people,<suffix>``, and is timed on its own with
``time.perf_counter``:

* ``(a)`` the limit – python-ldap directly, one connection per check:
  ``ldap.initialize``, protocol 3, no referrals, a network timeout, the TLS options
  (``OPT_X_TLS_REQUIRE_CERT`` DEMAND, ``OPT_X_TLS_CACERTFILE``, ``OPT_X_TLS_NEWCTX`` last),
  ``start_tls_s()``, ``simple_bind_s(dn, password)``, ``unbind_s()``;
* ``(b)`` pbx-connector – ``authenticate(engine, "alice", password, origin="bench")``
  through the library API (not the CLI process) on a fresh SQLite store that holds the
  user (``auth=ldap``) and the authentication settings (``uri``, ``ca_file``,
  ``bind_user``, ``security=starttls``; certificate verification on, the default). This
  includes what the product does around the bind: reading the settings and the user
  from the store, counting the attempt in its lockout row before the bind (one write
  transaction, so that parallel attempts cannot exceed ``lockout_failures``), the bind
  in a worker thread that is given up after the directory budget, and writing the
  audit-log row and clearing the count.

Both use StartTLS verified against the test CA. The same pair is measured again with
``security=none`` (plain LDAP, labelled as such), because the TLS handshake dominates a
check and hides the product's own cost. The four measurements are interleaved: 10
blocks, in each of which every measurement does ``--checks / 10`` checks, (a) first in
even blocks and (b) first in odd ones, so machine noise hits them alike; each is warmed
up with 20 untimed checks. Printed: median and 99th percentile latency and the ratios
(b)/(a). Target: (b) at most 1.2 × (a) at the median (StartTLS). If the target is missed
(or with ``--profile``), 200 checks of (b) run under cProfile and the top costs are
printed. Nothing is asserted; (b)'s accepted count is printed (all must be accepted).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

# `python -m bench.auth_check` from the project root puts the root on sys.path, which makes
# `tests` (the throwaway slapd) importable; this covers being started from elsewhere.
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import ldap  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from tests.servers.slapd import (  # noqa: E402
    ALICE,
    DEFAULT_SUFFIX,
    SlapdServer,
    directory_tree,
    start_slapd,
)

from bench.ldap_sync import load, print_machine  # noqa: E402
from pbx_connector.authentication import authenticate  # noqa: E402
from pbx_connector.store import auth_store  # noqa: E402
from pbx_connector.store.db import ENV_DB, ENV_HOME, open_store_engine  # noqa: E402

BIND_TEMPLATE: Final = "uid=%,ou=people,{suffix}"
TIMEOUT: Final = 5.0  # seconds; the product's default auth timeout
BLOCKS: Final = 10
WARMUP: Final = 20
PROFILE_CHECKS: Final = 200
TARGET: Final = 1.2
PROFILE_TOP: Final = 25

VENV_BIN: Final = Path(sys.executable).parent
PBX: Final = str(VENV_BIN / "pbx-connector")


# --- the two ways of checking a password ---------------------------------------------


def direct_check(uri: str, ca_file: str | None, dn: str, password: str) -> None:
    """One bind with python-ldap on a fresh connection; raises if the bind fails.
    `ca_file` None means no TLS (security=none)."""
    conn = ldap.initialize(uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, TIMEOUT)
    if ca_file is not None:
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca_file)
        # libldap builds the TLS context from the options set so far: this comes last.
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        conn.start_tls_s()
    conn.simple_bind_s(dn, password)
    conn.unbind_s()


@dataclass
class Pair:
    """(a) and (b) for one security setting."""

    label: str
    security: str
    uri: str
    ca_file: str | None
    dn: str
    password: str
    engine: Engine
    direct: list[float] = field(default_factory=list)
    library: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def configure(self) -> None:
        """Point the store's authentication settings at this pair's security."""
        with self.engine.begin() as conn:
            auth_store.save(conn, {"security": self.security})

    def check_direct(self) -> float:
        start = time.perf_counter()
        direct_check(self.uri, self.ca_file, self.dn, self.password)
        return time.perf_counter() - start

    def check_library(self) -> float:
        start = time.perf_counter()
        result = authenticate(self.engine, ALICE.uid, self.password, origin="bench")
        elapsed = time.perf_counter() - start
        self.outcomes[result.reason] += 1
        return elapsed

    def warm_up(self) -> None:
        self.configure()
        for _ in range(WARMUP):
            self.check_direct()
            self.check_library()
        self.outcomes.clear()

    def block(self, n: int, direct_first: bool) -> None:
        self.configure()
        runs: list[tuple[Callable[[], float], list[float]]] = [
            (self.check_direct, self.direct),
            (self.check_library, self.library),
        ]
        if not direct_first:
            runs.reverse()
        for check, times in runs:
            times.extend(check() for _ in range(n))


# --- the store -----------------------------------------------------------------------


def prepare_store(work: Path, server: SlapdServer, base_env: dict[str, str]) -> Engine:
    """A fresh SQLite store with alice (auth=ldap) and the auth settings (StartTLS)."""
    home = work / "pbx-home"
    home.mkdir()
    url = f"sqlite:///{home / 'pbx.db'}"
    env = {**base_env, ENV_HOME: str(home)}
    cmd = [PBX, "--db", url, "users", "add", f"username={ALICE.uid}", "auth=ldap"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-2000:]}")
    # The instance key goes to the same temporary home as the CLI's.
    os.environ[ENV_HOME] = str(home)
    engine = open_store_engine(url)
    with engine.begin() as conn:
        auth_store.save(
            conn,
            {
                "uri": server.uri,
                "ca_file": str(server.ca_file),
                "bind_user": BIND_TEMPLATE.format(suffix=server.suffix),
                "security": "starttls",
            },
        )
        shown = auth_store.load(conn).public_dict()
    print(f"store: {url}; user {ALICE.uid} (auth=ldap)")
    print("auth settings: " + ", ".join(f"{k}={v}" for k, v in shown.items() if v))
    return engine


# --- reporting -----------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000


def p99(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


@dataclass
class Row:
    name: str
    times: list[float]
    reference: list[float] | None = None  # (a) of the same pair
    target: float | None = None  # as a multiple of (a)'s median


def print_table(rows: list[Row]) -> None:
    print(
        f"{'measurement':<46} {'median ms':>9} {'p99 ms':>8} {'× (a) med':>9} "
        f"{'× (a) p99':>9}  {'target':<14} met"
    )
    for r in rows:
        med, high = statistics.median(r.times), p99(r.times)
        if r.reference is None:
            ratio_med = ratio_p99 = "-"
        else:
            ratio_med = f"{med / statistics.median(r.reference):.2f}"
            ratio_p99 = f"{high / p99(r.reference):.2f}"
        if r.target is None or r.reference is None:
            target, met = "-", "-"
        else:
            target = f"≤ {r.target:.1f} × (a)"
            met = "yes" if med <= r.target * statistics.median(r.reference) else "NO"
        print(
            f"{r.name:<46} {ms(med):9.2f} {ms(high):8.2f} {ratio_med:>9} "
            f"{ratio_p99:>9}  {target:<14} {met}"
        )


def print_outcomes(pair: Pair, expected: int) -> None:
    accepted = pair.outcomes.get("accepted", 0)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(pair.outcomes.items()))
    print(f"{pair.label}: (b) results: {shown}; accepted {accepted:,} of {expected:,}")
    if accepted != expected:
        print(
            f"!!! WARNING: {expected - accepted} of {expected} checks of {pair.label} (b) "
            "were NOT accepted; rejections are delayed by failure_delay_ms and may lock "
            "the user, so its times are not comparable !!!"
        )


def _where(filename: str) -> str:
    """A short file name: relative to site-packages or the project, else the base name."""
    for marker in ("site-packages/", "/src/", f"{PROJECT_ROOT}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename if filename.startswith("<") or filename == "~" else Path(filename).name


def _group(where: str) -> str:
    """Which component a profile entry belongs to, for the per-component summary."""
    if "of 'LDAP' objects" in where:
        return "libldap via python-ldap's C module (network, TLS, slapd's answer)"
    if "sqlite3." in where:
        return "sqlite3 C module (SQLite itself)"
    for prefix, name in (
        ("ldap/", "python-ldap (Python part)"),
        ("sqlalchemy/", "SQLAlchemy (Python part)"),
        ("cryptography/", "cryptography"),
        ("pbx_connector/", "pbx_connector itself"),
    ):
        if where.startswith(prefix):
            return name
    return "other (stdlib, built-ins)"


def profile_library(pair: Pair, checks: int) -> None:
    pair.configure()
    pair.outcomes.clear()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(checks):
        result = authenticate(pair.engine, ALICE.uid, pair.password, origin="bench")
        pair.outcomes[result.reason] += 1
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = [
        (f"{_where(file)}:{func}" if file != "~" else func, calls, own, cumulative)
        for (file, _line, func), (_cc, calls, own, cumulative, _callers) in (
            stats.stats.items()  # type: ignore[attr-defined]
        )
    ]
    print(
        f"cProfile of {checks} checks of (b), {pair.label}: {total:.2f} s in total "
        f"({ms(total) / checks:.2f} ms per check under the profiler)"
    )
    print(f"top {PROFILE_TOP} by cumulative time:")
    print(f"  {'cumulative s':>12} {'own s':>7} {'calls':>7}  where")
    for where, calls, own, cumulative in sorted(entries, key=lambda e: -e[3])[:PROFILE_TOP]:
        print(f"  {cumulative:12.3f} {own:7.3f} {calls:7}  {where}")
    print(f"top {PROFILE_TOP // 2} by own time:")
    for where, calls, own, cumulative in sorted(entries, key=lambda e: -e[2])[: PROFILE_TOP // 2]:
        print(f"  {cumulative:12.3f} {own:7.3f} {calls:7}  {where}")
    groups: Counter[str] = Counter()
    for where, _calls, own, _cumulative in entries:
        groups[_group(where)] += own
    print("own time by component:")
    for name, own in groups.most_common():
        print(f"  {own:7.3f} s {100 * own / total:5.1f} %  {name}")


# --- main ----------------------------------------------------------------------------


def block_sizes(checks: int) -> list[int]:
    base, extra = divmod(checks, BLOCKS)
    return [base + (1 if i < extra else 0) for i in range(BLOCKS)]


def benchmark(server: SlapdServer, engine: Engine, checks: int, force_profile: bool) -> None:
    dn = BIND_TEMPLATE.format(suffix=server.suffix).replace("%", ALICE.uid)
    verdict = "as expected" if dn == ALICE.dn(server.suffix) else "UNEXPECTED"
    print(f"bind DN (a): {dn} (ALICE.dn: {verdict})")
    password = ALICE.password or ""
    tls = Pair("StartTLS", "starttls", server.uri, str(server.ca_file), dn, password, engine)
    plain = Pair("security=none", "none", server.uri, None, dn, password, engine)
    pairs = (tls, plain)
    for pair in pairs:
        pair.warm_up()
    start = time.perf_counter()
    for i, n in enumerate(block_sizes(checks)):
        for pair in pairs:
            pair.block(n, direct_first=i % 2 == 0)
    elapsed = time.perf_counter() - start
    print(
        f"{checks:,} checks per measurement in {BLOCKS} interleaved blocks "
        f"(after {WARMUP} warm-up checks each), {elapsed:.1f} s in all\n"
    )
    print_table(
        [
            Row("(a) limit: python-ldap StartTLS + bind", tls.direct),
            Row("(b) pbx-connector authenticate(), StartTLS", tls.library, tls.direct, TARGET),
            Row("(a') info: python-ldap bind, security=none", plain.direct),
            Row("(b') info: authenticate(), security=none", plain.library, plain.direct),
        ]
    )
    print()
    for pair in pairs:
        extra = statistics.median(pair.library) - statistics.median(pair.direct)
        print(f"{pair.label}: (b) − (a) at the median: {ms(extra):+.2f} ms per check")
    for pair in pairs:
        print_outcomes(pair, checks)
    missed = statistics.median(tls.library) > TARGET * statistics.median(tls.direct)
    if missed or force_profile:
        print()
        profile_library(tls, PROFILE_CHECKS)
        print_outcomes(tls, PROFILE_CHECKS)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--checks", type=int, default=1000, help="timed checks per measurement")
    parser.add_argument("--users", type=int, default=200, help="inetOrgPerson entries in slapd")
    parser.add_argument(
        "--profile", action="store_true", help="profile (b) even if the target is met"
    )
    args = parser.parse_args(argv)
    if args.checks < BLOCKS:
        parser.error(f"--checks must be at least {BLOCKS}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-auth-"))
    base_env = {k: v for k, v in os.environ.items() if k != ENV_DB}
    server: SlapdServer | None = None
    engine: Engine | None = None
    try:
        print_machine()
        print()
        server = start_slapd(
            work / "slapd",
            suffix=DEFAULT_SUFFIX,
            entries=lambda suffix: directory_tree(suffix, users=args.users, contacts=0),
        )
        print(f"slapd: {server.uri} (StartTLS), {server.entry_count:,} entries loaded")
        engine = prepare_store(work, server, base_env)
        benchmark(server, engine, args.checks, args.profile)
        print(f"load after: {load()}")
    finally:
        if engine is not None:
            engine.dispose()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
