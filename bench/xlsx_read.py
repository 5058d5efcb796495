"""Reading an xlsx sheet: python-calamine against openpyxl's read-only mode.

    .venv/bin/python -m bench.xlsx_read [--rows 100000] [--repeat 3]

Generates a phonebook workbook (text, phone numbers typed as numbers, a date and a
boolean per row) with openpyxl's write-only mode, then reads every cell of it in a fresh
subprocess per reader and run, and prints the median time and the peak RSS of each
reader, and their ratios to openpyxl read-only. Each reader turns every cell into its
text (the work a run does): the time includes that. Nothing is asserted.

Readers:

- `calamine-path`: `CalamineWorkbook.from_path`, `iter_rows()` (what the xlsx format uses
  for a local file, or a spooled copy of a stream that cannot seek);
- `calamine-filelike`: `CalamineWorkbook.from_filelike` on an open binary file;
- `openpyxl-readonly`: `load_workbook(read_only=True, data_only=True)`,
  `iter_rows(values_only=True)`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READERS = ("calamine-path", "calamine-filelike", "openpyxl-readonly")

_CHILD = r"""
import json, resource, sys, time
reader, path = sys.argv[1], sys.argv[2]
from pbx_connector.sources.xlsx import cell_text
start = time.perf_counter()
rows = cells = 0
if reader.startswith("calamine"):
    import python_calamine as pc
    if reader == "calamine-path":
        wb = pc.CalamineWorkbook.from_path(path)
    else:
        wb = pc.CalamineWorkbook.from_filelike(open(path, "rb"))
    for row in wb.get_sheet_by_index(0).iter_rows():
        texts = [cell_text(v) for v in row]
        rows += 1
        cells += len(texts)
else:
    import openpyxl
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    for row in wb.worksheets[0].iter_rows(values_only=True):
        texts = [cell_text(v) for v in row]
        rows += 1
        cells += len(texts)
    wb.close()
elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_mib": peak_kib / 1024, "rows": rows, "cells": cells}))
"""


def generate(path: Path, rows: int) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Phonebook")
    ws.append(["displayname", "phone", "givenname", "surname", "organisation", "email",
               "mobile", "since", "vip"])  # fmt: skip
    day = datetime.date(2020, 1, 1)
    for i in range(rows):
        ws.append(
            [
                f"Jürgen Müller {i}",
                4999112345 + i,
                "Jürgen",
                f"Müller{i}",
                "Example GmbH",
                f"j{i}@example.test",
                f"+49 151 {i:08d}",
                day + datetime.timedelta(days=i % 1000),
                i % 2 == 0,
            ]
        )
    wb.save(path)


def measure(reader: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, reader, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phonebook.xlsx"
        t0 = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size
        print(
            f"workbook: {args.rows:,} rows x 9 columns, {size / 2**20:.1f} MiB "
            f"(generated in {time.perf_counter() - t0:.1f} s)"
        )
        results: dict[str, tuple[float, float]] = {}
        for reader in READERS:
            runs = [measure(reader, path) for _ in range(args.repeat)]
            assert all(r["rows"] == args.rows + 1 for r in runs), runs
            results[reader] = (
                statistics.median(r["seconds"] for r in runs),
                max(r["peak_mib"] for r in runs),
            )
    ref_time, ref_rss = results["openpyxl-readonly"]
    header = ("reader", "median s", "peak RSS MiB", "time ratio", "RSS ratio")
    print(f"{header[0]:<20} {header[1]:>9} {header[2]:>13} {header[3]:>11} {header[4]:>10}")
    for reader, (seconds, rss) in results.items():
        print(
            f"{reader:<20} {seconds:>9.2f} {rss:>13.1f} {seconds / ref_time:>11.2f} "
            f"{rss / ref_rss:>10.2f}"
        )


if __name__ == "__main__":
    main()
