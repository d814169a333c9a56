"""Plans: one active at a time, incidents follow the active plan, and which plan was in force when."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from geogrid.errors import Conflict, NotFound
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.grids import load_grids
from geogrid.ingest.incidents import load_incidents
from geogrid.store import plans

FIELDS = FieldMap(code="code", name="name", kind="kind")


def _write(gdf, path):
    gdf.to_file(path, driver="GPKG")
    return path


def test_activating_a_plan_reassigns_incidents_and_keeps_history(conn, grid_frame, incidents_df, tmp_path):
    t0 = datetime.now(timezone.utc)
    load_grids(conn, _write(grid_frame, tmp_path / "a.gpkg"), FIELDS, plan="A", activate=True)
    incidents_df.to_csv(tmp_path / "i.csv", index=False)
    load_incidents(conn, tmp_path / "i.csv", FieldMap(id="id", lon="lon", lat="lat", time="time", category="category"),
                   source="t")
    # plan B: the six grids merged into two halves (west = G1,G2,G4,G5; east = G3,G6)
    west = shapely.union_all(grid_frame.geometry[[0, 1, 3, 4]].to_numpy())
    east = shapely.union_all(grid_frame.geometry[[2, 5]].to_numpy())
    b = gpd.GeoDataFrame({"code": ["W", "E"], "name": ["西", "东"], "kind": ["urban", "urban"]},
                         geometry=[west, east], crs=4326)
    load_grids(conn, _write(b, tmp_path / "b.gpkg"), FIELDS, plan="B", activate=False)
    plan_b = plans.get_plan(conn, "B")
    later = t0 + timedelta(seconds=5)
    plans.activate_plan(conn, plan_b["id"], at=later)
    got = dict(conn.execute(text(
        "SELECT g.code, count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id GROUP BY 1")).all())
    want = dict(conn.execute(text(
        "SELECT g.code, count(*) FROM incidents i JOIN grids g ON ST_Contains(g.geom, i.geom) "
        "WHERE g.plan_id = :p GROUP BY 1"), {"p": plan_b["id"]}).all())
    assert got == want and sum(got.values()) == len(incidents_df)
    # which plan was in force when
    assert plans.plan_in_force(conn, later + timedelta(seconds=1))["name"] == "B"
    assert plans.plan_in_force(conn, later - timedelta(seconds=1))["name"] == "A"
    with pytest.raises(NotFound):
        plans.plan_in_force(conn, t0 - timedelta(days=1))
    assert conn.execute(text("SELECT count(*) FROM plans WHERE status = 'active'")).scalar() == 1


def test_two_active_plans_are_impossible(conn):
    conn.execute(text("INSERT INTO plans (name, status) VALUES ('x', 'active')"))
    with pytest.raises(IntegrityError):
        with conn.begin_nested():
            conn.execute(text("INSERT INTO plans (name, status) VALUES ('y', 'active')"))


def test_empty_plan_cannot_be_activated(conn):
    plan, _ = plans.get_or_create_plan(conn, "empty")
    with pytest.raises(Conflict, match="no grids"):
        plans.activate_plan(conn, plan["id"])
