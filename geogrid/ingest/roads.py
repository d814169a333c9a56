"""Ingest a road network (LineStrings with a driving speed): validate, reproject, replace by source.

A load replaces every road of its ``source`` in one transaction, so re-loading the same file leaves
the table as it was, and a failed load leaves the previous roads of that source in place.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from geogrid.crs import geoms_to_wgs84, parse_crs
from geogrid.errors import InputError
from geogrid.ingest.incidents import IngestAborted, IngestResult
from geogrid.ingest.readers import ROW, read_chunks
from geogrid.ingest.report import ChunkRejects, RejectLog
from geogrid.store.engine import transaction

# Average emergency driving speeds (km/h) by road class, used when a row has no speed of its own:
# OpenStreetMap ``highway`` values, Chinese road grades and the classes of geogrid.roads.generate_roads.
KIND_SPEEDS = {
    "motorway": 80.0, "高速公路": 80.0, "trunk": 60.0, "快速路": 60.0, "ring": 60.0, "highway": 70.0,
    "primary": 50.0, "主干路": 50.0, "国道": 60.0, "省道": 50.0, "arterial": 40.0,
    "secondary": 40.0, "次干路": 40.0, "县道": 40.0, "tertiary": 30.0, "collector": 30.0, "支路": 25.0,
    "乡道": 30.0, "rural": 50.0, "unclassified": 30.0, "residential": 20.0, "local": 25.0,
    "living_street": 10.0, "service": 15.0,
}
MAX_KMH = 200.0
_TRUE = {"1", "true", "yes", "y", "t", "是", "单行"}
_FALSE = {"0", "false", "no", "n", "f", "否", "双行", ""}


def load_roads(bind: Engine | Connection, path: str | Path, *, source: str | None = None, speed: str | None = None,
               kind: str | None = None, name: str | None = None, oneway: str | None = None,
               crs: str | None = None, default_kmh: float | None = None, strict: bool = False) -> IngestResult:
    """Load road LineStrings from any vector format geogrid reads; replace the roads of ``source``.

    Parameters
    ----------
    bind : engine or connection (a savepoint inside a caller's transaction)
    path : GeoJSON, GeoPackage, zipped Shapefile, FlatGeobuf, KML or GeoParquet of (Multi)LineStrings
    source : name of the network (default: the file name without suffix); a re-load replaces it
    speed : column of the driving speed in km/h; rows without one take their ``kind``'s speed
        (:data:`KIND_SPEEDS`) or ``default_kmh``, else they are rejected
    kind, name, oneway : optional columns (road class, road name, one-way flag)
    crs : CRS of the file when it does not say (EPSG code, WKT, or gcj02/bd09)
    default_kmh : speed of rows with neither a speed nor a known kind
    strict : abort the whole load on any rejected row

    Returns
    -------
    IngestResult
        ``inserted`` rows stored; ``extra["replaced"]`` the rows of ``source`` the load replaced.
    """
    path = Path(path)
    source = source or path.name.split(".")[0]
    if len(source) > 100:
        raise InputError(f"source name is {len(source)} characters long; at most 100")
    if default_kmh is not None and not (0 < default_kmh <= MAX_KMH):
        raise InputError(f"default speed must be in (0, {MAX_KMH:g}] km/h, got {default_kmh!r}")
    started = datetime.now(timezone.utc)
    df = pd.concat(list(read_chunks(path)), ignore_index=True)
    if "geometry" not in df:
        raise InputError(f"{path}: roads need line geometries (GeoJSON, GeoPackage, Shapefile or GeoParquet)")
    named = {"--speed": speed, "--kind": kind, "--name": name, "--oneway": oneway}
    absent = [f"{k} {v!r}" for k, v in named.items() if v and v not in df.columns]
    if absent:
        cols = ", ".join(c for c in df.columns if c not in (ROW, "geometry"))
        raise InputError(f"{path}: no column {', '.join(absent)}; the file has: {cols}")
    log = RejectLog(path)
    result = IngestResult(log=log, rows_read=len(df))
    reject = ChunkRejects(log, df[ROW].to_numpy())

    geoms = np.array(df["geometry"].to_numpy(), dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    reject(missing, "geometry", "missing or empty geometry")
    types = shapely.get_type_id(np.where(missing, None, geoms))
    reject(~missing & ~np.isin(types, [1, 5]), "geometry", "not a line (LineString or MultiLineString)",
           [getattr(g, "geom_type", "") for g in geoms])
    ok_geom = ~reject.bad
    length = np.zeros(len(df))
    length[ok_geom] = shapely.length(geoms[ok_geom])
    reject(ok_geom & ~(length > 0), "geometry", "line of zero length")

    kinds = (df[kind].astype("string").str.strip() if kind else pd.Series(pd.NA, index=df.index, dtype="string"))
    reject((kinds.str.len() > 32).fillna(False).to_numpy(), "kind", "longer than 32 characters", kinds)
    kmh = pd.Series(np.nan, index=df.index)
    if speed:
        raw = df[speed]
        kmh = pd.to_numeric(raw.astype("string").str.strip().str.removesuffix("km/h").str.strip(), errors="coerce")
        given = raw.notna().to_numpy() & (raw.astype("string").str.strip() != "").fillna(False).to_numpy()
        reject(given & kmh.isna().to_numpy(), "speed", "not a number", raw)
        reject(given & ((kmh <= 0) | (kmh > MAX_KMH)).fillna(False).to_numpy(), "speed",
               f"outside (0, {MAX_KMH:g}] km/h", raw)
    from_kind = kinds.str.casefold().map(lambda k: KIND_SPEEDS.get(k) if isinstance(k, str) else np.nan)
    filled = kmh.isna() & from_kind.notna()
    kmh = kmh.fillna(from_kind.astype(float))
    if default_kmh is not None:
        kmh = kmh.fillna(float(default_kmh))
    reject(kmh.isna().to_numpy(), "speed",
           "no speed: give the column (--speed), a known kind (--kind) or --default-speed",
           kinds if kind else None)
    n_filled = int((filled.to_numpy() & ~reject.bad).sum())
    if n_filled and speed:
        log.warn("speed taken from the road kind where the speed column is empty", n_filled)
    ow = pd.Series(None, index=df.index, dtype=object)
    if oneway:
        words = df[oneway].astype("string").str.strip().str.casefold()
        ow = words.map(lambda v: True if v in _TRUE else False if (v in _FALSE or v is pd.NA) else None)
        reject((ow.isna() & words.notna() & (words != "")).to_numpy(), "oneway", "not yes/no", df[oneway])

    spec = parse_crs(crs or df.attrs.get("crs") or "EPSG:4326")
    ok = ~reject.bad
    wgs = np.empty(len(df), dtype=object)
    if ok.any():
        wgs[ok] = shapely.force_2d(geoms_to_wgs84(geoms[ok], spec))
        xy = [shapely.get_coordinates(g) for g in wgs[ok]]
        out = np.array([not (np.isfinite(c).all() and (np.abs(c[:, 0]) <= 180).all() and (np.abs(c[:, 1]) <= 90).all())
                        for c in xy])
        bad_xy = np.zeros(len(df), bool)
        bad_xy[np.flatnonzero(ok)[out]] = True
        reject(bad_xy, "geometry", "coordinates outside plausible lon/lat bounds (wrong --crs?)")
    result.rejected = len(log)
    result.report_path = log.write()
    if strict and len(log):
        raise IngestAborted(f"{path}: {len(log)} rows rejected and --strict is set; nothing was loaded "
                            f"(see {result.report_path})", log)
    ok = ~reject.bad
    frame = gpd.GeoDataFrame({
        "name": df[name].astype("string").to_numpy()[ok] if name else None,
        "kind": kinds.to_numpy()[ok],
        "speed_kmh": kmh.to_numpy(float)[ok],
        "oneway": ow.to_numpy()[ok],
    }, geometry=list(wgs[ok]), crs=4326)
    with transaction(bind) as conn:
        result.extra["replaced"] = save_roads(conn, frame, source)
        result.inserted = result.rows_loaded = len(frame)
        conn.execute(text(
            "INSERT INTO ingest_runs (kind, source, path, rows_read, rows_loaded, rows_rejected, inserted, updated, "
            "started_at) VALUES ('roads', :s, :p, :r, :l, :j, :i, 0, :t)"),
            {"s": source, "p": str(path), "r": result.rows_read, "l": result.rows_loaded, "j": result.rejected,
             "i": result.inserted, "t": started})
    result.extra["source"] = source
    return result


def save_roads(conn: Connection, roads: gpd.GeoDataFrame, source: str) -> int:
    """Replace the roads of ``source`` with ``roads`` (EPSG:4326 lines with ``speed_kmh``; optional
    ``name``, ``kind``, ``oneway``). Returns how many rows of ``source`` were replaced."""
    if roads.crs is not None and roads.crs.to_epsg() != 4326:
        roads = roads.to_crs(4326)
    replaced = conn.execute(text("DELETE FROM roads WHERE source = :s"), {"s": source}).rowcount
    if len(roads) == 0:
        return replaced
    n = len(roads)

    def col(c):
        if c not in roads:
            return [None] * n
        return [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v
                for v in roads[c].tolist()]

    recs = [{"s": source, "n": nm, "k": k, "v": float(v), "o": (None if o is None else bool(o)), "g": g}
            for nm, k, v, o, g in zip(col("name"), col("kind"), roads["speed_kmh"].to_numpy(float), col("oneway"),
                                      shapely.to_wkb(roads.geometry.to_numpy(), hex=True))]
    conn.execute(text("INSERT INTO roads (source, name, kind, speed_kmh, oneway, geom) "
                      "VALUES (:s, :n, :k, :v, :o, ST_Multi(ST_GeomFromWKB(decode(:g, 'hex'), 4326)))"), recs)
    return replaced
