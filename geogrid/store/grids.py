"""Grids of a plan: read as GeoDataFrames, upserted from ingest."""
from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, text


def read_grids(conn: Connection, plan_id: int | None = None) -> gpd.GeoDataFrame:
    """Grids of ``plan_id`` (the active plan when None) as a GeoDataFrame in EPSG:4326."""
    if plan_id is None:
        plan_id = conn.execute(text("SELECT id FROM plans WHERE status = 'active'")).scalar()
        if plan_id is None:
            return _empty()
    rows = conn.execute(
        text(
            "SELECT id, plan_id, code, name, kind, population, key_areas, post_code, district, attrs, "
            "version, ST_AsBinary(geom) AS wkb FROM grids WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    ).mappings().all()
    if not rows:
        return _empty()
    df = pd.DataFrame([dict(r) for r in rows])
    geom = shapely.from_wkb(df.pop("wkb").map(bytes).to_numpy())
    return gpd.GeoDataFrame(df, geometry=geom, crs=4326)


def _empty() -> gpd.GeoDataFrame:
    cols = ["id", "plan_id", "code", "name", "kind", "population", "key_areas", "post_code", "district", "attrs", "version"]
    return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=4326)


def upsert_grids(conn: Connection, plan_id: int, grids: gpd.GeoDataFrame) -> tuple[int, int]:
    """Insert or update grids of a plan by code; unchanged rows are left alone. Returns (inserted, updated)."""
    if len(grids) == 0:
        return 0, 0
    records = [
        {
            "plan": plan_id,
            "code": r.code,
            "name": r.name or "",
            "kind": r.kind,
            "population": None if pd.isna(r.population) else int(r.population),
            "key_areas": list(r.key_areas or []),
            "post_code": None if pd.isna(r.post_code) else r.post_code,
            "district": None if pd.isna(r.district) else r.district,
            "attrs": json.dumps(r.attrs or {}, ensure_ascii=False),
            "wkb": shapely.to_wkb(r.geometry, include_srid=False),
        }
        for r in grids.itertuples()
    ]
    stmt = text(
            """
            INSERT INTO grids AS g (plan_id, code, name, kind, population, key_areas, post_code, district, attrs, geom)
            VALUES (:plan, :code, :name, :kind, :population, :key_areas, :post_code, :district,
                    CAST(:attrs AS jsonb), ST_Multi(ST_GeomFromWKB(:wkb, 4326)))
            ON CONFLICT (plan_id, code) DO UPDATE SET
              name = EXCLUDED.name, kind = EXCLUDED.kind, population = EXCLUDED.population,
              key_areas = EXCLUDED.key_areas, post_code = EXCLUDED.post_code, district = EXCLUDED.district,
              attrs = EXCLUDED.attrs, geom = EXCLUDED.geom, version = g.version + 1, updated_at = now()
            WHERE (g.name, g.kind, g.population, g.key_areas, g.post_code, g.district, g.attrs)
                  IS DISTINCT FROM
                  (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.population, EXCLUDED.key_areas,
                   EXCLUDED.post_code, EXCLUDED.district, EXCLUDED.attrs)
               OR NOT ST_Equals(g.geom, EXCLUDED.geom)
            RETURNING (xmax = 0) AS inserted
            """
    )
    # one statement per grid: grid files are small (a city has at most tens of thousands) and
    # RETURNING tells inserted from updated; unchanged rows return nothing
    flags = [r[0] for rec in records for r in conn.execute(stmt, rec).all()]
    return sum(flags), len(flags) - sum(flags)
