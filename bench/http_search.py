"""HTTP benchmark of `serve`: phonebook search over the REST API and the Connector page,
with `wrk` on loopback, against the limit of the same HTTP stack answering a constant.

Run from the project root (needs Debian's `wrk`)::

    .venv/bin/python -m bench.http_search [--rows 100000] [--duration 20] [--connections 16]
        [--workers 1,2]

It builds a store of `--rows` phonebook entries (the generator of `bench.csv_import`,
imported with one `sync`) plus a second profile `other` over another file of the same
size, and runs `wrk` (2 threads, `--connections`, `--duration` seconds, latency
percentiles) first against the limit, then three times against `pbx-connector serve
--workers N` on a free port for each N of `--workers`:

1. the limit: a FastAPI route answering a constant from the same uvicorn, in its own
   process (what the HTTP stack can do on this machine at all);
2. `GET /api/v1/phonebook?search=FRAGMENT&limit=50` with a viewer token, the fragment
   picked at random per request from 2,000 fragments of real names (3–5 letters, some
   upper case, accents as in the names);
3. the same while `other` is synchronised over and over (each run a 100,000-row sync that
   updates every entry, two files taken in turn);
4. the Connector page (`GET /`) with a signed-in session.

Numbers are printed, never asserted: read the `met` column (zero errors, p99 under
50 ms for the search, under 100 ms for the page).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.csv_import import PBX, PhonebookGenerator, write_csv

SEED = 20261130
#: The constant endpoint: the same FastAPI and uvicorn `serve` uses, nothing else.
BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/constant")
def constant() -> dict[str, str]:
    return {"name": "Jürgen Müller"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def wrk_latency_ms(out: str, pct: str) -> float:
    """The `pct`% latency of wrk's `--latency` output, in milliseconds."""
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no {pct}% latency:\n{out}")
    value, unit = float(match[1]), match[2]
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@dataclass
class WrkResult:
    label: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    #: The p99 a measurement must stay under (with zero errors); None for the limit.
    target_ms: float | None = None

    @classmethod
    def parse(cls, label: str, out: str, target_ms: float | None = None) -> WrkResult:
        def latency(pct: str) -> float:
            return wrk_latency_ms(out, pct)

        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sockets = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        errors = int(non2xx[1]) if non2xx else 0
        if sockets:
            errors += sum(int(x) for x in sockets.groups())
        if not rate or not total:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        return cls(
            label,
            float(rate[1]),
            latency("50"),
            latency("99"),
            errors,
            int(total[1]),
            target_ms,
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.1)


def _fragments(names: list[str], rng: random.Random, count: int) -> list[str]:
    """`count` fragments of 3-5 characters cut from the names (some upper case). A cut
    that trimmed to fewer than three characters is cut again: one or two characters are
    no fragment a trigram index can find (see docs/benchmarks.md for what they cost)."""
    out: list[str] = []
    while len(out) < count:
        name = rng.choice(names)
        size = rng.randint(3, 5)
        start = rng.randint(0, max(0, len(name) - size))
        fragment = name[start : start + size].strip()
        if len(fragment) < 3:
            continue
        out.append(fragment.upper() if rng.random() < 0.2 else fragment)
    return out


def _lua(paths: list[str], headers: dict[str, str]) -> str:
    def lua_string(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["math.randomseed(20261130)", "local paths = {"]
    lines += [f"  {lua_string(p)}," for p in paths]
    lines.append("}")
    for name, value in headers.items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    lines.append('request = function() return wrk.format("GET", paths[math.random(#paths)]) end')
    return "\n".join(lines) + "\n"


def _wrk(
    label: str,
    url: str,
    script: Path,
    args: argparse.Namespace,
    target_ms: float | None = None,
) -> WrkResult:
    cmd = [
        "wrk",
        "-t2",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return WrkResult.parse(label, out, target_ms)


def _pbx(env: dict[str, str], db: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [PBX, "--db", str(db), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pbx-connector {' '.join(args)}: {done.stderr}")
    return done.stdout


def _sign_in(base: str, password: str) -> str:
    """The session cookie of a browser-like sign-in."""
    with httpx.Client(base_url=base) as client:
        form = client.get("/login").text
        match = re.search(r'name="csrf_token" value="([^"]*)"', form)
        assert match, form
        answer = client.post(
            "/login",
            data={"csrf_token": match[1], "username": "admin", "password": password},
            headers={"Origin": base},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in failed: {answer.status_code}")
        return f"pbxc_session={client.cookies['pbxc_session']}"


def _keep_syncing(
    env: dict[str, str], db: Path, files: list[Path], stop: threading.Event
) -> list[float]:
    """Synchronise `other` over and over, switching its file each time; the durations."""
    took: list[float] = []
    turn = 0
    while not stop.is_set():
        _pbx(env, db, "profile", "set", "other", f"path={files[turn % 2]}")
        started = time.perf_counter()
        _pbx(env, db, "sync", "other")
        took.append(time.perf_counter() - started)
        turn += 1
    return took


def _measure_serve(
    env: dict[str, str],
    db: Path,
    workers: int,
    log_path: Path,
    search: Path,
    password: str,
    other_a: Path,
    other_b: Path,
    args: argparse.Namespace,
    took: list[float],
) -> list[WrkResult]:
    """Measurements 2-4 against `serve --workers WORKERS`."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    of = f"{workers} worker{'s' if workers > 1 else ''}"
    results: list[WrkResult] = []
    with log_path.open("w") as log:
        serve = subprocess.Popen(
            [PBX, "--db", str(db), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(f"{base}/login", serve)
            # wrk opens its connections once: a worker still starting would get none.
            deadline = time.monotonic() + 60
            while log_path.read_text().count("Application startup complete") < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not all {workers} workers started")
                time.sleep(0.1)
            results.append(_wrk(f"search, idle store ({of})", base, search, args, 50.0))

            stop = threading.Event()
            syncer = threading.Thread(
                target=lambda: took.extend(_keep_syncing(env, db, [other_b, other_a], stop))
            )
            syncer.start()
            try:
                results.append(_wrk(f"search, during syncs ({of})", base, search, args, 50.0))
            finally:
                stop.set()
                syncer.join()

            page = log_path.with_suffix(".lua")
            page.write_text(_lua(["/"], {"Cookie": _sign_in(base, password)}))
            results.append(_wrk(f"Connector page ({of})", base, page, args, 100.0))
        finally:
            serve.terminate()
            serve.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="serve --workers values to measure, comma-separated (default 1,2)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian package wrk)")
    print(
        f"machine: {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(f"wrk: 2 threads, {args.connections} connections, {args.duration} s per measurement")
    with tempfile.TemporaryDirectory(prefix="pbx-bench-http-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "PBX_CONNECTOR_HOME": str(work / "home")}
        db = work / "store.db"
        rows = list(PhonebookGenerator().rows(args.rows))
        write_csv(work / "phonebook.csv", rows)
        other_rows = list(PhonebookGenerator(seed=SEED).rows(args.rows))
        other_a, other_b = work / "other-a.csv", work / "other-b.csv"
        write_csv(other_a, other_rows)
        org = 4
        write_csv(other_b, [[*r[:org], r[org] + " (neu)", *r[org + 1 :]] for r in other_rows])
        _pbx(
            env,
            db,
            "profile",
            "create",
            "bench",
            "-t",
            "csv-phonebook",
            "--set",
            f"path={work / 'phonebook.csv'}",
        )
        _pbx(
            env, db, "profile", "create", "other", "-t", "csv-phonebook", "--set", f"path={other_a}"
        )
        _pbx(env, db, "sync", "bench")
        password = "bench-admin-password"
        _pbx(env, db, "users", "passwd", "admin", stdin=password + "\n")
        token = _pbx(env, db, "token", "create", "bench", "--role", "viewer").strip()

        rng = random.Random(SEED)
        fragments = _fragments([r[0] for r in rows], rng, 2000)
        search = work / "search.lua"
        search.write_text(
            _lua(
                [f"/api/v1/phonebook?search={quote(f)}&limit=50" for f in fragments],
                {"Authorization": f"Bearer {token}"},
            )
        )

        results: list[WrkResult] = []
        bare_port = _free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
        try:
            _wait(f"http://127.0.0.1:{bare_port}/constant", bare)
            constant = work / "constant.lua"
            constant.write_text(_lua(["/constant"], {}))
            results.append(
                _wrk(
                    "limit: constant, same HTTP stack",
                    f"http://127.0.0.1:{bare_port}",
                    constant,
                    args,
                )
            )
        finally:
            bare.terminate()
            bare.wait()

        _pbx(env, db, "sync", "other")  # the first import; every later run updates all
        took: list[float] = []
        tails: list[str] = []
        for workers in args.workers:
            log_path = work / f"serve-{workers}.log"
            results += _measure_serve(
                env, db, workers, log_path, search, password, other_a, other_b, args, took
            )
            tails.append(log_path.read_text()[-2000:])

    print(f"store: {args.rows:,} phonebook entries (+{args.rows:,} of the profile 'other')")
    if took:
        print(
            f"syncs of 'other' during the measurements 'during syncs': {len(took)}, each "
            f"{min(took):.1f}-{max(took):.1f} s (100,000 rows, every entry updated)"
        )
    limit = results[0].requests_per_s
    print(
        f"{'measurement':36} {'req/s':>8} {'of limit':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7}  met"
    )
    for r in results:
        target = r.target_ms
        met = "" if target is None else ("yes" if r.errors == 0 and r.p99_ms < target else "no")
        goal = "" if target is None else f" (p99 < {target:.0f} ms, 0 errors)"
        print(
            f"{r.label:36} {r.requests_per_s:8.0f} {r.requests_per_s / limit:8.2f} "
            f"{r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:7d}  {met}{goal}"
        )
    for tail in tails:
        if "Traceback" in tail:
            print("serve logged a traceback:\n" + tail)


if __name__ == "__main__":
    main()
