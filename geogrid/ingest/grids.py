"""Ingest grid boundaries into a plan: validate, repair, reproject, upsert by code."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from geogrid.crs import geoms_to_wgs84, parse_crs
from geogrid.errors import InputError
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.incidents import IngestAborted, IngestResult
from geogrid.ingest.readers import ROW, read_chunks
from geogrid.ingest.report import ChunkRejects, RejectLog
from geogrid.store import plans as plan_store
from geogrid.store.engine import transaction
from geogrid.store.grids import upsert_grids

KIND_WORDS = {"urban": "urban", "城市": "urban", "社区": "urban", "城区": "urban", "u": "urban",
              "rural": "rural", "农村": "rural", "村": "rural", "乡村": "rural", "r": "rural"}
KEY_AREA_WORDS = {"old_compound": "old_compound", "老旧小区": "old_compound",
                  "commercial_street": "commercial_street", "商业街区": "commercial_street", "商业街": "commercial_street",
                  "urban_village": "urban_village", "城中村": "urban_village"}


def load_grids(
    bind: Engine | Connection,
    path: str | Path,
    fields: FieldMap,
    *,
    plan: str,
    crs: str | None = None,
    strict: bool = False,
    activate: bool | None = None,
    defaults: dict | None = None,
    merge_parts: bool = False,
) -> IngestResult:
    """Load grid polygons into plan ``plan`` (created when missing).

    ``activate``: True activates the plan, None activates it only when no plan is active yet.
    Invalid polygons are repaired with ``make_valid`` and reported (rejected with ``strict``).
    ``merge_parts``: rows sharing a code are parts of one multi-part grid (e.g. Chicago's beat 3100,
    stored as three polygons) and are merged; otherwise a repeated code is rejected as a duplicate.
    """
    with transaction(bind) as conn:
        return _load(conn, path, fields, plan, crs, strict, activate, defaults or {}, merge_parts)


def _load(conn: Connection, path, f: FieldMap, plan_name, crs, strict, activate, defaults, merge_parts) -> IngestResult:
    if not f.code:
        raise InputError(f"{path}: say which column holds the grid code (--code)")
    started = datetime.now(timezone.utc)
    df = pd.concat(list(read_chunks(path)), ignore_index=True)  # grid files are small: one city, ≤ 1e5 polygons
    if "geometry" not in df:
        raise InputError(f"{path}: grids need polygon geometries (GeoJSON, GeoPackage, Shapefile or GeoParquet)")
    named = {k: v for k, v in vars(f).items() if v and k in ("code", "name", "kind", "population", "key_areas", "post", "district")}
    absent = [v for v in named.values() if v not in df.columns]
    if absent:
        cols = ", ".join(c for c in df.columns if c not in (ROW, "geometry"))
        raise InputError(f"{path}: no column {', '.join(map(repr, absent))}; the file has: {cols}")
    log = RejectLog(path)
    result = IngestResult(log=log, rows_read=len(df))
    if merge_parts:
        df = _merge_parts(df, f.code, log)
    rows = df[ROW].to_numpy()
    reject = ChunkRejects(log, rows)
    bad = reject.bad  # updated in place by reject()

    code = df[f.code].astype("string").str.strip()
    reject(code.isna().to_numpy() | (code == "").fillna(True).to_numpy(), "code", "missing grid code")
    dup = code.duplicated(keep="first").to_numpy() & code.notna().to_numpy()
    first = {c: r for c, r in zip(code[~dup], rows[~dup])}
    reject(dup, "code", np.array([f"duplicate code (first at row {first.get(c)})" for c in code]), code)

    src_crs = crs or df.attrs.get("crs") or "EPSG:4326"
    geoms = np.array(df["geometry"].to_numpy(), dtype=object)  # a writable copy: repairs go in place
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    reject(missing, "geometry", "missing or empty geometry")
    kinds = shapely.get_type_id(np.where(missing, None, geoms))
    reject(~missing & ~np.isin(kinds, [3, 6]), "geometry", "not a polygon")
    invalid = ~bad & ~shapely.is_valid(np.where(bad, None, geoms))
    if invalid.any():
        reasons = [shapely.is_valid_reason(g) for g in geoms[invalid]]
        if strict:
            reject(invalid, "geometry", np.array([f"invalid polygon: {r} (--strict)" if m else "" for r, m in
                                                  zip(_spread(reasons, invalid), invalid)]))
        else:
            for r, why in zip(rows[invalid], reasons):
                log.warn(f"row {r}: invalid polygon repaired with make_valid ({why})")
            geoms[invalid] = [_polygonal(shapely.make_valid(g)) for g in geoms[invalid]]
            still = invalid & (shapely.is_empty(np.where(invalid, geoms, None)) | shapely.is_missing(geoms))
            reject(still, "geometry", "invalid polygon with no area left after repair")
    spec = parse_crs(src_crs)
    ok = ~bad

    kind = _mapped(df, f.kind, KIND_WORDS, defaults.get("kind", "urban"))
    reject(ok & kind.isna().to_numpy(), "kind", "unknown kind (use urban/rural or 城市/农村)", df[f.kind] if f.kind else None)
    pop = pd.Series(np.nan, index=df.index)
    if f.population:
        pop = pd.to_numeric(df[f.population], errors="coerce")
        given = df[f.population].notna().to_numpy()
        reject(given & pop.isna().to_numpy(), "population", "not a number", df[f.population])
        reject((pop < 0).fillna(False).to_numpy(), "population", "negative population", df[f.population])
    keys = [[]] * len(df)
    if f.key_areas:
        keys, unknown = _key_areas(df[f.key_areas])
        for r, u in zip(rows, unknown):
            if u:
                log.warn(f"row {r}: unknown key-area flag(s) {u} ignored")

    result.rejected = len(log)
    result.report_path = log.write()
    if strict and len(log):
        raise IngestAborted(f"{path}: {len(log)} rows rejected and --strict is set; nothing was loaded "
                            f"(see {result.report_path})", log)
    ok = ~bad  # rejections after the geometry step
    keep_geom = shapely.force_2d(geoms_to_wgs84(geoms[ok], spec)) if ok.any() else []
    out = gpd.GeoDataFrame({
        "code": code[ok].to_numpy(),
        "name": df[f.name].astype("string").fillna("").to_numpy()[ok] if f.name else "",
        "kind": kind[ok].to_numpy(),
        "population": pop[ok].to_numpy(),
        "key_areas": [keys[i] for i in np.flatnonzero(ok)],
        "post_code": df[f.post].astype("string").to_numpy()[ok] if f.post else None,
        "district": df[f.district].astype("string").to_numpy()[ok] if f.district else None,
        "attrs": [{}] * int(ok.sum()),
    }, geometry=list(keep_geom), crs=4326)
    plan, _created = plan_store.get_or_create_plan(conn, plan_name)
    result.inserted, result.updated = upsert_grids(conn, plan["id"], out)
    result.rows_loaded = len(out)
    result.extra["plan"] = plan_name
    if activate or (activate is None and plan_store.active_plan(conn) is None):
        plan_store.activate_plan(conn, plan["id"])
        result.extra["activated"] = True
    elif plan["status"] == "active" and (result.inserted or result.updated):
        plan_store.assign_incident_grids(conn, plan["id"])
    conn.execute(text(
        "INSERT INTO ingest_runs (kind, source, path, rows_read, rows_loaded, rows_rejected, inserted, updated, started_at) "
        "VALUES ('grids', :s, :p, :r, :l, :j, :i, :u, :t)"),
        {"s": plan_name, "p": str(path), "r": result.rows_read, "l": result.rows_loaded, "j": result.rejected,
         "i": result.inserted, "u": result.updated, "t": started})
    return result


def _spread(values, mask):
    it = iter(values)
    return [next(it) if m else "" for m in mask]


def _polygonal(g):
    """The polygonal part of a repaired geometry (make_valid may return a collection with lines)."""
    if g is None:
        return None
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def _mapped(df, col, words, default) -> pd.Series:
    if not col:
        return pd.Series(default, index=df.index, dtype=object)
    v = df[col].astype("string").str.strip().str.casefold()
    return v.map(lambda x: words.get(x) if isinstance(x, str) else default).astype(object)


def _key_areas(col: pd.Series) -> tuple[list[list[str]], list[list[str]]]:
    keys, unknown = [], []
    for v in col:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            keys.append([]), unknown.append([])
            continue
        parts = [p.strip() for p in str(v).replace("；", ",").replace(";", ",").replace("、", ",").strip("[]").split(",")]
        parts = [p.strip("'\" ") for p in parts if p.strip("'\" ")]
        keys.append(sorted({KEY_AREA_WORDS[p.casefold()] for p in parts if p.casefold() in KEY_AREA_WORDS}))
        unknown.append([p for p in parts if p.casefold() not in KEY_AREA_WORDS])
    return keys, unknown


def _merge_parts(df: pd.DataFrame, code_col: str, log: RejectLog) -> pd.DataFrame:
    """Merge rows that share a code into one multi-part geometry (first row's attributes kept)."""
    dup = df[code_col].duplicated(keep=False) & df[code_col].notna()
    if not dup.any():
        return df
    keep = []
    for code, part in df[dup].groupby(code_col, sort=False):
        row = part.iloc[0].copy()
        row["geometry"] = shapely.union_all(part["geometry"].to_numpy())
        log.warn(f"grid {code}: rows {', '.join(map(str, part[ROW]))} merged into one multi-part grid")
        keep.append(row)
    return pd.concat([df[~dup], pd.DataFrame(keep)], ignore_index=True).sort_values(ROW, ignore_index=True)
