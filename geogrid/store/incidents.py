"""Incidents: binary COPY into a stage (or, in bulk mode, straight into the table), then upsert.

Bulk mode, for loads that are large next to the table: the secondary indexes and the unique
(source, external_id) constraint are dropped inside the load's transaction and rebuilt from their
own definitions afterwards (rebuilding ~4x cheaper than upkeep row by row). DROP INDEX takes an
ACCESS EXCLUSIVE lock, so readers of ``incidents`` wait until the load commits or rolls back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geogrid.store import copy as pgcopy

STAGE = "_stage_incidents"
STAGE_COLUMNS = ["row_no", "external_id", "category", "priority", "origin", "occurred_at", "h3", "grid_id", "geom"]
TABLE_COLUMNS = ["source", "external_id", "category", "priority", "origin", "occurred_at", "h3", "grid_id", "geom"]
_VALUES = ["category", "priority", "origin", "occurred_at", "h3"]  # compared to tell a changed row
BULK_MAINTENANCE_WORK_MEM = "512MB"  # for the index rebuilds of bulk mode (sorts in memory)
JOIN_WORK_MEM = "256MB"  # stage ⋈ incidents as an in-memory hash join, not batches spilled to disk


def create_stage(conn: Connection) -> None:
    """A temporary, index-free table the chunks are COPY'd into (dropped at commit)."""
    conn.execute(text(f"DROP TABLE IF EXISTS {STAGE}"))  # a savepoint-wrapped earlier load may have left it
    conn.execute(text(
        f"CREATE TEMP TABLE {STAGE} (row_no bigint, external_id text, category text, priority text, "
        "origin text, occurred_at timestamptz, h3 bigint, grid_id int, geom geometry(Point, 4326)) "
        "ON COMMIT DROP"
    ))


def stage_columns(df: pd.DataFrame, source: str | None = None) -> list[pgcopy.Column]:
    """Encoded columns of a validated chunk: STAGE_COLUMNS, or TABLE_COLUMNS when ``source`` is given."""
    grid = df["grid_id"].to_numpy()
    n = len(df)
    first = (pgcopy.text(np.full(n, source, dtype=object)) if source is not None
             else pgcopy.int8(df["row_no"].to_numpy()))
    return [
        first,
        pgcopy.text(df["external_id"]),
        pgcopy.text(df["category"]),
        pgcopy.text(df["priority"]),
        pgcopy.text(df["origin"]),
        pgcopy.timestamptz(df["occurred_at"]),
        pgcopy.int8(df["h3"].to_numpy()),
        pgcopy.int4(np.where(grid < 0, 0, grid), null=grid < 0),
        pgcopy.point(df["lon"].to_numpy(), df["lat"].to_numpy()),
    ]


def open_stream(conn: Connection, direct: bool) -> pgcopy.CopyStream:
    """One COPY kept open for all chunks: into the stage, or (``direct``) into ``incidents``."""
    table, names = ("incidents", TABLE_COLUMNS) if direct else (STAGE, STAGE_COLUMNS)
    return pgcopy.CopyStream(conn.connection.driver_connection, table, names)


def present(conn: Connection, ids: list[str], source: str, direct: bool) -> dict[str, int | None]:
    """Which of ``ids`` this load already COPY'd, with the first row number where the stage has it."""
    if not ids:
        return {}
    if direct:
        q = "SELECT external_id, NULL FROM incidents WHERE source = :s AND external_id = ANY(:ids)"
    else:
        q = f"SELECT external_id, min(row_no) FROM {STAGE} WHERE external_id = ANY(:ids) GROUP BY 1"
    return {r[0]: r[1] for r in conn.execute(text(q), {"s": source, "ids": ids})}


def lock_writers(conn: Connection) -> None:
    """Keep other writers of ``incidents`` out until the load ends (readers still get in)."""
    conn.execute(text("LOCK TABLE incidents IN SHARE ROW EXCLUSIVE MODE"))


def source_has_rows(conn: Connection, source: str) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM incidents WHERE source = :s)"), {"s": source}).scalar())


def table_rows(conn: Connection) -> int:
    """Rows in ``incidents``: the planner's estimate, counted when there is none yet."""
    est = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'incidents'::regclass")).scalar()
    if est is None or est < 0:
        return int(conn.execute(text("SELECT count(*) FROM incidents")).scalar())
    return int(est)


def drop_unchanged(conn: Connection, source: str) -> int:
    """Delete stage rows identical to the stored ones: a re-load then writes nothing for them.

    (The geometry test is wrapped in ``IS TRUE`` so that the hash join keys on the id alone.)

    (An ``ON CONFLICT … DO UPDATE … WHERE`` that finds nothing to change still locks, i.e. writes,
    every conflicting row.) Returns the rows deleted.
    """
    same = " AND ".join(f"i.{c} IS NOT DISTINCT FROM s.{c}" for c in _VALUES)
    prepare_join(conn)
    return conn.execute(text(
        f"DELETE FROM {STAGE} s USING incidents i "
        f"WHERE i.source = :source AND i.external_id = s.external_id AND {same} AND (i.geom = s.geom) IS TRUE"
    ), {"source": source}).rowcount


def prepare_join(conn: Connection) -> None:
    """Statistics for the stage (a temp table is never auto-analyzed) and memory for its joins.

    ``SET LOCAL`` lasts to the end of the load's transaction and affects nothing else.
    """
    conn.execute(text(f"ANALYZE {STAGE}"))
    conn.execute(text(f"SET LOCAL work_mem = '{JOIN_WORK_MEM}'"))


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


def apply_stage_bulk(conn: Connection, source: str) -> tuple[int, int]:
    """Bulk mode's upsert, without the unique index ON CONFLICT needs: UPDATE changed rows, then
    INSERT the rest (hash joins). Same result as ``upsert_from_stage``. Returns (inserted, updated).
    """
    cols = [c for c in TABLE_COLUMNS if c not in ("source", "external_id")]
    prepare_join(conn)
    differs = (f"(i.{', i.'.join(_VALUES)}) IS DISTINCT FROM (s.{', s.'.join(_VALUES)}) "
               "OR NOT ST_Equals(i.geom, s.geom)")
    updated = conn.execute(text(
        f"UPDATE incidents i SET {', '.join(f'{c} = s.{c}' for c in cols)}, loaded_at = now() FROM {STAGE} s "
        f"WHERE i.source = :source AND i.external_id = s.external_id AND ({differs})"
    ), {"source": source}).rowcount
    inserted = conn.execute(text(
        f"INSERT INTO incidents ({', '.join(TABLE_COLUMNS)}) "
        f"SELECT CAST(:source AS text), s.external_id, {', '.join('s.' + c for c in cols)} FROM {STAGE} s "
        "WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.source = CAST(:source AS text) AND i.external_id = s.external_id)"
    ), {"source": source}).rowcount
    return inserted, updated


@dataclass
class DroppedIndexes:
    """What bulk mode dropped: (name, CREATE INDEX …) and (name, constraint definition) pairs."""

    indexes: list[tuple[str, str]]
    constraints: list[tuple[str, str]]


def drop_indexes(conn: Connection) -> DroppedIndexes:
    """Lock ``incidents`` and drop its secondary indexes and unique constraints (not the primary key).

    Definitions come from the catalog (``pg_get_indexdef`` / ``pg_get_constraintdef``), so whatever
    indexes later migrations add are rebuilt exactly as they were.
    """
    conn.execute(text("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE"))
    idx = conn.execute(text(
        "SELECT x.indexrelid::regclass::text, pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "WHERE x.indrelid = 'incidents'::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY 1"
    )).all()
    cons = conn.execute(text(
        "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'incidents'::regclass AND contype = 'u' ORDER BY 1"
    )).all()
    for name, _ in cons:
        conn.execute(text(f"ALTER TABLE incidents DROP CONSTRAINT {name}"))
    for name, _ in idx:
        conn.execute(text(f"DROP INDEX {name}"))
    return DroppedIndexes([tuple(r) for r in idx], [tuple(r) for r in cons])


def rebuild_constraints(conn: Connection, dropped: DroppedIndexes) -> None:
    """Re-create the unique constraints (first: ON CONFLICT and id look-ups need them)."""
    conn.execute(text(f"SET LOCAL maintenance_work_mem = '{BULK_MAINTENANCE_WORK_MEM}'"))
    for name, definition in dropped.constraints:
        conn.execute(text(f"ALTER TABLE incidents ADD CONSTRAINT {name} {definition}"))
    dropped.constraints = []


def rebuild_indexes(conn: Connection, dropped: DroppedIndexes) -> None:
    """Re-create every index ``drop_indexes`` dropped, from its own definition."""
    rebuild_constraints(conn, dropped)
    for _, definition in dropped.indexes:
        conn.execute(text(definition))
    dropped.indexes = []


def h3_resolution(conn: Connection) -> int | None:
    v = conn.execute(text("SELECT value FROM store_meta WHERE key = 'h3_resolution'")).scalar()
    return None if v is None else int(v)


def set_h3_resolution(conn: Connection, res: int) -> None:
    conn.execute(text(
        "INSERT INTO store_meta (key, value) VALUES ('h3_resolution', :v) ON CONFLICT (key) DO NOTHING"
    ), {"v": str(res)})
