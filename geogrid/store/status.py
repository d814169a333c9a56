"""Store overview: row counts per table and the active plan."""
from __future__ import annotations

from sqlalchemy import Connection, text

TABLES = ("plans", "grids", "posts", "staff", "incidents", "roads", "ingest_runs")


def table_counts(conn: Connection) -> tuple[dict[str, int], str | None]:
    counts = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()) for t in TABLES}
    plan = conn.execute(text("SELECT name FROM plans WHERE status = 'active'")).scalar()
    return counts, plan
