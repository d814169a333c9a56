"""Ingest posts (stations 派出所 and posts 警务室) and staff; both upserted by code."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from geogrid.crs import parse_crs, to_wgs84
from geogrid.errors import InputError
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.incidents import IngestAborted, IngestResult
from geogrid.ingest.readers import ROW, read_chunks
from geogrid.ingest.report import ChunkRejects, RejectLog
from geogrid.store.engine import transaction

POST_KINDS = {"station": "station", "派出所": "station", "post": "post", "警务室": "post", "警务站": "post"}
ROLES = {"officer": "officer", "民警": "officer", "auxiliary": "auxiliary", "辅警": "auxiliary",
         "grid_worker": "grid_worker", "网格员": "grid_worker"}


def load_posts(bind: Engine | Connection, path: str | Path, fields: FieldMap, *, source: str = "file",
               crs: str | None = None, strict: bool = False, defaults: dict | None = None) -> IngestResult:
    """Load post/station points; upsert on code."""
    if not fields.code:
        raise InputError(f"{path}: say which column holds the post code (--code)")
    df = pd.concat(list(read_chunks(path)), ignore_index=True)  # a city has tens to hundreds of posts
    log = RejectLog(path)
    rows = df[ROW].to_numpy()
    reject = ChunkRejects(log, rows)
    bad = reject.bad  # updated in place by reject()

    for col in (fields.code, fields.name, fields.kind, fields.station):
        if col and col not in df:
            raise InputError(f"{path}: no column {col!r}; the file has: {', '.join(c for c in df if c not in (ROW, 'geometry'))}")
    spec = parse_crs(crs or df.attrs.get("crs") or "EPSG:4326")
    if "geometry" in df:
        g = np.asarray(df["geometry"].to_numpy(), dtype=object)
        miss = shapely.is_missing(g) | shapely.is_empty(g)
        reject(miss, "geometry", "missing geometry")
        reject(~miss & (shapely.get_type_id(np.where(miss, None, g)) != 0), "geometry", "not a point")
        x = np.where(bad, np.nan, shapely.get_x(np.where(bad, None, g)))
        y = np.where(bad, np.nan, shapely.get_y(np.where(bad, None, g)))
    else:
        if not (fields.lon and fields.lat):
            raise InputError(f"{path}: say which columns hold the coordinates (--lon --lat)")
        x = pd.to_numeric(df[fields.lon], errors="coerce").to_numpy(float)
        y = pd.to_numeric(df[fields.lat], errors="coerce").to_numpy(float)
        reject(~np.isfinite(x), "lon", "missing or not a number", df[fields.lon])
        reject(~np.isfinite(y), "lat", "missing or not a number", df[fields.lat])
    code = df[fields.code].astype("string").str.strip()
    reject(code.isna().to_numpy(), "code", "missing post code")
    reject(code.duplicated().to_numpy() & code.notna().to_numpy(), "code", "duplicate code inside the file", code)
    kind = (df[fields.kind].astype("string").str.strip().str.casefold().map(POST_KINDS) if fields.kind
            else pd.Series((defaults or {}).get("kind", "post"), index=df.index))
    reject(kind.isna().to_numpy(), "kind", "unknown kind (use station/post or 派出所/警务室)", df[fields.kind] if fields.kind else None)
    lon, lat = to_wgs84(x, y, spec)
    reject(~bad & ((np.abs(lon) > 180) | (np.abs(lat) > 90) | ~np.isfinite(lon)), "lon", "outside plausible bounds", x)
    result = IngestResult(log=log, rows_read=len(df), rejected=len(log), report_path=log.write())
    if strict and len(log):
        raise IngestAborted(f"{path}: {len(log)} rows rejected and --strict is set; nothing was loaded", log)
    ok = ~bad
    recs = [{"code": c, "name": n, "kind": k, "station": s, "source": source, "x": a, "y": b}
            for c, n, k, s, a, b in zip(
                code[ok], (df[fields.name].astype("string").fillna("")[ok] if fields.name else [""] * ok.sum()),
                kind[ok], (df[fields.station].astype("string")[ok] if fields.station else [None] * ok.sum()),
                lon[ok], lat[ok])]
    stmt = text("""
        INSERT INTO posts AS p (code, name, kind, station_code, source, geom)
        VALUES (:code, :name, :kind, :station, :source, ST_SetSRID(ST_MakePoint(:x, :y), 4326))
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
          station_code = EXCLUDED.station_code, geom = EXCLUDED.geom
        WHERE (p.name, p.kind, p.station_code) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.station_code)
           OR NOT ST_Equals(p.geom, EXCLUDED.geom)
        RETURNING (xmax = 0)""")
    with transaction(bind) as conn:
        flags = [r[0] for rec in recs for r in conn.execute(stmt, _clean(rec)).all()]
    result.inserted, result.updated = sum(flags), len(flags) - sum(flags)
    result.rows_loaded = len(recs)
    return result


def load_staff(bind: Engine | Connection, path: str | Path, fields: FieldMap, *, strict: bool = False) -> IngestResult:
    """Load staff (officers, auxiliaries, grid workers) from a CSV-like file; upsert on code."""
    code_col, role_col = fields.code or "code", fields.role or "role"
    df = pd.concat(list(read_chunks(path)), ignore_index=True)
    for col in (code_col, role_col):
        if col not in df:
            raise InputError(f"{path}: no column {col!r} (--code/--role); the file has: {', '.join(c for c in df if c != ROW)}")
    log = RejectLog(path)
    reject = ChunkRejects(log, df[ROW].to_numpy())
    code = df[code_col].astype("string").str.strip()
    role = df[role_col].astype("string").str.strip().str.casefold().map(ROLES)
    reject(code.isna().to_numpy(), "code", "missing staff code")
    reject(code.duplicated().to_numpy(), "code", "duplicate code inside the file", code)
    reject(role.isna().to_numpy(), "role", "unknown role (use officer/auxiliary/grid_worker or 民警/辅警/网格员)",
           df[role_col])
    result = IngestResult(log=log, rows_read=len(df), rejected=len(log), report_path=log.write())
    if strict and len(log):
        raise IngestAborted(f"{path}: {len(log)} rows rejected and --strict is set; nothing was loaded", log)
    ok = ~reject.bad

    def optional(*candidates):
        """The first of the candidate columns the file has (the explicit option first), else None."""
        col = next((c for c in candidates if c and c in df), None)
        return df[col].astype("string")[ok] if col else [None] * int(ok.sum())

    recs = [{"code": c, "name": n or "", "role": r, "post": p, "grid": g}
            for c, n, r, p, g in zip(code[ok], optional(fields.name, "name"), role[ok],
                                     optional(fields.post, "post", "post_code"),
                                     optional(fields.grid, "grid", "grid_code"))]
    stmt = text("""
        INSERT INTO staff AS s (code, name, role, post_code, grid_code) VALUES (:code, :name, :role, :post, :grid)
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role,
          post_code = EXCLUDED.post_code, grid_code = EXCLUDED.grid_code
        WHERE (s.name, s.role, s.post_code, s.grid_code) IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.role, EXCLUDED.post_code, EXCLUDED.grid_code)
        RETURNING (xmax = 0)""")
    with transaction(bind) as conn:
        flags = [r[0] for rec in recs for r in conn.execute(stmt, _clean(rec)).all()]
    result.inserted, result.updated = sum(flags), len(flags) - sum(flags)
    result.rows_loaded = len(recs)
    return result


def _clean(rec: dict) -> dict:
    return {k: (None if (v is pd.NA or (isinstance(v, float) and np.isnan(v))) else
                (float(v) if isinstance(v, np.floating) else v)) for k, v in rec.items()}
