"""CSV phonebook import benchmark: pbx-connector against the limit and a peer tool.

Run from the project root::

    .venv/bin/python -m bench.csv_import [--rows 100000] [--memory-rows 1000000] [--skip-memory]

Every measured command runs as its own subprocess (so interpreter start-up counts the
same for all of them) and is timed with ``time.perf_counter`` around ``subprocess.run``:

* ``limit``   – ``python -c`` with the C ``csv`` reader and one ``sqlite3.executemany``
                into a plain 9-column table of a fresh SQLite file, in one transaction;
* ``peer``    – ``sqlite-utils insert DB phonebook FILE --csv`` into a fresh file;
* ``first``   – ``pbx-connector --db DB sync NAME`` on a fresh database (the profile
                is created beforehand, untimed);
* ``resync``  – the same command again, the file unchanged;
* ``changed`` – the same command after 1% of the rows got a new organisation and
                another 1% were removed (mirror mode), checked against ``sync --json``.

The numbers are printed, never asserted. Generated files live in a temporary directory
that is removed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SEED: Final = 20240601
COLUMNS: Final = (
    "displayname",
    "phone",
    "givenname",
    "surname",
    "organisation",
    "email",
    "mobile",
    "homephone",
    "fax",
)
PROFILE: Final = "bench"
REPETITIONS: Final = 3
CHANGE_SHARE: Final = 0.01
MEMORY_TARGET_MB: Final = 150.0
# A cycle of first import + two re-syncs taking longer than this is not repeated.
CYCLE_BUDGET_SECONDS: Final = 600.0

VENV_BIN: Final = Path(sys.executable).parent
PBX: Final = str(VENV_BIN / "pbx-connector")
SQLITE_UTILS: Final = str(VENV_BIN / "sqlite-utils")

# --- the generator -------------------------------------------------------------------

GIVEN_NAMES: Final = (
    # German / Austrian / Swiss
    "Jürgen", "Jörg", "Björn", "Günther", "Uwe", "Sören", "Käthe", "Bärbel", "Jürgen",
    "Anna", "Lukas", "Maximilian", "Sophie", "Moritz", "Lea", "Fynn", "Hannelore",
    # Nordic
    "Åsa", "Øystein", "Bjørn", "Ásgeir", "Sigríður", "Märta", "Jöns", "Eiríkur", "Åke",
    "Kåre", "Mette", "Sölvi", "Þórunn", "Aino", "Päivi",
    # Polish / Czech
    "Łukasz", "Wojciech", "Małgorzata", "Zbigniew", "Grzegorz", "Agnieszka", "Bożena",
    "Jiří", "Tomáš", "Žofie", "Radosław",
    # French
    "François", "Hélène", "Amélie", "Jérôme", "Gaëlle", "Noël", "Cécile", "Benoît",
    "Loïc", "Françoise",
    # Turkish
    "Çağla", "Gülşen", "İbrahim", "Şükrü", "Özgür", "Ayşe", "Ümit", "Barış", "Tuğba",
    # Spanish / Portuguese
    "José", "María", "Íñigo", "Begoña", "Ángel", "Núria", "Joaquín", "Inês", "João",
    # plain
    "Michael", "Thomas", "Sandra", "Peter", "Claudia", "Stefan", "Laura",
)  # fmt: skip
SURNAMES: Final = (
    "Müller", "Schröder", "Groß", "Weiß", "Köhler", "Hoffmann", "Schäfer", "Bäcker",
    "Krämer", "Fuß", "Meyer", "Wagner", "Becker", "Günther", "Böhm", "Strauß",
    "Åström", "Søndergaard", "Jørgensen", "Lindqvist", "Håkansson", "Sigurðsson",
    "Nyström", "Ølstad", "Virtanen", "Mäkelä",
    "Wiśniewski", "Kowalczyk", "Wójcik", "Łukaszewicz", "Zieliński", "Dvořák",
    "Novák", "Szczęsny", "Gąsior",
    "Lefèvre", "Dubois", "Bélanger", "Giraud", "Français", "Lemaître", "Boëly",
    "Yılmaz", "Öztürk", "Çelik", "Şahin", "Doğan", "Aydın", "Güneş",
    "García", "Martínez", "Fernández", "Núñez", "Peña", "Ibáñez", "Gonçalves",
    "Smith", "Schmidt", "Fischer", "Weber", "Schneider",
)  # fmt: skip
ORGANISATIONS: Final = (
    ("Bäckerei Groß GmbH", "baeckerei-gross.de"),
    ("Müller & Söhne KG", "mueller-soehne.de"),
    ("Straßenbau Köhler AG", "koehler-bau.de"),
    ("Nordisk Ålesund AS", "nordisk-aalesund.no"),
    ("Göteborgs Hamn AB", "goteborgshamn.se"),
    ("Przedsiębiorstwo Łódź Sp. z o.o.", "lodz.pl"),
    ("Société Générale d'Électricité", "sge.fr"),
    ("İstanbul Dış Ticaret A.Ş.", "istanbul-dis.com.tr"),
    ("Construcciones Peñalver S.L.", "penalver.es"),
    ("Wiener Städtische Versicherung", "wienerstaedtische.at"),
    ("Zürcher Kantonalbank", "zkb.ch"),
    ("Stadtwerke Deggendorf", "stadtwerke-deggendorf.de"),
    ("Autohaus Schäfer", "autohaus-schaefer.de"),
    ("Praxis Dr. Weiß", "praxis-weiss.de"),
    ("", ""),
)
DEPARTMENTS: Final = (
    "Einkauf", "Vertrieb", "Buchhaltung", "Geschäftsführung", "Empfang", "IT",
    "Lager", "Personal", "Qualitätssicherung", "Kundendienst", "Außendienst",
)  # fmt: skip
ASCII_FOLD: Final = str.maketrans(
    {
        "ß": "ss", "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
        "ø": "o", "Ø": "O", "å": "aa", "Å": "Aa", "æ": "ae", "ð": "d", "þ": "th",
        "Þ": "Th", "ł": "l", "Ł": "L", "ı": "i", "İ": "I",
    }
)  # fmt: skip
LANDLINE_AREAS: Final = ("991", "89", "30", "40", "221", "69", "711", "911", "9931", "8551")
MOBILE_PREFIXES: Final = ("151", "160", "170", "171", "172", "176", "179", "1520")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _german_landline(rng: random.Random) -> str:
    area, sub = rng.choice(LANDLINE_AREAS), _digits(rng, rng.randint(5, 7))
    style = rng.randrange(7)
    if style == 0:
        return f"+49 {area} {sub}"
    if style == 1:
        return f"0{area}/{sub[:-2]}-{sub[-2:]}"
    if style == 2:
        return f"+49 (0) {area} {sub}"
    if style == 3:
        return f"(0{area}) {sub}"
    if style == 4:
        return f"0049{area}{sub}"
    if style == 5:
        return f"0{area}-{sub}"
    return f"+49{area}{sub}"


def _foreign_landline(rng: random.Random) -> str:
    style = rng.randrange(6)
    if style == 0:
        return f"+43 1 {_digits(rng, 3)} {_digits(rng, 4)}"
    if style == 1:
        return f"+41 44 {_digits(rng, 3)} {_digits(rng, 2)} {_digits(rng, 2)}"
    if style == 2:
        return f"+33 1 {' '.join(_digits(rng, 2) for _ in range(4))}"
    if style == 3:
        return f"+48 22 {_digits(rng, 3)} {_digits(rng, 2)} {_digits(rng, 2)}"
    if style == 4:
        return f"+90 212 {_digits(rng, 3)} {_digits(rng, 2)} {_digits(rng, 2)}"
    return f"+34 91 {_digits(rng, 3)} {_digits(rng, 2)} {_digits(rng, 2)}"


def _landline(rng: random.Random) -> str:
    return _german_landline(rng) if rng.random() < 0.8 else _foreign_landline(rng)


def _mobile(rng: random.Random) -> str:
    prefix, sub = rng.choice(MOBILE_PREFIXES), _digits(rng, 7)
    style = rng.randrange(4)
    if style == 0:
        return f"0{prefix} {sub}"
    if style == 1:
        return f"+49 {prefix} {sub}"
    if style == 2:
        return f"0{prefix}/{sub}"
    return f"+49 (0){prefix} {sub[:3]} {sub[3:]}"


def _maybe(rng: random.Random, share: float, make: Callable[[random.Random], str]) -> str:
    return make(rng) if rng.random() < share else ""


def _email(given: str, surname: str, domain: str) -> str:
    if not domain:
        return ""
    local = f"{given}.{surname}".translate(ASCII_FOLD)
    local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    return f"{local.lower().replace(' ', '')}@{domain}"


class PhonebookGenerator:
    """Deterministic phonebook rows; displaynames (and so the key) are unique."""

    def __init__(self, seed: int = SEED) -> None:
        self._rng = random.Random(seed)
        self._seen: dict[str, int] = {}

    def _displayname(self, given: str, surname: str, department: str) -> str:
        base = f"{surname}, {given} ({department})"
        n = self._seen.get(base, 0) + 1
        self._seen[base] = n
        return base if n == 1 else f"{base} {n}"

    def row(self) -> list[str]:
        rng = self._rng
        given, surname = rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)
        organisation, domain = rng.choice(ORGANISATIONS)
        return [
            self._displayname(given, surname, rng.choice(DEPARTMENTS)),
            _landline(rng),
            given,
            surname,
            organisation,
            _maybe(rng, 0.85, lambda _: _email(given, surname, domain)),
            _maybe(rng, 0.6, _mobile),
            _maybe(rng, 0.25, _landline),
            _maybe(rng, 0.3, _landline),
        ]

    def rows(self, count: int) -> Iterator[list[str]]:
        for _ in range(count):
            yield self.row()


def write_csv(path: Path, rows: Iterator[list[str]] | Sequence[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


def change_rows(
    rows: list[list[str]], share: float, seed: int = SEED
) -> tuple[list[list[str]], int, int]:
    """Give `share` of the rows a new organisation and drop another `share` of them."""
    rng = random.Random(seed + 1)
    n = round(len(rows) * share)
    picked = rng.sample(range(len(rows)), 2 * n)
    to_update, to_delete = set(picked[:n]), set(picked[n:])
    org = COLUMNS.index("organisation")
    out: list[list[str]] = []
    for i, row in enumerate(rows):
        if i in to_delete:
            continue
        if i in to_update:
            row = [*row[:org], f"{row[org]} (umgezogen nach Straßkirchen)", *row[org + 1 :]]
        out.append(row)
    return out, n, n


# --- running and timing --------------------------------------------------------------

LIMIT_SCRIPT: Final = """
import csv, sqlite3, sys
con = sqlite3.connect(sys.argv[2])
con.execute("CREATE TABLE phonebook (" + ", ".join(c + " TEXT" for c in sys.argv[3:]) + ")")
with open(sys.argv[1], encoding="utf-8", newline="") as f:
    rows = csv.reader(f)
    next(rows)
    with con:
        con.executemany("INSERT INTO phonebook VALUES (" + ",".join("?" * 9) + ")", rows)
con.close()
"""


@dataclass
class Env:
    work: Path
    base_env: dict[str, str]

    def pbx_env(self, home: Path) -> dict[str, str]:
        return {**self.base_env, "PBX_CONNECTOR_HOME": str(home)}


def run(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run `cmd`, fail loudly on a non-zero exit; return (wall seconds, stdout)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n{tail}")
    return elapsed, proc.stdout


def fresh_dir(env: Env, name: str) -> Path:
    path = env.work / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def time_limit(env: Env, csv_path: Path, i: int) -> float:
    db = fresh_dir(env, f"limit-{i}") / "limit.db"
    cmd = [sys.executable, "-c", LIMIT_SCRIPT, str(csv_path), str(db), *COLUMNS]
    return run(cmd, env.base_env)[0]


def time_peer(env: Env, csv_path: Path, i: int) -> float:
    db = fresh_dir(env, f"peer-{i}") / "peer.db"
    return run([SQLITE_UTILS, "insert", str(db), "phonebook", str(csv_path), "--csv"])[0]


def pbx_sync(env: Env, home: Path, db: Path, as_json: bool = False) -> tuple[float, str]:
    cmd = [PBX, "--db", str(db), "sync", PROFILE, *(["--json"] if as_json else [])]
    return run(cmd, env.pbx_env(home))


def create_profile(env: Env, home: Path, db: Path, csv_path: Path) -> None:
    cmd = [PBX, "--db", str(db), "profile", "create", PROFILE]
    cmd += ["--template", "csv-phonebook", "--set", f"path={csv_path}"]
    run(cmd, env.pbx_env(home))


@dataclass
class Cycle:
    first: float
    resync: float
    changed: float
    counts: dict[str, Any]
    summaries: tuple[str, str]


def pbx_cycle(env: Env, csv_path: Path, changed_csv: Path, i: int) -> Cycle:
    """First import, unchanged re-sync and a 1%-changed re-sync on a fresh database."""
    home = fresh_dir(env, f"pbx-{i}")
    db = home / "pbx.db"
    shutil.copyfile(csv_path, home / "phonebook.csv")
    create_profile(env, home, db, home / "phonebook.csv")
    first, first_out = pbx_sync(env, home, db)
    resync, resync_out = pbx_sync(env, home, db)
    shutil.copyfile(changed_csv, home / "phonebook.csv")
    changed, out = pbx_sync(env, home, db, as_json=True)
    shutil.rmtree(home, ignore_errors=True)
    summaries = (_last_line(first_out), _last_line(resync_out))
    return Cycle(first, resync, changed, json.loads(out)["counts"], summaries)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def median_of(measure: Callable[[int], float], times: int = REPETITIONS) -> float:
    return statistics.median(measure(i) for i in range(times))


def pbx_cycles(env: Env, csv_path: Path, changed_csv: Path) -> list[Cycle]:
    cycles = [pbx_cycle(env, csv_path, changed_csv, 0)]
    took = cycles[0].first + cycles[0].resync + cycles[0].changed
    if took * (REPETITIONS - 1) > CYCLE_BUDGET_SECONDS:
        return cycles
    cycles += [pbx_cycle(env, csv_path, changed_csv, i) for i in range(1, REPETITIONS)]
    return cycles


# --- reporting -----------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    target: float | None = None  # as a multiple of the peer's time


def print_table(results: list[Result], peer: float) -> None:
    print(f"{'measurement':<44} {'seconds':>8} {'× peer':>7}  {'target':<14} met")
    for r in results:
        target = f"≤ {r.target:.1f} × peer" if r.target is not None else "-"
        met = "-" if r.target is None else ("yes" if r.seconds <= r.target * peer else "NO")
        print(f"{r.name:<44} {r.seconds:8.2f} {r.seconds / peer:7.2f}  {target:<14} {met}")


def check_counts(counts: dict[str, Any], updated: int, deleted: int) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in counts.items())
    print(f"(e) sync --json counts: {shown}")
    expected = {"created": 0, "updated": updated, "deleted": deleted}
    wrong = {k: counts.get(k) for k, v in expected.items() if counts.get(k) != v}
    verdict = "as expected" if not wrong else f"UNEXPECTED {wrong}"
    print(f"    expected created=0, updated={updated}, deleted={deleted}: {verdict}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine() -> None:
    peer_version = run([SQLITE_UTILS, "--version"])[1].strip()
    print("machine:")
    print(f"  nproc:       {os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})")
    print(f"  CPU:         {cpu_model()}")
    print(f"  Python:      {platform.python_version()} ({platform.python_implementation()})")
    print(f"  SQLite:      {sqlite3.sqlite_version}")
    print(f"  peer:        {peer_version}")
    print(f"  OS:          {platform.platform()}")


# --- peak memory ---------------------------------------------------------------------

MAXRSS_SCRIPT: Final = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
elapsed = time.perf_counter() - start
print(code, elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_memory(env: Env, rows: int) -> None:
    home = fresh_dir(env, "memory")
    csv_path, db = home / "phonebook.csv", home / "pbx.db"
    write_csv(csv_path, PhonebookGenerator().rows(rows))
    size_mb = csv_path.stat().st_size / 1e6
    create_profile(env, home, db, csv_path)
    cmd = [sys.executable, "-c", MAXRSS_SCRIPT, PBX, "--db", str(db), "sync", PROFILE]
    out = run(cmd, env.pbx_env(home))[1].split()
    code, elapsed, maxrss_kb = int(out[0]), float(out[1]), int(out[2])
    peak_mb, peak_mib = maxrss_kb * 1024 / 1e6, maxrss_kb / 1024
    met = "yes" if peak_mb < MEMORY_TARGET_MB and code == 0 else "NO"
    print(f"peak memory, first import of {rows:,} rows ({size_mb:.0f} MB CSV), one subprocess:")
    print(f"  exit code {code}, wall {elapsed:.1f} s")
    target = f"target < {MEMORY_TARGET_MB:.0f} MB"
    print(f"  peak RSS {peak_mb:.0f} MB ({peak_mib:.0f} MiB), {target}: met: {met}")
    shutil.rmtree(home, ignore_errors=True)


# --- main ----------------------------------------------------------------------------


def prepare(env: Env, rows: int) -> tuple[Path, Path, int, int]:
    csv_path, changed_csv = env.work / "phonebook.csv", env.work / "phonebook-changed.csv"
    write_csv(csv_path, PhonebookGenerator().rows(rows))
    changed, n_updated, n_deleted = change_rows(read_rows(csv_path), CHANGE_SHARE)
    write_csv(changed_csv, changed)
    print(f"generated {rows:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB) in {env.work}")
    return csv_path, changed_csv, n_updated, n_deleted


def benchmark(env: Env, rows: int) -> None:
    csv_path, changed_csv, n_updated, n_deleted = prepare(env, rows)
    limit = median_of(lambda i: time_limit(env, csv_path, i))
    peer = median_of(lambda i: time_peer(env, csv_path, i))
    cycles = pbx_cycles(env, csv_path, changed_csv)
    print(f"(a), (b): median of {REPETITIONS} runs each, every run a subprocess")
    print(f"(c), (d), (e): median of {len(cycles)} cycle(s), each on a fresh database\n")
    first = statistics.median(c.first for c in cycles)
    resync = statistics.median(c.resync for c in cycles)
    changed = statistics.median(c.changed for c in cycles)
    print_table(
        [
            Result("(a) limit: csv + sqlite3 executemany", limit),
            Result("(b) peer: sqlite-utils insert --csv", peer),
            Result("(c) pbx-connector first import", first, 1.0),
            Result("(d) pbx-connector re-sync, no changes", resync, 0.5),
            Result("(e) pbx-connector re-sync, 1% upd + 1% del", changed),
        ],
        peer,
    )
    print()
    print(f"(c) output: {cycles[0].summaries[0]}")
    print(f"(d) output: {cycles[0].summaries[1]}")
    for cycle in cycles:
        check_counts(cycle.counts, n_updated, n_deleted)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the timed file")
    parser.add_argument(
        "--memory-rows", type=int, default=1_000_000, help="rows of the peak-memory file"
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-"))
    env = Env(work, {k: v for k, v in os.environ.items() if k != "PBX_CONNECTOR_DB"})
    try:
        print_machine()
        print()
        benchmark(env, args.rows)
        if not args.skip_memory:
            print()
            peak_memory(env, args.memory_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
