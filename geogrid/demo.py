"""The demo city as files (as a real export would arrive) and the end-to-end demo job."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from geogrid.crs import from_wgs84


def write_city(out: str | Path, seed: int = 42, n_incidents: int = 200_000, city=None) -> dict[str, Path]:
    """Generate the demo city (or take ``city``) and write it as files: grids (GeoPackage), posts
    (GeoJSON), staff (CSV) and incidents (CSV in GCJ-02, as exported from an AMap-based dispatch system)."""
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
    return files


def load_city_files(engine, files: dict[str, Path], progress: bool = False) -> dict:
    """Load the demo city files through the same ingest path users have; returns the results by kind."""
    from geogrid.ingest.fields import Profile
    from geogrid.ingest.grids import load_grids
    from geogrid.ingest.incidents import load_incidents
    from geogrid.ingest.posts import load_posts, load_staff

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
    loaded = load_city_files(engine, files, progress=True)
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
    console.print("Where to look next:")
    console.print(f"  files loaded:        {out}/")
    console.print("  counts any time:     geogrid status")
    console.print("  load your own data:  geogrid ingest grids|incidents|posts|staff PATH --help")
