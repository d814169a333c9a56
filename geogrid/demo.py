"""The demo city as files (as a real export would arrive) and the end-to-end demo job."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from geogrid.crs import from_wgs84


def write_city(out: str | Path, seed: int = 42, n_incidents: int = 200_000, city=None,
               roads: bool = True) -> dict[str, Path]:
    """Generate the demo city (or take ``city``) and write it as files: grids (GeoPackage), posts
    (GeoJSON), staff (CSV), incidents (CSV in GCJ-02, as exported from an AMap-based dispatch system)
    and, with ``roads``, a generated road network (GeoPackage, :func:`geogrid.roads.generate_roads`)."""
    from geogrid.generate import generate_city

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    city = city if city is not None else generate_city(seed=seed, n_incidents=n_incidents)
    files = {k: out / f for k, f in (("grids", "grids.gpkg"), ("posts", "posts.geojson"),
                                     ("staff", "staff.csv"), ("incidents", "incidents_gcj02.csv"))}
    grids = city.grids.copy()
    grids["key_areas"] = grids["key_areas"].map(lambda v: ",".join(v))
    grids.to_file(files["grids"], driver="GPKG", engine="pyogrio")
    city.posts.to_file(files["posts"], driver="GeoJSON", engine="pyogrio")
    city.staff.to_csv(files["staff"], index=False)
    inc = city.incidents
    lon, lat = from_wgs84(inc.geometry.x.to_numpy(), inc.geometry.y.to_numpy(), "gcj02")
    pd.DataFrame({
        "警情编号": inc["external_id"],
        "报警时间": inc["occurred_at"].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "警情类别": inc["category"],
        "紧急程度": inc["priority"].map({"urgent": "紧急", "normal": "一般"}),
        "来源": inc["origin"].map({"reported": "群众报警", "discovered": "巡逻发现"}),
        "经度": lon.round(6),
        "纬度": lat.round(6),
    }).to_csv(files["incidents"], index=False)
    if roads:
        from geogrid.roads import generate_roads

        files["roads"] = out / "roads.gpkg"
        generate_roads(city.grids, seed=seed).to_file(files["roads"], driver="GPKG", engine="pyogrio")
    return files


def load_city_files(engine, files: dict[str, Path], progress: bool = False, roads: bool = False) -> dict:
    """Load the demo city files through the same ingest path users have; returns the results by kind.

    ``roads``: also load the generated road network (source ``demo-roads``), after which coverage and
    siting use network travel times (``--travel auto``). Off by default so that callers loading a city
    for other analyses keep the straight-line model."""
    from geogrid.ingest.fields import Profile
    from geogrid.ingest.grids import load_grids
    from geogrid.ingest.incidents import load_incidents
    from geogrid.ingest.posts import load_posts, load_staff
    from geogrid.ingest.roads import load_roads

    out = {}
    for kind in ("grids", "posts", "staff", "incidents"):
        prof = Profile.from_file(PROFILE, kind)
        if kind == "grids":
            out[kind] = load_grids(engine, files[kind], prof.fields, plan=prof.source, crs=prof.crs, activate=True,
                                   defaults=prof.defaults)
        elif kind == "posts":
            out[kind] = load_posts(engine, files[kind], prof.fields, source=prof.source, crs=prof.crs)
        elif kind == "staff":
            out[kind] = load_staff(engine, files[kind], prof.fields)
        else:
            out[kind] = load_incidents(engine, files[kind], prof.fields, source=prof.source, crs=prof.crs,
                                       tz=prof.timezone, progress=progress, defaults=prof.defaults)
    if roads and "roads" in files:
        out["roads"] = load_roads(engine, files["roads"], source="demo-roads", speed="speed_kmh", kind="kind")
    return out


PROFILE = Path(__file__).resolve().parents[1] / "data" / "profiles" / "demo.toml"


def run_demo(engine, out: Path, seed: int, n_incidents: int, console, database_url: str) -> None:
    """Generate, load through the same ingest path users have, and print what was loaded."""
    from rich.table import Table

    from geogrid.store.migrate import init_db
    from geogrid.store.status import table_counts

    init_db(database_url)
    with console.status(f"generating the demo city (seed {seed}, {n_incidents:,} incidents)"):
        files = write_city(out, seed=seed, n_incidents=n_incidents)
    loaded = load_city_files(engine, files, progress=True, roads=True)
    rejected = {k: r.rejected for k, r in loaded.items()}
    for kind, res in loaded.items():
        console.print(f"loaded {kind}: {res.rows_loaded:,} of {res.rows_read:,} rows "
                      f"(new {res.inserted:,}, changed {res.updated:,}, rejected {res.rejected:,})")
    with engine.connect() as conn:
        counts, plan = table_counts(conn)
    t = Table("table", "rows", "rejected at load", title=f"geogrid demo city — active plan {plan}")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}", f"{rejected.get(k, '')}")
    console.print(t)
    maps_dir = Path("maps")
    analyses = run_demo_analyses(engine, maps_dir, console)
    console.print("Where to look next:")
    console.print(f"  files loaded:        {out}/")
    for name, path in analyses.items():
        console.print(f"  {name + ':':<20} {path}")
    console.print("  counts any time:     geogrid status")
    console.print("  load your own data:  geogrid ingest grids|incidents|posts|staff|roads PATH --help")


def run_demo_analyses(engine, maps_dir: Path, console) -> dict[str, Path]:
    """Hot spots, emerging hot spots, clusters and time patterns on the demo city, with offline maps."""
    import maps.layers as layers
    from geogrid.runs import Window, run_clusters, run_emerging, run_forecast, run_hotspots, run_patterns
    from geogrid.store import results
    from geogrid.store.grids import read_grids

    window = Window()
    out: dict[str, Path] = {}
    with console.status("hot spots (Gi*, FDR), emerging hot spots, clusters, time patterns"):
        with engine.begin() as conn:
            hs_run, hs = run_hotspots(conn, window, res=9, k=2)
            em_run, em = run_emerging(conn, window, res=9, k=1, period="M")
            cl_run, cl = run_clusters(conn, window)
            _, pt = run_patterns(conn, window, maps_dir / "patterns")
        with engine.connect() as conn:
            grids = read_grids(conn)
            hot = results.read_results(conn, "hotspot_cells", hs_run)
            emerging = results.read_results(conn, "emerging_cells", em_run)
    layers.hotspot_map(hot[hot["gi_bin"] != 0], maps_dir / "hotspots.html", grids=grids)
    layers.emerging_map(emerging[emerging["hot_or_cold"].notna()], maps_dir / "emerging.html", grids=grids)
    console.print(f"hot spots: {hs['bins']} (Gi_Bin class: cells) at res 9, k 2")
    console.print(f"emerging: {em['patterns']}")
    console.print(f"clusters: {cl['clusters']} ({cl['clustered_share']:.0%} of incidents)")
    console.print(f"time: {pt['citywide']['en']}")
    for code in ("neighbour_dispute", "theft", "telecom_fraud"):
        if code in pt["groups"]:
            console.print(f"      {pt['groups'][code]['en']} / {pt['groups'][code]['zh-CN']}")
    with console.status("forecast (KDE, next 7 and 28 days)"):
        with engine.begin() as conn:
            _, fc = run_forecast(conn, window, horizons=(7, 28), methods=("kde",))
    console.print(f"forecast: {_brief(fc)}")
    try:  # tiers, staffing, beats and coverage for the active plan
        from geogrid.planning_runs import run_planning
    except ImportError:  # pragma: no cover - planning not installed
        run_planning = None
    if run_planning is not None:
        from geogrid.planning_runs import KINDS

        with console.status("tiers, staffing and allocation, beats, coverage (road network), siting"):
            with engine.begin() as conn:
                runs = run_planning(conn, kinds=(*KINDS, "siting"))
        console.print(f"planning runs stored: {runs}")
    out["hot spot map"] = maps_dir / "hotspots.html"
    out["emerging map"] = maps_dir / "emerging.html"
    out["time patterns"] = maps_dir / "patterns/"
    return out


def _brief(summary: dict) -> str:
    keys = [k for k in ("flagged", "cells", "horizons", "methods") if k in summary]
    return ", ".join(f"{k} {summary[k]}" for k in keys) or "stored"
