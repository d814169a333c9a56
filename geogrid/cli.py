"""`geogrid …` — thin: parse options, call the library and the store, print, show progress."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from geogrid.errors import GeogridError

app = typer.Typer(help="geogrid: the spatial core of police–grid governance (警网融合).", no_args_is_help=True)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load files into the store (GeoJSON, GeoPackage, zipped Shapefile, CSV, GeoParquet).",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
console = Console()
err = Console(stderr=True)


def _settings():
    from geogrid.settings import get_settings

    return get_settings()


def _engine():
    from geogrid.store import make_engine

    return make_engine(_settings().database_url)


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(2)


@db_app.command("init")
def db_init() -> None:
    """Create the PostGIS extension (when allowed) and run `alembic upgrade head` on GEOGRID_DATABASE_URL."""
    from geogrid.store.migrate import init_db

    try:
        init_db(_settings().database_url)
    except Exception as e:  # connection refused, permission denied: say it plainly
        _fail(e)
    console.print("database ready (PostGIS + migrations at head)")


Opt = Annotated[Optional[str], typer.Option()]


def _fields(profile_path, section, **flags):
    """The profile's ``[section]`` (if any) with the command-line field options laid over it."""
    from geogrid.ingest.fields import Profile

    prof = _run(lambda: Profile.from_file(profile_path, section)) if profile_path else Profile()
    return prof, prof.fields.merged(**flags)


def _print_result(kind: str, path: Path, res) -> None:
    log = res.log
    console.print(
        f"[bold]{kind}[/] {path.name}: read {res.rows_read:,}, loaded {res.rows_loaded:,} "
        f"(new {res.inserted:,}, changed {res.updated:,}, unchanged {res.rows_loaded - res.inserted - res.updated:,}), "
        f"rejected {res.rejected:,}"
    )
    if log is not None and log.reasons:
        t = Table("field: reason", "rows", title="rejected rows by reason")
        for reason, n in log.reasons.most_common(10):
            t.add_row(reason, f"{n:,}")
        console.print(t)
        for row, field, reason, value in log.first(3):
            console.print(f"  row {row}, field {field}: {reason} [dim]{value}[/]")
        console.print(f"  every rejected row: {res.report_path}")
    if log is not None and log.warnings:
        for w, n in log.warnings.most_common(5):
            console.print(f"  [yellow]warning[/] {w}" + (f" ({n:,} rows)" if n > 1 else ""))


def _run(fn):
    try:
        return fn()
    except GeogridError as e:
        _fail(e)


@ingest_app.command("incidents")
def ingest_incidents(
    path: Path,
    lon: Opt = None, lat: Opt = None, time: Opt = None, category: Opt = None, id: Opt = None,
    priority: Opt = None, origin: Opt = None,
    crs: Opt = None, source: Opt = None,
    category_map: Annotated[Optional[Path], typer.Option("--category-map")] = None,
    timezone: Annotated[Optional[str], typer.Option("--tz", help="zone of naive timestamps")] = None,
    profile: Annotated[Optional[Path], typer.Option(help="TOML profile with the field mapping")] = None,
    strict: bool = typer.Option(False, help="reject unknown categories and abort the whole load on any rejected row"),
    chunk_rows: int = typer.Option(100_000, help="rows per chunk (bounds memory: two chunks in memory at once)"),
    bulk: Optional[bool] = typer.Option(
        None, "--bulk/--no-bulk",
        help="drop and rebuild the incidents indexes around the load (faster for large loads, but readers "
             "of incidents wait until it ends); default: automatic, for loads of >= 50,000 rows and >= 20% "
             "of the rows already stored"),
) -> None:
    """Load incidents (points with time and category); upsert on source + id."""
    from geogrid.categories import CategoryMap
    from geogrid.ingest.incidents import load_incidents

    s = _settings()
    prof, f = _fields(profile, "incidents", lon=lon, lat=lat, time=time, category=category, id=id,
                      priority=priority, origin=origin)
    cm_path = category_map or prof.category_map
    res = _run(lambda: load_incidents(
        _engine(), path, f, source=source or prof.source or path.stem, crs=crs or prof.crs or "EPSG:4326",
        tz=timezone or prof.timezone or s.timezone,
        category_map=CategoryMap.from_file(cm_path) if cm_path else None, strict=strict,
        h3_res=s.h3_resolution, chunk_rows=chunk_rows, progress=True, defaults=prof.defaults, bulk=bulk))
    _print_result("incidents", path, res)


@ingest_app.command("grids")
def ingest_grids(
    path: Path,
    code: Opt = None, name: Opt = None, kind: Opt = None, population: Opt = None,
    key_areas: Annotated[Optional[str], typer.Option("--key-areas")] = None,
    post: Opt = None, district: Opt = None, crs: Opt = None,
    plan: Annotated[Optional[str], typer.Option(help="plan to load into (created when missing)")] = None,
    activate: Annotated[Optional[bool], typer.Option("--activate/--draft", help="default: activate when no plan is active")] = None,
    profile: Annotated[Optional[Path], typer.Option()] = None,
    strict: bool = typer.Option(False, help="reject invalid polygons instead of repairing; abort on any rejected row"),
) -> None:
    """Load grid polygons into a plan; upsert on code."""
    from geogrid.ingest.grids import load_grids

    prof, f = _fields(profile, "grids", code=code, name=name, kind=kind, population=population,
                      key_areas=key_areas, post=post, district=district)
    res = _run(lambda: load_grids(_engine(), path, f, plan=plan or prof.source or path.stem,
                                  crs=crs or prof.crs, strict=strict, activate=activate, defaults=prof.defaults,
                                  merge_parts=prof.merge_parts))
    _print_result("grids", path, res)
    if res.extra.get("activated"):
        console.print(f"  plan {res.extra['plan']!r} is now the active plan")


@ingest_app.command("posts")
def ingest_posts(
    path: Path, code: Opt = None, name: Opt = None, kind: Opt = None, station: Opt = None,
    lon: Opt = None, lat: Opt = None, crs: Opt = None, source: Opt = None,
    profile: Annotated[Optional[Path], typer.Option()] = None, strict: bool = False,
) -> None:
    """Load stations and posts (points); upsert on code."""
    from geogrid.ingest.posts import load_posts

    prof, f = _fields(profile, "posts", code=code, name=name, kind=kind, station=station, lon=lon, lat=lat)
    res = _run(lambda: load_posts(_engine(), path, f, source=source or prof.source or path.stem,
                                  crs=crs or prof.crs, strict=strict, defaults=prof.defaults))
    _print_result("posts", path, res)


@ingest_app.command("staff")
def ingest_staff(path: Path, code: Opt = None, role: Opt = None, post: Opt = None, grid: Opt = None,
                 name: Opt = None, strict: bool = False) -> None:
    """Load officers, auxiliaries and grid workers (CSV); upsert on code."""
    from geogrid.ingest.fields import FieldMap
    from geogrid.ingest.posts import load_staff

    res = _run(lambda: load_staff(_engine(), path, FieldMap(code=code, role=role, post=post, grid=grid, name=name),
                                  strict=strict))
    _print_result("staff", path, res)


@ingest_app.command("roads")
def ingest_roads(
    path: Path,
    speed: Annotated[Optional[str], typer.Option(help="column of the driving speed (km/h)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="column of the road class (gives the speed where none is given)")] = None,
    name: Annotated[Optional[str], typer.Option(help="column of the road name")] = None,
    oneway: Annotated[Optional[str], typer.Option(help="column of the one-way flag (stored; routing is undirected)")] = None,
    crs: Opt = None,
    source: Annotated[Optional[str], typer.Option(help="network name (default: file name); a re-load replaces it")] = None,
    default_speed: Annotated[Optional[float], typer.Option("--default-speed", help="km/h of rows with neither speed nor known kind")] = None,
    strict: bool = typer.Option(False, help="abort the whole load on any rejected row"),
) -> None:
    """Load a road network (LineStrings with a speed) for network travel times; replaces the same source."""
    from geogrid.ingest.roads import load_roads

    res = _run(lambda: load_roads(_engine(), path, source=source, speed=speed, kind=kind, name=name, oneway=oneway,
                                  crs=crs, default_kmh=default_speed, strict=strict))
    _print_result("roads", path, res)
    console.print(f"  source {res.extra['source']!r}: {res.rows_loaded:,} roads stored, "
                  f"{res.extra['replaced']:,} previous roads of that source replaced")


@app.command()
def generate(
    out: Path = typer.Option(Path("data/demo"), help="folder for the generated files"),
    seed: int = 42, incidents: int = 200_000,
) -> None:
    """Generate the demo city (grids, posts, staff, a year of incidents, a road network) as files, deterministic by seed."""
    from geogrid.demo import write_city

    with console.status("generating the demo city"):
        files = write_city(out, seed=seed, n_incidents=incidents)
    for k, p in files.items():
        console.print(f"  {k}: {p}")


@app.command()
def status() -> None:
    """Counts per table and the active plan."""
    from geogrid.store.status import table_counts

    eng = _engine()
    with eng.connect() as conn:
        counts, plan = table_counts(conn)
    t = Table("table", "rows", title="geogrid store")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    console.print(t)
    console.print(f"active plan: {plan or '(none)'}")


@app.command()
def demo(
    out: Path = typer.Option(Path("data/demo")), seed: int = 42, incidents: int = 200_000,
) -> None:
    """The main job end to end: generate the demo city, load it, and say where to look next."""
    from geogrid.demo import run_demo

    _run(lambda: run_demo(_engine(), out, seed=seed, n_incidents=incidents, console=console,
                          database_url=_settings().database_url))




analyze_app = typer.Typer(help="Analyses on the stored incidents; results are stored in PostGIS.", no_args_is_help=True)
app.add_typer(analyze_app, name="analyze")


def _window(start, end, category, origin):
    from geogrid.runs import Window

    return Window(start=start, end=end, categories=[c.strip() for c in category.split(",")] if category else None,
                  origin=origin, timezone=_settings().timezone)


WinStart = Annotated[Optional[str], typer.Option(help="first day (inclusive), e.g. 2025-01-01")]
WinEnd = Annotated[Optional[str], typer.Option(help="end (exclusive)")]
WinCat = Annotated[Optional[str], typer.Option("--category", help="canonical codes, comma-separated")]
WinOrigin = Annotated[Optional[str], typer.Option(help="reported|discovered")]


def _analyze(kind: str, fn) -> None:
    eng = _engine()
    try:
        with console.status(f"{kind}…"), eng.begin() as conn:
            run, summary = fn(conn)
    except GeogridError as e:
        _fail(e)
    console.print(f"[bold]{kind}[/] run {run}")
    console.print_json(data={k: v for k, v in summary.items() if k != "document"})


@analyze_app.command("hotspots")
def analyze_hotspots(res: Optional[int] = typer.Option(None, help="H3 resolution 7–10 (default: automatic)"),
                     k: Optional[int] = typer.Option(None, help="k-ring neighbourhood (default: automatic)"),
                     fdr: bool = typer.Option(True, help="Benjamini–Hochberg FDR correction"),
                     start: WinStart = None, end: WinEnd = None, category: WinCat = None,
                     origin: WinOrigin = None) -> None:
    """Getis-Ord Gi* hot and cold spots on H3 cells (ArcGIS Gi_Bin classes)."""
    from geogrid.runs import run_hotspots

    _analyze("hotspots", lambda c: run_hotspots(c, _window(start, end, category, origin), res, k, fdr))


@analyze_app.command("emerging")
def analyze_emerging(res: int = 9, k: int = 1, period: str = typer.Option("W", help="W (weekly) or M (monthly)"),
                     start: WinStart = None, end: WinEnd = None, category: WinCat = None,
                     origin: WinOrigin = None) -> None:
    """Emerging hot spots: new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating, historical."""
    from geogrid.runs import run_emerging

    _analyze("emerging", lambda c: run_emerging(c, _window(start, end, category, origin), res, k, period))


@analyze_app.command("clusters")
def analyze_clusters(method: str = "hdbscan", min_cluster_size: int = 25, seed: int = 0,
                     start: WinStart = None, end: WinEnd = None, category: WinCat = None,
                     origin: WinOrigin = None) -> None:
    """Density clusters of incidents as polygons with counts, dominant categories and peak hours."""
    from geogrid.runs import run_clusters

    _analyze("clusters", lambda c: run_clusters(c, _window(start, end, category, origin), method, min_cluster_size, seed))


@analyze_app.command("patterns")
def analyze_patterns(out: Path = typer.Option(Path("maps/patterns"), "-o", "--out"),
                     by: str = typer.Option("category", help="category or grid"),
                     start: WinStart = None, end: WinEnd = None, category: WinCat = None,
                     origin: WinOrigin = None) -> None:
    """Hour × weekday patterns with the significant peaks named in words (JSON + heatmap PNGs)."""
    from geogrid.runs import run_patterns

    _analyze("patterns", lambda c: run_patterns(c, _window(start, end, category, origin), out, by))
    console.print(f"  JSON and heatmaps in {out}/")


map_app = typer.Typer(help="Offline HTML maps (no CDN, no external base map) with zh-CN/en legends.",
                      no_args_is_help=True)
app.add_typer(map_app, name="map")


def _map(kind: str, table: str, builder: str, out: Path, run: Optional[int], keep=None, **kw) -> None:
    import maps.layers as layers
    from geogrid.store import results
    from geogrid.store.grids import read_grids

    eng = _engine()
    try:
        with eng.connect() as conn:
            run_row = results.latest_run(conn, kind) if run is None else {"id": run}
            cells = results.read_results(conn, table, run_row["id"])
            if keep is not None:  # draw what matters: a city has 10^5 cells, most of them unremarkable
                cells = cells[keep(cells)]
            grids = read_grids(conn)
    except GeogridError as e:
        _fail(e)
    out.parent.mkdir(parents=True, exist_ok=True)
    getattr(layers, builder)(cells, out, grids=grids, **kw)
    console.print(f"{kind} map of run {run_row['id']}: {out}")


RunOpt = Annotated[Optional[int], typer.Option(help="analysis run id (default: the latest)")]


@map_app.command("hotspots")
def map_hotspots(out: Path = typer.Option(Path("maps/hotspots.html"), "-o", "--out"), run: RunOpt = None) -> None:
    """Gi* hot and cold spots (ArcGIS Gi_Bin colours)."""
    _map("hotspots", "hotspot_cells", "hotspot_map", out, run, keep=lambda c: c["gi_bin"] != 0)


@map_app.command("emerging")
def map_emerging(out: Path = typer.Option(Path("maps/emerging.html"), "-o", "--out"), run: RunOpt = None) -> None:
    """Emerging hot spot patterns."""
    _map("emerging", "emerging_cells", "emerging_map", out, run, keep=lambda c: c["hot_or_cold"].notna())


@analyze_app.command("forecast")
def analyze_forecast(horizon: list[int] = typer.Option([7, 28], help="days ahead (repeatable)"),
                     method: list[str] = typer.Option(["kde"], help="last_period, long_window, kde, prospective, learned (gradient boosting), stacked"),
                     res: int = 9, cutoff: Optional[str] = typer.Option(None, help="default: the day after the last incident"),
                     flag_share: float = typer.Option(0.05, help="share of cells flagged for early warning"),
                     reported_only: bool = typer.Option(False, help="train on public reports only (no patrol feedback)"),
                     start: WinStart = None, end: WinEnd = None, category: WinCat = None) -> None:
    """Next-period risk per H3 cell (7 and 28 days) — see docs/forecast.md for the backtest."""
    from geogrid.runs import run_forecast

    origin = "reported" if reported_only else None
    _analyze("forecast", lambda c: run_forecast(c, _window(start, end, category, origin), tuple(horizon), tuple(method),
                                                res, cutoff, flag_share))


@map_app.command("forecast")
def map_forecast(out: Path = typer.Option(Path("maps/forecast.html"), "-o", "--out"), run: RunOpt = None,
                 horizon: int = 7, method: str = "kde") -> None:
    """Forecast risk: graduated colours, flagged cells outlined."""
    _map("forecast", "forecast_cells", "forecast_map", out, run, score="score",
         keep=lambda c: (c["horizon_days"] == horizon) & (c["method"] == method) & (c["score"] > 0))


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="address to bind"), port: int = typer.Option(8000),
          workers: int = typer.Option(1, help="uvicorn worker processes")) -> None:
    """Serve the map API and the web map (OpenAPI at /api, map at /map) on GEOGRID_DATABASE_URL."""
    import uvicorn

    _settings()  # refuse bad settings (default secret outside development) before binding
    typer.echo(f"geogrid API  http://{host}:{port}/api.html   web map  http://{host}:{port}/map")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


import geogrid.cli_planning  # noqa: E402,F401  registers commands


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    # `python -m geogrid.cli` runs this file as __main__; modules that register commands (cli_planning)
    # register them on the importable geogrid.cli, so run that module's app.
    from geogrid.cli import app as _app

    sys.exit(_app())
