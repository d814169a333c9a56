"""Benchmark: plan_analysis (tiers, staffing, beats, coverage — what a plan preview computes) and
run_planning on the 860-grid demo city, against reading the same inputs from the database.

Measured in one run:

* ``read_seconds`` — the reference: reading the analysis inputs from PostGIS (the plan's grids, every
  incident, the posts), best of ``REPEATS``;
* ``analysis_seconds`` — ``plan_analysis`` of the active plan, first call in the process (the H3 cells of
  each grid not yet remembered), and ``analysis_warm_seconds`` — a second call (what a preview of a draft
  that shares most grids with the active plan pays); ``ratio`` = analysis / read;
* ``kinds_seconds`` — each kind alone (tiers; coverage; beats, which includes the tiers it needs), warm;
* ``run_planning_seconds`` — analysis plus storing every kind, in a transaction rolled back afterwards.

Beats get the preview's budget (``BEATS_SECONDS``, as ``geogrid.plan_preview.preview_plan``); the search
stops earlier when it cannot improve (``BalancedBeats.patience``), and ``beats_search_seconds`` says how
long it took. The demo city (seed 42, 100,000 incidents, as ``bench/tiles.py`` and ``bench/lookup.py``
load it) and a hot-spot run are created when missing.

Run: ``GEOGRID_DATABASE_URL=... .venv/bin/python bench/planning.py`` → ``bench/results/planning.json``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geogrid.store import make_engine  # noqa: E402

SEED = 42
N_INCIDENTS = 100_000
BEATS_SECONDS = 2.0
REPEATS = 3
OUT = ROOT / "bench" / "results" / "planning.json"


def ensure_city(engine, url: str, console: Console) -> None:
    """Migrate; load the demo city when there are no grids (posts and staff too) and run hot spots once."""
    from geogrid.demo import PROFILE, load_city_files, write_city
    from geogrid.runs import Window, run_hotspots
    from geogrid.store.migrate import init_db

    init_db(url)
    with engine.connect() as conn:
        n_grids = conn.execute(text("SELECT count(*) FROM grids")).scalar()
        n_posts = conn.execute(text("SELECT count(*) FROM posts")).scalar()
        n_hot = conn.execute(text("SELECT count(*) FROM analysis_runs WHERE kind = 'hotspots' "
                                  "AND finished_at IS NOT NULL")).scalar()
    if not n_grids:
        with console.status(f"loading the demo city ({N_INCIDENTS:,} incidents)"), tempfile.TemporaryDirectory() as d:
            load_city_files(engine, write_city(d, seed=SEED, n_incidents=N_INCIDENTS))
    elif not n_posts:  # bench/ingest.py loads the grids alone
        from geogrid.ingest.fields import Profile
        from geogrid.ingest.posts import load_posts, load_staff

        with tempfile.TemporaryDirectory() as d:
            files = write_city(d, seed=SEED, n_incidents=10)
            prof = Profile.from_file(PROFILE, "posts")
            load_posts(engine, files["posts"], prof.fields, source=prof.source, crs=prof.crs)
            load_staff(engine, files["staff"], Profile.from_file(PROFILE, "staff").fields)
    if not n_hot:
        with console.status("hot spots (once, so tiers use the hot spot share)"), engine.begin() as conn:
            run_hotspots(conn, Window())


def read_inputs(conn) -> float:
    from geogrid.planning_runs import read_posts
    from geogrid.store.grids import read_grids
    from geogrid.store.read import read_incidents

    t0 = time.perf_counter()
    read_grids(conn)
    read_incidents(conn)
    read_posts(conn)
    return time.perf_counter() - t0


def main() -> None:
    console = Console()
    url = os.environ.get("GEOGRID_DATABASE_URL")
    if not url:
        sys.exit("set GEOGRID_DATABASE_URL (make bench provisions geogrid_bench)")
    engine = make_engine(url)
    ensure_city(engine, url, console)
    from geogrid.planning_runs import plan_analysis, run_planning

    with engine.connect() as conn:
        grids, incidents, posts, officers = (conn.execute(text(q)).scalar() for q in (
            "SELECT count(*) FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'active'",
            "SELECT count(*) FROM incidents", "SELECT count(*) FROM posts",
            "SELECT count(*) FROM staff WHERE role = 'officer'"))
        read = min(read_inputs(conn) for _ in range(REPEATS))
        t0 = time.perf_counter()
        a = plan_analysis(conn, beats_seconds=BEATS_SECONDS)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        a = plan_analysis(conn, beats_seconds=BEATS_SECONDS)
        warm = time.perf_counter() - t0
        kinds = {}
        for kind in ("tiers", "coverage", "beats"):
            t0 = time.perf_counter()
            plan_analysis(conn, kinds=[kind], beats_seconds=BEATS_SECONDS)
            kinds[kind] = round(time.perf_counter() - t0, 3)
    with engine.connect() as conn:
        tx = conn.begin()
        t0 = time.perf_counter()
        run_planning(conn, beats_seconds=BEATS_SECONDS)
        stored = time.perf_counter() - t0
        tx.rollback()
    beats = a.summary.get("beats", {})
    row = {"grids": grids, "incidents": incidents, "posts": posts, "officers": officers,
           "read_seconds": round(read, 3), "analysis_seconds": round(cold, 3),
           "analysis_warm_seconds": round(warm, 3), "ratio": round(cold / read, 2),
           "warm_ratio": round(warm / read, 2), "kinds_seconds": kinds,
           "run_planning_seconds": round(stored, 3), "beats_budget_seconds": BEATS_SECONDS,
           "beats_search_seconds": beats.get("seconds"), "beats_max_abs_dev": beats.get("max_abs_dev"),
           "beats_lower_bound_dev": beats.get("lower_bound_dev"), "cpu_count": os.cpu_count(),
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(row, indent=2))
    t = Table("measure", "seconds", "× read", title=f"plan_analysis on {grids} grids, {incidents:,} incidents")
    t.add_row("read inputs (reference)", f"{read:.2f}", "1.00")
    t.add_row("plan_analysis, first call", f"{cold:.2f}", f"{cold / read:.2f}")
    t.add_row("plan_analysis, again", f"{warm:.2f}", f"{warm / read:.2f}")
    for k, v in kinds.items():
        t.add_row(f"  {k} alone", f"{v:.2f}", f"{v / read:.2f}")
    t.add_row("run_planning (stored, rolled back)", f"{stored:.2f}", f"{stored / read:.2f}")
    console.print(t)
    console.print(f"beats search {beats.get('seconds')} s of a {BEATS_SECONDS} s budget; "
                  f"max deviation {beats.get('max_abs_dev')} (bound {beats.get('lower_bound_dev')})")
    console.print(f"written {OUT}")


if __name__ == "__main__":
    main()
