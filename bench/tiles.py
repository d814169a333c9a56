"""Benchmark: vector tiles of the demo city — API against bare SQL and against TiPG, in one run.

For the same tile at zooms 12 and 14 over the densest spot of the demo city (the H3 cell with most
incidents), for the ``incidents`` and ``grids`` collections:

* ``sql_ms_p50``: the API's own tile SQL (``api.mvt``), run bare on one connection, alternating
  with the API requests so both see the same load;
* ``api_ms_p50``: ``geogrid serve`` (a uvicorn subprocess) with the tile cache off, so every request
  builds the tile; ``ratio`` = api / sql, goal ``api <= 1.3 x sql + 3 ms``;
* ``repeat_etag_ms_p50`` (304 on If-None-Match) and ``repeat_cached_ms_p50`` (LRU hit), cache on;
* ``api_rps`` (cache off: every request builds the tile, like TiPG) and ``api_rps_cached``, and
  ``tipg_rps``: TiPG 1.6.1 serving the same table (same properties, no feature cap), from its own
  virtualenv ``bench/.venv-tipg`` made here so our lock never changes. Same clients, same run.

Incidents at z12 are H3 cell counts for every role (raw points start at z13); TiPG serves raw
points there, so that row's TiPG figure is not like for like (``tipg_note``).

Run: ``GEOGRID_DATABASE_URL=... .venv/bin/python bench/tiles.py`` → ``bench/results/tiles.json``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import http.client

import morecantile
from rich.console import Console
from rich.table import Table
from sqlalchemy import make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api import mvt  # noqa: E402
from bench.common.server import Server, geogrid_server as serve_geogrid  # noqa: E402
from api.app import API_PG_OPTIONS  # noqa: E402
from api.collections import COLLECTIONS  # noqa: E402
from geogrid.store import make_engine  # noqa: E402

SEED = 42
N_INCIDENTS = 100_000  # a modest year for the 860-grid demo city
ZOOMS = (12, 14)
CASES = [("incidents", z) for z in ZOOMS] + [("grids", z) for z in ZOOMS]
REPEATS = 15
WARMUP = 3
CONCURRENCY = 4
LOAD_SECONDS = 4.0
TIPG_VERSION = "1.6.1"
TIPG_VENV = ROOT / "bench" / ".venv-tipg"
KEY = "bench-admin-key-0123456789"
OUT = ROOT / "bench" / "results" / "tiles.json"
TMS = morecantile.tms.get("WebMercatorQuad")


def ensure_city(url: str, console: Console) -> None:
    """Migrate, and load the demo city (860 grids, ``N_INCIDENTS`` incidents) when there are no grids."""
    from geogrid.store.migrate import init_db

    init_db(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM grids")).scalar()
    if not n:
        from geogrid.demo import load_city_files, write_city

        with console.status(f"loading the demo city ({N_INCIDENTS:,} incidents)"), tempfile.TemporaryDirectory() as d:
            load_city_files(engine, write_city(d, seed=SEED, n_incidents=N_INCIDENTS))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE incidents; ANALYZE grids"))
    engine.dispose()


def densest_point(engine) -> tuple[float, float]:
    """Centre of the incidents of the H3 cell holding most of them."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c, count(*) AS n "
            "FROM incidents GROUP BY h3 ORDER BY n DESC LIMIT 1) s")).first()
    if row is None:
        raise SystemExit("no incidents in the bench database")
    return float(row[0]), float(row[1])


class LeanClient:
    """A keep-alive HTTP/1.1 client on the standard library: a few microseconds a request.

    Latency here is the server's: httpx costs the client ~0.3-0.5 ms a request in Python, which is
    no part of the API's answer time and, on two shared cores, also slows the server under load.
    """

    class Answer:
        def __init__(self, status: int, headers: dict, content: bytes) -> None:
            self.status_code, self.headers, self.content = status, headers, content

        @property
        def text(self) -> str:
            return self.content.decode(errors="replace")

    def __init__(self, base: str, headers: dict | None = None, timeout: float = 60) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.headers = dict(headers or {})

    def get(self, path: str, headers: dict | None = None) -> "LeanClient.Answer":
        self.conn.request("GET", path, headers={**self.headers, **(headers or {})})
        r = self.conn.getresponse()
        body = r.read()
        return self.Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, body)

    def __enter__(self) -> "LeanClient":
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()


def tile_sql(conn, coll_id: str, addr: mvt.TileAddress) -> bytes:
    """The API's own SQL for the tile (an admin's variant), run bare on ``conn``."""
    coll = COLLECTIONS[coll_id]
    f = mvt.TileFilters()
    if coll_id == "incidents" and addr.z < mvt.RAW_MIN_ZOOM:
        from geogrid.store.incidents import h3_resolution

        base = h3_resolution(conn)
        return mvt.render_cells(conn, coll, addr, f, mvt.cell_resolution(addr.z, base), base, 1)
    sql, binds = mvt.features_query(conn, coll, addr, f)
    return mvt.fetch_tile(conn, sql, binds)


def sql_and_api_p50(engine, client: LeanClient, coll_id: str, addr: mvt.TileAddress) -> tuple[float, float, int]:
    """Medians (ms) of the bare SQL and of the API request for the same tile, alternated so that both
    see the same load on a shared machine; and the tile size."""
    sql_t, api_t, size = [], [], 0
    with engine.connect() as conn:
        for i in range(WARMUP + REPEATS):
            t = time.perf_counter()
            size = len(tile_sql(conn, coll_id, addr))
            t1 = time.perf_counter()
            r = client.get(tile_path(coll_id, addr))
            _ = r.content
            t2 = time.perf_counter()
            if r.status_code != 200:
                raise SystemExit(f"{coll_id} {addr}: {r.status_code} {r.text[:300]}")
            if i >= WARMUP:
                sql_t.append(t1 - t)
                api_t.append(t2 - t1)
    return statistics.median(sql_t) * 1000, statistics.median(api_t) * 1000, size


def geogrid_server(url: str, cache_bytes: int) -> Server:
    return serve_geogrid(url, f"{KEY}:admin", GEOGRID_TILE_CACHE_BYTES=str(cache_bytes))


def tipg_python(console: Console) -> Path:
    """TiPG's interpreter, in its own virtualenv (made once) so it never touches our pins."""
    py = TIPG_VENV / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", f"import tipg, uvicorn; assert tipg.__version__ == '{TIPG_VERSION}'"],
                                        capture_output=True).returncode == 0
    if not ok:
        with console.status(f"installing tipg=={TIPG_VERSION} into {TIPG_VENV}"):
            subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
            (TIPG_VENV / ".gitignore").write_text("*\n")
            subprocess.run([str(py), "-m", "pip", "install", "-q", f"tipg=={TIPG_VERSION}", "uvicorn[standard]"], check=True)
    return py


def tipg_server(py: Path, url: str) -> Server:
    u = make_url(url)
    dsn = f"postgresql://{u.username}:{u.password}@{u.host}:{u.port or 5432}/{u.database}"
    env = dict(os.environ, DATABASE_URL=dsn, TIPG_DB_TABLES='["public.incidents","public.grids"]',
               TIPG_MAX_FEATURES_PER_TILE="100000000", TIPG_DB_SPATIAL_EXTENT="false",
               TIPG_DB_DATETIME_EXTENT="false")
    return Server([str(py), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--log-level", "warning",
                   "--no-access-log"], env, "/healthz", "tipg")


def p50_ms(client: LeanClient, url: str, headers: dict | None = None, expect: int = 200) -> float:
    return p50_client_server(client, url, headers, expect)[0]


def p50_client_server(client: LeanClient, url: str, headers: dict | None = None,
                      expect: int = 200) -> tuple[float, float | None]:
    """Median ms as the client sees it, and median of the server's own ``Server-Timing`` (None if absent)."""
    times, server = [], []
    for i in range(WARMUP + REPEATS):
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        if r.status_code != expect:
            raise SystemExit(f"{url}: {r.status_code} {r.text[:300]}")
        _ = r.content
        if i >= WARMUP:
            times.append(time.perf_counter() - t)
            st = r.headers.get("server-timing", "")
            if "dur=" in st:
                server.append(float(st.split("dur=")[1].split(";")[0].split(",")[0]))
    return statistics.median(times) * 1000, (statistics.median(server) if server else None)


def rps(base: str, path: str, headers: dict) -> float:
    """Requests per second of ``CONCURRENCY`` clients looping on ``url`` for ``LOAD_SECONDS``."""
    done, errors = [0] * CONCURRENCY, [0] * CONCURRENCY
    stop = time.perf_counter() + LOAD_SECONDS

    def loop(i: int) -> None:
        with LeanClient(base, headers) as c:
            while time.perf_counter() < stop:
                r = c.get(path)
                _ = r.content
                if r.status_code == 200:
                    done[i] += 1
                else:
                    errors[i] += 1

    t = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONCURRENCY)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if sum(errors):
        raise SystemExit(f"{path}: {sum(errors)} failed requests under load")
    return sum(done) / (time.perf_counter() - t)


def tile_path(coll: str, addr: mvt.TileAddress) -> str:
    return f"/collections/{coll}/tiles/WebMercatorQuad/{addr.z}/{addr.x}/{addr.y}"


def main() -> None:
    console = Console(width=160)
    url = os.environ.get("GEOGRID_DATABASE_URL")
    if not url:
        raise SystemExit("set GEOGRID_DATABASE_URL to a bench database (make bench does)")
    ensure_city(url, console)
    engine = make_engine(url, API_PG_OPTIONS)  # the bare SQL runs with the API's own session settings
    lon, lat = densest_point(engine)
    addrs = {z: mvt.tile_address(*(lambda t: (t.z, t.x, t.y))(TMS.tile(lon, lat, z))) for z in ZOOMS}
    auth = {"Authorization": f"Bearer {KEY}"}
    rows = {}
    with geogrid_server(url, 0) as srv, LeanClient(srv.base, auth) as c:
        for coll, z in CASES:
            sql_ms, api_ms, size = sql_and_api_p50(engine, c, coll, addrs[z])
            rows[(coll, z)] = {
                "collection": coll, "z": z, "x": addrs[z].x, "y": addrs[z].y, "sql_ms_p50": round(sql_ms, 2),
                "api_ms_p50": round(api_ms, 2), "tile_bytes": size,
                "api_kind": "h3-cells" if coll == "incidents" and z < mvt.RAW_MIN_ZOOM else "features"}
            rows[(coll, z)]["api_rps"] = round(rps(srv.base, tile_path(coll, addrs[z]), auth), 1)
    engine.dispose()
    with geogrid_server(url, 64 * 1024 * 1024) as srv, LeanClient(srv.base, auth) as c:
        for (coll, z), row in rows.items():
            path = tile_path(coll, addrs[z])
            etag = c.get(path).headers["etag"]
            client_ms, server_ms = p50_client_server(c, path, {"If-None-Match": etag}, expect=304)
            row["repeat_etag_ms_p50"], row["repeat_etag_server_ms_p50"] = round(client_ms, 2), round(server_ms, 2)
            client_ms, server_ms = p50_client_server(c, path)
            row["repeat_cached_ms_p50"], row["repeat_cached_server_ms_p50"] = round(client_ms, 2), round(server_ms, 2)
            # the floor of this client and server: /health (one tiny query, no tile work)
            row["health_ms_p50"] = round(p50_ms(c, "/health"), 2)
            row["api_rps_cached"] = round(rps(srv.base, path, auth), 1)
    py = tipg_python(console)
    props = {c: ",".join(COLLECTIONS[c].properties) for c in ("incidents", "grids")}
    with tipg_server(py, url) as srv, LeanClient(srv.base) as c:
        for (coll, z), row in rows.items():
            a = addrs[z]
            path = f"/collections/public.{coll}/tiles/WebMercatorQuad/{a.z}/{a.x}/{a.y}?properties={props[coll]}"
            row["tipg_ms_p50"] = round(p50_ms(c, path), 2)
            row["tipg_rps"] = round(rps(srv.base, path, {}), 1)
            row["tipg_bytes"] = len(c.get(path).content)
            if row["api_kind"] != "features":
                row["tipg_note"] = "TiPG serves raw points here, the API H3 cells: not like for like"

    out = []
    for row in rows.values():
        row["ratio"] = round(row["api_ms_p50"] / row["sql_ms_p50"], 3)
        row["goal_ms"] = round(1.3 * row["sql_ms_p50"] + 3, 2)
        row["meets_goal"] = row["api_ms_p50"] <= row["goal_ms"]
        row["rps_vs_tipg"] = round(row["api_rps"] / row["tipg_rps"], 2)
        out.append(row)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")

    t = Table("layer", "z", "kind", "KiB", "SQL ms", "API ms", "ratio", "goal ms", "304 ms", "cached ms",
              "API rps", "cached rps", "TiPG rps", title=f"vector tiles at ({lon:.4f}, {lat:.4f}), {CONCURRENCY} clients")
    for r in out:
        t.add_row(r["collection"], str(r["z"]), r["api_kind"], f"{r['tile_bytes'] / 1024:.0f}", f"{r['sql_ms_p50']:.1f}",
                  f"{r['api_ms_p50']:.1f}", f"{r['ratio']:.2f}", f"{r['goal_ms']:.1f}", f"{r['repeat_etag_ms_p50']:.2f}",
                  f"{r['repeat_cached_ms_p50']:.2f}", f"{r['api_rps']:.0f}", f"{r['api_rps_cached']:.0f}",
                  f"{r['tipg_rps']:.0f}")
    console.print(t)
    console.print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
