"""Benchmark: responsibility lookup (GET /lookup) on the 860-grid demo city, against its bare SQL.

Measured in one run, on 2,000 seeded random points inside the grids (``ST_GeneratePoints``):

* ``sql_ms_p50`` / ``sql_ms_p99``: the lookup statement (``geogrid.lookup.LOOKUP_SQL``) for one
  point, executed bare and sequentially on one connection — the reference;
* ``single_ms_p50`` / ``single_ms_p99``: ``GET /lookup`` from one sequential client; ``ratio`` =
  single p50 / SQL p50 (what HTTP, auth, pooling, coordinate handling and JSON add);
* ``p50_ms`` / ``p99_ms`` / ``rps``: ``GET /lookup`` under ``CONCURRENCY`` (50) concurrent
  connections for ``LOAD_SECONDS``, made by ``wrk`` (Debian package; C, one thread, cycling over the
  same points through a Lua script) against ``geogrid serve`` with one uvicorn worker per CPU (the
  documented deployment), and ``by_workers`` with one worker too. The load generator shares the
  machine's cores with the server, so this is a floor of what the server alone would do. Without
  wrk, a bounded asyncio loop of httpx requests stands in (``load_generator`` says which; it costs
  the shared CPUs more, so its figures are lower);
* ``batch``: ``POST /lookup`` with ``BATCH`` points against the bare SQL of the same batch;
* context: ``health_ms_p50`` (``GET /health``, the framework's floor with one trivial query),
  ``server_cpu_ms_per_request`` (the server process's CPU per sequential lookup) and the load
  average, since on a shared machine the throughput is mostly the CPU share the server gets.

``GEOGRID_BENCH_SECONDS`` shortens the load phase (default 10 s).

Run: ``GEOGRID_DATABASE_URL=... .venv/bin/python bench/lookup.py`` → ``bench/results/lookup.json``.
The demo city (seed 42, 100,000 incidents, as ``bench/tiles.py`` loads it) is loaded when the
database has no grids.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common.server import geogrid_server  # noqa: E402
from geogrid.lookup import KNN_SLACK, LOOKUP_SQL  # noqa: E402
from geogrid.store import make_engine  # noqa: E402

SEED = 42
N_INCIDENTS = 100_000  # the same city bench/tiles.py loads, so either script may load it first
N_POINTS = 2_000
SQL_REPEATS = 1_000
SINGLE_REPEATS = 400
WARMUP = 50
CONCURRENCY = 50
LOAD_SECONDS = float(os.environ.get("GEOGRID_BENCH_SECONDS", 10))
BATCH = 100
BATCH_REPEATS = 30
KEY = "bench-lookup-key-0123456789"
OUT = ROOT / "bench" / "results" / "lookup.json"


def ensure_city(url: str, console: Console) -> None:
    """Migrate, and load the demo city when there are no grids; its posts and staff when there are
    grids but no posts (``bench/ingest.py`` loads the same seed's grids alone)."""
    from geogrid.demo import PROFILE, load_city_files, write_city
    from geogrid.store.migrate import init_db

    init_db(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        n_grids = conn.execute(text("SELECT count(*) FROM grids")).scalar()
        n_posts = conn.execute(text("SELECT count(*) FROM posts")).scalar()
    if not n_grids:
        with console.status(f"loading the demo city ({N_INCIDENTS:,} incidents)"), tempfile.TemporaryDirectory() as d:
            load_city_files(engine, write_city(d, seed=SEED, n_incidents=N_INCIDENTS))
    elif not n_posts:
        from geogrid.ingest.fields import Profile
        from geogrid.ingest.posts import load_posts, load_staff

        with console.status("loading the demo city's posts and staff"), tempfile.TemporaryDirectory() as d:
            files = write_city(d, seed=SEED, n_incidents=1)  # grids, posts and staff do not depend on incidents
            prof = Profile.from_file(PROFILE, "posts")
            load_posts(engine, files["posts"], prof.fields, source=prof.source, crs=prof.crs)
            load_staff(engine, files["staff"], Profile.from_file(PROFILE, "staff").fields)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE grids; ANALYZE posts; ANALYZE staff; ANALYZE plans"))
    engine.dispose()


def sample_points(engine) -> np.ndarray:
    """``N_POINTS`` seeded random points inside the active plan's grids, spread by area."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_X(p.geom), ST_Y(p.geom) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), :n, :seed))).geom"
            " FROM grids WHERE plan_id = (SELECT id FROM plans WHERE status = 'active')) p"),
            {"n": N_POINTS, "seed": SEED}).all()
    pts = np.array(rows, dtype=float)
    np.random.default_rng(SEED).shuffle(pts)
    return pts


def _pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def sql_times(engine, pts: np.ndarray, batch: int = 1, repeats: int = SQL_REPEATS) -> list[float]:
    """Seconds per execution of the bare lookup statement for ``batch`` points at a time."""
    times = []
    with engine.connect() as conn:
        for i in range(WARMUP + repeats):
            k = (i * batch) % (len(pts) - batch)
            chunk = pts[k:k + batch]
            binds = {"at": None, "xs": chunk[:, 0].tolist(), "ys": chunk[:, 1].tolist(), "slack": KNN_SLACK}
            t = time.perf_counter()
            rows = conn.execute(LOOKUP_SQL, binds).all()
            dt = time.perf_counter() - t
            if len(rows) != batch or rows[0].code is None:
                raise SystemExit(f"the lookup statement found no grid for {chunk[0]}")
            if i >= WARMUP:
                times.append(dt)
    return times


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def single_times(client: httpx.Client, pts: np.ndarray, path: str = "/lookup") -> list[float]:
    times = []
    for i in range(WARMUP + SINGLE_REPEATS):
        lon, lat = pts[i % len(pts)]
        t = time.perf_counter()
        r = client.get(path, params={"lon": lon, "lat": lat} if path == "/lookup" else None)
        dt = time.perf_counter() - t
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code} {r.text[:300]}")
        if i >= WARMUP:
            times.append(dt)
    return times


def batch_times(client: httpx.Client, pts: np.ndarray) -> list[float]:
    times = []
    for i in range(3 + BATCH_REPEATS):
        k = (i * BATCH) % (len(pts) - BATCH)
        body = [{"id": j, "lon": x, "lat": y} for j, (x, y) in enumerate(pts[k:k + BATCH].tolist())]
        t = time.perf_counter()
        r = client.post("/lookup", json=body)
        dt = time.perf_counter() - t
        if r.status_code != 200 or any(item["status"] != 200 for item in r.json()):
            raise SystemExit(f"POST /lookup: {r.status_code} {r.text[:300]}")
        if i >= 3:
            times.append(dt)
    return times


WRK_LUA = """
local pts = {%s}
local i = 0
request = function()
  i = i + 1
  local p = pts[(i %% #pts) + 1]
  return wrk.format("GET", "/lookup?lon=" .. p[1] .. "&lat=" .. p[2], {["Authorization"] = "Bearer %s"})
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %%d %%d %%d %%d %%d %%d\\n", latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write, summary.errors.timeout))
end
"""


def _wrk(base: str, pts: np.ndarray, seconds: float) -> tuple[float, float, int, float, int]:
    """(p50 ms, p99 ms, requests, seconds, errors) of ``CONCURRENCY`` wrk connections on GET /lookup."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA % (",".join(f"{{{x!r},{y!r}}}" for x, y in pts.tolist()), KEY))
    try:
        args = ["wrk", "-t1", f"-c{CONCURRENCY}", "--timeout", "30s", "-s", f.name, base]
        subprocess.run([*args[:3], "-d2s", *args[3:]], check=True, capture_output=True)  # warm the pools
        out = subprocess.run([*args[:3], f"-d{seconds:g}s", *args[3:]], check=True, capture_output=True,
                             text=True).stdout
    finally:
        os.unlink(f.name)
    m = re.search(r"^WRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if m is None:
        raise SystemExit("wrk gave no summary:\n" + out)
    p50, p99, n, us, errors, timeouts = map(int, m.groups())
    return p50 / 1000, p99 / 1000, n, us / 1e6, errors + timeouts


async def _load(base: str, pts: np.ndarray, seconds: float) -> tuple[list[float], int, float]:
    """``CONCURRENCY`` clients, each sending its next request as soon as the last one answered."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    times: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, limits=limits,
                                 timeout=60) as client:
        async def worker(w: int, stop: float, record: bool) -> None:
            nonlocal errors
            i = w
            while time.perf_counter() < stop:
                lon, lat = pts[i % len(pts)]
                i += CONCURRENCY
                t = time.perf_counter()
                r = await client.get("/lookup", params={"lon": lon, "lat": lat})
                dt = time.perf_counter() - t
                if r.status_code != 200:
                    errors += 1
                elif record:
                    times.append(dt)

        warm = time.perf_counter() + 1.5  # open the connections and fill the server's pool first
        await asyncio.gather(*(worker(w, warm, False) for w in range(CONCURRENCY)))
        start = time.perf_counter()
        await asyncio.gather(*(worker(w, start + seconds, True) for w in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return times, errors, elapsed


def main() -> None:
    console = Console(width=140)
    url = os.environ.get("GEOGRID_DATABASE_URL")
    if not url:
        raise SystemExit("set GEOGRID_DATABASE_URL to a bench database (make bench does)")
    ensure_city(url, console)
    engine = make_engine(url)
    with engine.connect() as conn:
        n_grids = conn.execute(text("SELECT count(*) FROM grids g JOIN plans p ON p.id = g.plan_id "
                                    "WHERE p.status = 'active'")).scalar()
        n_posts = conn.execute(text("SELECT count(*) FROM posts")).scalar()
    pts = sample_points(engine)
    sql = sql_times(engine, pts)
    sql_batch = sql_times(engine, pts, batch=BATCH, repeats=BATCH_REPEATS)
    engine.dispose()

    workers = os.cpu_count() or 1
    with geogrid_server(url, f"{KEY}:integrator", workers) as srv, httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {KEY}"},
                                                   timeout=60) as client:
        health = single_times(client, pts, "/health")
        single = single_times(client, pts)
        batch = batch_times(client, pts)
    by_workers = {}
    for n_workers in sorted({1, workers}, reverse=True):
        with geogrid_server(url, f"{KEY}:integrator", n_workers) as srv:
            if n_workers == 1:
                with httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
                    cpu0 = _cpu_seconds(srv.proc.pid)
                    single_times(client, pts)
                    cpu_per_request = (_cpu_seconds(srv.proc.pid) - cpu0) / (WARMUP + SINGLE_REPEATS)
            with console.status(f"{CONCURRENCY} concurrent clients for {LOAD_SECONDS:g} s, {n_workers} worker(s)"):
                if shutil.which("wrk"):
                    generator = "wrk"
                    p50, p99, n, elapsed, errors = _wrk(srv.base, pts, LOAD_SECONDS)
                else:
                    generator = "python asyncio + httpx"
                    loaded, errors, elapsed = asyncio.run(_load(srv.base, pts, LOAD_SECONDS))
                    p50, p99, n = _pct(loaded, 50), _pct(loaded, 99), len(loaded)
        if errors:
            raise SystemExit(f"{errors} failed requests under load")
        by_workers[n_workers] = {"workers": n_workers, "rps": round(n / elapsed, 1), "p50_ms": round(p50, 2),
                                 "p99_ms": round(p99, 2), "requests": n, "seconds": round(elapsed, 2)}
    main_run = by_workers[workers]

    result = {
        "concurrency": CONCURRENCY,
        **{k: main_run[k] for k in ("rps", "p50_ms", "p99_ms", "requests", "seconds", "workers")},
        "load_generator": generator,
        "by_workers": list(by_workers.values()),
        "single_ms_p50": round(_pct(single, 50), 2),
        "single_ms_p99": round(_pct(single, 99), 2),
        "sql_ms_p50": round(_pct(sql, 50), 3),
        "sql_ms_p99": round(_pct(sql, 99), 3),
        "ratio": round(statistics.median(single) / statistics.median(sql), 2),
        "sql_rps_one_connection": round(1 / statistics.mean(sql), 1),
        "server_cpu_ms_per_request": round(cpu_per_request * 1000, 2),
        "health_ms_p50": round(_pct(health, 50), 2),
        "batch": {"points": BATCH, "api_ms_p50": round(_pct(batch, 50), 2),
                  "sql_ms_p50": round(_pct(sql_batch, 50), 2),
                  "ratio": round(statistics.median(batch) / statistics.median(sql_batch), 2),
                  "api_points_per_s": round(BATCH / statistics.median(batch), 0)},
        "city": {"grids": n_grids, "posts": n_posts, "points": len(pts)},
        "server": f"geogrid serve, {workers} uvicorn worker(s); load generator on the same machine",
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")

    t = Table("measure", "p50 ms", "p99 ms", "per s", title=f"lookup on {n_grids} grids, {n_posts} posts")
    t.add_row("bare SQL, 1 point", f"{result['sql_ms_p50']:.2f}", f"{result['sql_ms_p99']:.2f}",
              f"{result['sql_rps_one_connection']:.0f}")
    t.add_row("GET /health, 1 client (floor)", f"{result['health_ms_p50']:.2f}", "", "")
    t.add_row("GET /lookup, 1 client", f"{result['single_ms_p50']:.2f}", f"{result['single_ms_p99']:.2f}", "")
    for r in by_workers.values():
        t.add_row(f"GET /lookup, {CONCURRENCY} clients, {r['workers']} worker(s)", f"{r['p50_ms']:.2f}",
                  f"{r['p99_ms']:.2f}", f"{r['rps']:.0f}")
    t.add_row(f"bare SQL, {BATCH} points", f"{result['batch']['sql_ms_p50']:.2f}", "", "")
    t.add_row(f"POST /lookup, {BATCH} points", f"{result['batch']['api_ms_p50']:.2f}", "",
              f"{result['batch']['api_points_per_s']:.0f} points")
    console.print(t)
    console.print(f"API / SQL (1 client, p50): {result['ratio']:.2f}; batch API / SQL: {result['batch']['ratio']:.2f}; "
                  f"server CPU {result['server_cpu_ms_per_request']:.2f} ms per lookup; "
                  f"load average {result['load_avg_1min']} on {result['cpus']} CPUs")
    console.print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
