"""Incidents: staged with binary COPY, de-duplicated, then upserted on (source, external_id)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geogrid.store import copy as pgcopy

STAGE = "_stage_incidents"
STAGE_COLUMNS = ["row_no", "external_id", "category", "priority", "origin", "occurred_at", "h3", "grid_id", "geom"]


def create_stage(conn: Connection) -> None:
    """A temporary, index-free table the chunks are COPY'd into (dropped at commit)."""
    conn.execute(text(f"DROP TABLE IF EXISTS {STAGE}"))  # a savepoint-wrapped earlier load may have left it
    conn.execute(text(
        f"CREATE TEMP TABLE {STAGE} (row_no bigint, external_id text, category text, priority text, "
        "origin text, occurred_at timestamptz, h3 bigint, grid_id int, geom geometry(Point, 4326)) "
        "ON COMMIT DROP"
    ))


def stage_chunk(conn: Connection, df: pd.DataFrame) -> int:
    """COPY a validated chunk (columns of STAGE_COLUMNS, lon/lat instead of geom) into the stage."""
    grid = df["grid_id"].to_numpy()
    cols = [
        pgcopy.int8(df["row_no"].to_numpy()),
        pgcopy.text(df["external_id"]),
        pgcopy.text(df["category"]),
        pgcopy.text(df["priority"]),
        pgcopy.text(df["origin"]),
        pgcopy.timestamptz(df["occurred_at"]),
        pgcopy.int8(df["h3"].to_numpy()),
        pgcopy.int4(np.where(grid < 0, 0, grid), null=grid < 0),
        pgcopy.point(df["lon"].to_numpy(), df["lat"].to_numpy()),
    ]
    return pgcopy.copy_columns(conn.connection.driver_connection, STAGE, STAGE_COLUMNS, cols)


def stage_duplicates(conn: Connection) -> list[tuple[str, list[int]]]:
    """external_ids that occur more than once in the stage, with their row numbers (ascending)."""
    rows = conn.execute(text(
        f"SELECT external_id, array_agg(row_no ORDER BY row_no) FROM {STAGE} "
        "GROUP BY external_id HAVING count(*) > 1"
    )).all()
    return [(r[0], list(r[1])) for r in rows]


def drop_stage_rows(conn: Connection, rows: list[int]) -> None:
    if rows:
        conn.execute(text(f"DELETE FROM {STAGE} WHERE row_no = ANY(:r)"), {"r": rows})


def upsert_from_stage(conn: Connection, source: str) -> tuple[int, int]:
    """Move staged rows into ``incidents``; changed rows are updated, identical ones untouched.

    Returns (inserted, updated).
    """
    row = conn.execute(text(
        f"""
        WITH up AS (
          INSERT INTO incidents AS i (source, external_id, category, priority, origin, occurred_at, h3, grid_id, geom)
          SELECT :source, external_id, category, priority, origin, occurred_at, h3, grid_id, geom FROM {STAGE}
          ON CONFLICT (source, external_id) DO UPDATE SET
            category = EXCLUDED.category, priority = EXCLUDED.priority, origin = EXCLUDED.origin,
            occurred_at = EXCLUDED.occurred_at, h3 = EXCLUDED.h3, grid_id = EXCLUDED.grid_id,
            geom = EXCLUDED.geom, loaded_at = now()
          WHERE (i.category, i.priority, i.origin, i.occurred_at, i.h3)
                IS DISTINCT FROM (EXCLUDED.category, EXCLUDED.priority, EXCLUDED.origin, EXCLUDED.occurred_at, EXCLUDED.h3)
             OR NOT ST_Equals(i.geom, EXCLUDED.geom)
          RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
        """
    ), {"source": source}).one()
    return int(row[0]), int(row[1])


def h3_resolution(conn: Connection) -> int | None:
    v = conn.execute(text("SELECT value FROM store_meta WHERE key = 'h3_resolution'")).scalar()
    return None if v is None else int(v)


def set_h3_resolution(conn: Connection, res: int) -> None:
    conn.execute(text(
        "INSERT INTO store_meta (key, value) VALUES ('h3_resolution', :v) ON CONFLICT (key) DO NOTHING"
    ), {"v": str(res)})
