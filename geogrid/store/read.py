"""Reads for analyses: incidents as DataFrames, filtered in SQL by time, category and origin."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text


def read_incidents(conn: Connection, start=None, end=None, categories: list[str] | None = None,
                   origin: str | None = None, source: str | None = None) -> pd.DataFrame:
    """Incidents with lon, lat, occurred_at (UTC), category, priority, origin, h3, grid_id."""
    where, params = ["true"], {}
    if start is not None:
        where.append("occurred_at >= :start"), params.update(start=pd.Timestamp(start).to_pydatetime())
    if end is not None:
        where.append("occurred_at < :end"), params.update(end=pd.Timestamp(end).to_pydatetime())
    if categories:
        where.append("category = ANY(:cats)"), params.update(cats=list(categories))
    if origin:
        where.append("origin = :origin"), params.update(origin=origin)
    if source:
        where.append("source = :source"), params.update(source=source)
    sql = text(
        "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, occurred_at, category, priority, origin, h3, grid_id "
        f"FROM incidents WHERE {' AND '.join(where)} ORDER BY id")
    # plain tuples: pandas probes each Row's attributes, which costs ~1.5 s per 200,000 rows
    rows = [tuple(r) for r in conn.execute(sql, params)]
    df = pd.DataFrame(rows, columns=["id", "lon", "lat", "occurred_at", "category", "priority", "origin", "h3", "grid_id"])
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True)
    df["grid_id"] = df["grid_id"].astype("Int64")
    df["h3"] = df["h3"].astype("int64")
    return df
