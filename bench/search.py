"""Record search benchmark: the core's phonebook search on a 100,000-entry store, through
the trigram index, against the limit of reading the table (a LIKE over every row).

Run from the project root::

    .venv/bin/python -m bench.search [--rows 100000] [--queries 2000]

The phonebook is the one `bench.csv_import` generates, imported with `pbx-connector sync`
into a fresh SQLite store. Then, in this process, `App.records.list("phonebook",
search=…, limit=50)` answers random fragments of names (3–5 letters, some with their
accents, some in upper case) and number fragments; every query is timed with
``time.perf_counter``. The limit is the same query without the index: `search_text LIKE
'%…%'` over the whole table. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.csv_import import PBX, PROFILE, PhonebookGenerator, write_csv
from pbx_connector.domain.search import fold
from pbx_connector.service import App

SEED = 20261129


def _fragments(names: list[str], rng: random.Random, count: int) -> list[str]:
    out: list[str] = []
    for _ in range(count):
        name = rng.choice(names)
        size = rng.randint(3, 5)
        start = rng.randint(0, max(0, len(name) - size))
        fragment = name[start : start + size]
        out.append(fragment.upper() if rng.random() < 0.2 else fragment)
    return out


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pbx-bench-search-") as tmp:
        work = Path(tmp)
        csv_path = work / "phonebook.csv"
        rows = list(PhonebookGenerator().rows(args.rows))
        write_csv(csv_path, rows)
        db = work / "store.db"
        env = {**os.environ, "PBX_CONNECTOR_HOME": str(work / "home")}
        base = [PBX, "--db", str(db)]
        subprocess.run(
            [
                *base,
                "profile",
                "create",
                PROFILE,
                "-t",
                "csv-phonebook",
                "--set",
                f"path={csv_path}",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        started = time.perf_counter()
        subprocess.run([*base, "sync", PROFILE], check=True, env=env, capture_output=True)
        imported = time.perf_counter() - started

        rng = random.Random(SEED)
        names = [r[0] for r in rows]
        terms = _fragments(names, rng, args.queries)
        terms += [r[1].replace(" ", "")[-6:] for r in rng.sample(rows, args.queries // 10)]

        os.environ["PBX_CONNECTOR_HOME"] = str(work / "home")
        app = App.open(str(db))
        indexed: list[float] = []
        hits = 0
        for term in terms:
            t = time.perf_counter()
            page = app.records.list("phonebook", search=term, limit=50)
            indexed.append(time.perf_counter() - t)
            hits += page.total > 0

        plain = sqlite3.connect(db)
        scanned: list[float] = []
        for term in terms[:200]:
            t = time.perf_counter()
            plain.execute(
                "SELECT id FROM phonebook WHERE search_text LIKE ? LIMIT 50",
                (f"%{fold(term)}%",),
            ).fetchall()
            plain.execute(
                "SELECT count(*) FROM phonebook WHERE search_text LIKE ?", (f"%{fold(term)}%",)
            ).fetchone()
            scanned.append(time.perf_counter() - t)

    print(f"phonebook entries: {args.rows:,}, imported in {imported:.2f} s (one sync)")
    print(f"queries: {len(terms):,} ({hits:,} with at least one match)")
    print("measurement                                  p50 ms   p99 ms   max ms")
    for label, values in (
        ("core search, trigram index (page + total)", indexed),
        ("limit: LIKE over every row (page + total)", scanned),
    ):
        print(
            f"{label:44} {statistics.median(values) * 1000:7.2f}"
            f"  {_percentile(values, 0.99) * 1000:7.2f}  {max(values) * 1000:7.2f}"
        )
    ratio = statistics.median(scanned) / statistics.median(indexed)
    print(f"the index answers {ratio:.1f}× faster than reading the table (medians)")


if __name__ == "__main__":
    main()
