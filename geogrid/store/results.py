"""Analysis runs and their result tables: written with binary COPY, read back for maps and the API."""
from __future__ import annotations

import json
import struct
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geogrid.errors import NotFound
from geogrid.store import copy as pgcopy

# result table → its columns and COPY encoders (geometry last, from the frame's geometry column)
TABLES: dict[str, dict[str, str]] = {
    "hotspot_cells": {"cell": "int8", "count": "int4", "z": "float8", "p": "float8", "p_fdr": "float8",
                      "gi_bin": "int4", "label": "text", "label_zh": "text"},
    "emerging_cells": {"cell": "int8", "pattern": "text", "hot_or_cold": "text", "label": "text",
                       "label_zh": "text", "mk_z": "float8", "mk_p": "float8", "count": "int4"},
    "clusters": {"cluster": "int4", "count": "int4", "dominant_category": "text", "top_categories": "json",
                 "peak_window": "text", "area_km2": "float8"},
    "forecast_cells": {"cell": "int8", "horizon_days": "int4", "method": "text", "score": "float8",
                       "rank": "int4", "flagged": "bool"},
    "grid_tiers": {"grid_id": "int4", "code": "text", "tier": "int4", "score": "float8", "drivers": "text",
                   "drivers_zh": "text"},
    "grid_staffing": {"grid_id": "int4", "code": "text", "tier": "int4", "kind": "text",
                      "officers_required": "int4", "auxiliaries_required": "int4", "officers": "int4",
                      "auxiliaries": "int4", "workload_hours": "float8", "reason": "text", "reason_zh": "text"},
    "beats": {"beat": "int4", "officers": "int4", "n_grids": "int4", "workload": "float8",
              "per_officer": "float8", "deviation": "float8", "polsby_popper": "float8", "post_code": "text",
              "grid_codes": "text[]"},
    "coverage_grids": {"grid_id": "int4", "code": "text", "mean_minutes": "float8", "max_minutes": "float8",
                       "nearest_post": "text", "shares": "json"},
    "coverage_cells": {"cell": "int8", "minutes": "float8", "nearest_post": "text"},
    "forecast_grids": {"grid_id": "int4", "code": "text", "horizon_days": "int4", "method": "text",
                       "score": "float8", "rank": "int4", "flagged": "bool"},
    "siting_proposals": {"plan_id": "int4", "model": "text", "minutes": "float8", "rank": "int4", "site": "text",
                         "grid_code": "text", "existing": "bool", "gain": "float8", "covered_share": "float8",
                         "workload": "float8"},
}


def start_run(conn: Connection, kind: str, params: dict, data_from=None, data_to=None,
              plan_id: int | None = None) -> int:
    """Record a new run and return its id."""
    return int(conn.execute(text(
        "INSERT INTO analysis_runs (kind, plan_id, params, data_from, data_to) "
        "VALUES (:k, :p, CAST(:params AS jsonb), :f, :t) RETURNING id"),
        {"k": kind, "p": plan_id, "params": json.dumps(params, default=str, ensure_ascii=False),
         "f": data_from, "t": data_to}).scalar())


def finish_run(conn: Connection, run_id: int, summary: dict) -> None:
    conn.execute(text("UPDATE analysis_runs SET summary = CAST(:s AS jsonb), finished_at = :t WHERE id = :id"),
                 {"s": json.dumps(summary, default=_jsonable, ensure_ascii=False), "t": datetime.now(timezone.utc),
                  "id": run_id})


def save(conn: Connection, table: str, run_id: int, frame) -> int:
    """COPY a result frame (with a ``geometry`` column) into ``table`` for ``run_id``."""
    spec = TABLES[table]
    n = len(frame)
    if n == 0:
        return 0
    cols = [pgcopy.int4(np.full(n, run_id))]
    for name, kind in spec.items():
        v = frame[name]
        if kind == "int8":
            cols.append(pgcopy.int8(v.to_numpy(np.int64)))
        elif kind == "int4":
            null = v.isna().to_numpy()
            cols.append(pgcopy.int4(v.fillna(0).to_numpy(np.int64), null if null.any() else None))
        elif kind == "float8":
            cols.append(_float_nullable(v))
        elif kind == "bool":
            cols.append(pgcopy.Column(np.full(n, 1, np.int64), v.to_numpy(bool).astype(np.uint8), 1))
        elif kind == "json":
            # jsonb binary format: a version byte (1) then the text
            cols.append(pgcopy.text_bytes(b"\x01" + (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)).encode()
                                          for x in v))
        elif kind == "text[]":
            cols.append(pgcopy.text_bytes(_text_array(x) for x in v))
        else:
            cols.append(pgcopy.text(v.astype(object).where(v.notna(), None)))
    cols.append(pgcopy.geometry(frame.geometry.to_numpy()))
    return pgcopy.copy_columns(conn.connection.driver_connection, table, ["run_id", *spec, "geom"], cols)


VARCHAR_OID = 1043  # the text[] columns are varchar(n)[] (beats.grid_codes); COPY BINARY checks the element oid


def _text_array(items) -> bytes:
    """A one-dimensional varchar[] in PostgreSQL's binary array format (no NULL elements)."""
    enc = [str(x).encode() for x in items]
    if not enc:
        return struct.pack(">iiI", 0, 0, VARCHAR_OID)
    head = struct.pack(">iiI", 1, 0, VARCHAR_OID) + struct.pack(">ii", len(enc), 1)  # ndim, hasnull, oid; dim, lbound
    return head + b"".join(struct.pack(">i", len(e)) + e for e in enc)


def _float_nullable(v: pd.Series) -> pgcopy.Column:
    a = v.to_numpy(np.float64)
    null = ~np.isfinite(a)
    if not null.any():
        return pgcopy.float8(a)
    data = a[~null].astype(">f8").view(np.uint8)
    return pgcopy.Column(np.where(null, -1, 8).astype(np.int64), data)


def latest_run(conn: Connection, kind: str) -> dict:
    row = conn.execute(text("SELECT * FROM analysis_runs WHERE kind = :k AND finished_at IS NOT NULL "
                            "ORDER BY id DESC LIMIT 1"), {"k": kind}).mappings().first()
    if row is None:
        raise NotFound(f"no finished {kind} run; run `geogrid analyze {kind}` first")
    return dict(row)


def read_results(conn: Connection, table: str, run_id: int):
    """A result table of one run as a GeoDataFrame (EPSG:4326)."""
    import geopandas as gpd
    import shapely

    cols = ", ".join(TABLES[table])
    rows = conn.execute(text(f"SELECT {cols}, ST_AsBinary(geom) AS wkb FROM {table} WHERE run_id = :r"),
                        {"r": run_id}).mappings().all()
    df = pd.DataFrame([dict(r) for r in rows], columns=[*TABLES[table], "wkb"])
    geom = shapely.from_wkb(df.pop("wkb").map(bytes).to_numpy()) if len(df) else []
    return gpd.GeoDataFrame(df, geometry=geom, crs=4326)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (pd.Timestamp, datetime)):
        return o.isoformat()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
