"""Roads into the store (real PostGIS): a good file, rejected rows with reasons, idempotent re-load,
atomic failure, CRS handling, the demo network and `geogrid ingest roads` as users run it."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, Point
from sqlalchemy import text

from geogrid.errors import InputError
from geogrid.ingest.incidents import IngestAborted
from geogrid.ingest.roads import load_roads, save_roads
from geogrid.roads import read_roads, roads_cover_share

X0, Y0 = 117.20, 31.80


def _roads() -> gpd.GeoDataFrame:
    """Five good roads near Hefei: speeds given, one from its kind, one multi-part."""
    return gpd.GeoDataFrame({
        "name": ["长江路", "黄山路", "环城路", "小巷", "双线"],
        "kind": ["primary", "secondary", "ring", "residential", "arterial"],
        "speed": ["50", "40", None, "15 km/h", "45"],
        "oneway": ["no", "yes", "", "否", "1"],
    }, geometry=[LineString([(X0, Y0), (X0 + 0.02, Y0)]), LineString([(X0, Y0), (X0, Y0 + 0.02)]),
                 LineString([(X0, Y0 + 0.02), (X0 + 0.02, Y0 + 0.02)]), LineString([(X0 + 0.02, Y0), (X0 + 0.02, Y0 + 0.02)]),
                 MultiLineString([[(X0, Y0 + 0.01), (X0 + 0.01, Y0 + 0.01)], [(X0 + 0.01, Y0 + 0.01), (X0 + 0.02, Y0 + 0.01)]])],
        crs=4326)


@pytest.fixture
def roads_file(tmp_path):
    path = tmp_path / "roads.geojson"
    _roads().to_file(path, driver="GeoJSON")
    return path


def _count(conn, source):
    return conn.execute(text("SELECT count(*) FROM roads WHERE source = :s"), {"s": source}).scalar()


def _layer(conn):
    return conn.execute(text("SELECT version FROM layer_versions WHERE layer = 'roads'")).scalar()


def test_good_file_is_stored_with_speeds_kinds_and_wgs84_lines(conn, roads_file):
    before = _layer(conn)
    res = load_roads(conn, roads_file, source="hefei", speed="speed", kind="kind", name="name", oneway="oneway")
    assert (res.rows_read, res.rows_loaded, res.rejected, res.extra["replaced"]) == (5, 5, 0, 0)
    got = read_roads(conn, source="hefei").set_index("name")
    assert got.loc["长江路", "speed_kmh"] == 50 and got.loc["小巷", "speed_kmh"] == 15
    assert got.loc["环城路", "speed_kmh"] == 60  # no speed given: the speed of its kind ("ring")
    assert {k: bool(v) for k, v in got["oneway"].items()} == {"长江路": False, "黄山路": True, "环城路": False,
                                                              "小巷": False, "双线": True}
    assert (got.geom_type == "MultiLineString").all() and got.crs.to_epsg() == 4326
    assert got.loc["双线"].geometry.length == pytest.approx(0.02)
    assert _layer(conn) > before  # the roads layer's version moves (tile ETags)
    assert conn.execute(text("SELECT rows_loaded FROM ingest_runs WHERE kind = 'roads' AND source = 'hefei'")).scalar() == 5


def test_bad_rows_are_reported_by_row_field_and_reason(conn, tmp_path):
    df = _roads()
    bad = gpd.GeoDataFrame({
        "name": ["no geometry", "a point", "fast", "negative", "no speed", "far too fast"],
        "kind": ["primary", "primary", "primary", "primary", "footpath-x", "primary"],
        "speed": ["30", "30", "fast", "-5", None, "500"],
        "oneway": ["", "", "", "", "", ""],
    }, geometry=[None, Point(X0, Y0), LineString([(X0, Y0), (X0 + 0.01, Y0)]), LineString([(X0, Y0), (X0, Y0 + 0.01)]),
                 LineString([(X0, Y0), (X0 + 0.01, Y0 + 0.01)]), LineString([(X0, Y0), (X0 + 0.02, Y0 + 0.01)])], crs=4326)
    path = tmp_path / "mixed.gpkg"
    gpd.GeoDataFrame(
        {c: list(df[c]) + list(bad[c]) for c in ("name", "kind", "speed", "oneway")},
        geometry=list(df.geometry) + list(bad.geometry), crs=4326).to_file(path, driver="GPKG")
    res = load_roads(conn, path, source="mixed", speed="speed", kind="kind", name="name", oneway="oneway")
    assert (res.rows_loaded, res.rejected) == (5, 6)
    assert _count(conn, "mixed") == 5
    with open(res.report_path, encoding="utf-8") as f:
        report = {int(r["row"]): (r["field"], r["reason"]) for r in csv.DictReader(f)}
    assert report[6][0] == "geometry" and "missing" in report[6][1]
    assert report[7] == ("geometry", "not a line (LineString or MultiLineString)")
    assert report[8] == ("speed", "not a number")
    assert report[9][0] == "speed" and "outside" in report[9][1]
    assert report[10][0] == "speed" and "no speed" in report[10][1]
    assert report[11][0] == "speed" and "outside" in report[11][1]


def test_reload_of_the_same_source_is_idempotent(conn, roads_file):
    first = load_roads(conn, roads_file, source="hefei", speed="speed", kind="kind", name="name")
    rows1 = read_roads(conn, source="hefei").drop(columns="id")
    again = load_roads(conn, roads_file, source="hefei", speed="speed", kind="kind", name="name")
    rows2 = read_roads(conn, source="hefei").drop(columns="id")
    assert first.extra["replaced"] == 0 and again.extra["replaced"] == 5 and _count(conn, "hefei") == 5
    assert rows1.drop(columns="geometry").equals(rows2.drop(columns="geometry"))
    assert rows1.geometry.geom_equals(rows2.geometry).all()
    # another source is a network of its own: loading it leaves the first alone
    load_roads(conn, roads_file, source="other", speed="speed", kind="kind")
    assert _count(conn, "hefei") == 5 and _count(conn, "other") == 5


def test_a_failed_load_leaves_the_previous_roads_in_place(conn, roads_file, tmp_path):
    from geogrid.store.engine import transaction

    load_roads(conn, roads_file, source="hefei", speed="speed", kind="kind", name="name")
    before = read_roads(conn, source="hefei")
    broken = _roads()
    broken.loc[0, "speed"] = "fast"
    path = tmp_path / "broken.geojson"
    broken.to_file(path, driver="GeoJSON")
    with pytest.raises(IngestAborted):
        load_roads(conn, path, source="hefei", speed="speed", kind="kind", strict=True)
    assert read_roads(conn, source="hefei")["id"].tolist() == before["id"].tolist()
    # a failure inside the database after the old rows were deleted (speed breaks the CHECK) rolls back
    frame = before.assign(speed_kmh=before["speed_kmh"].where(before.index != 2, 500.0))
    with pytest.raises(Exception, match="ck_roads_speed"):
        with transaction(conn) as c:
            save_roads(c, frame, "hefei")
    assert read_roads(conn, source="hefei")["id"].tolist() == before["id"].tolist()


def test_projected_and_gcj02_files_are_stored_in_wgs84(conn, tmp_path):
    from geogrid.crs import from_wgs84

    roads = _roads()
    utm = roads.to_crs(32650)
    p1 = tmp_path / "utm.gpkg"
    utm.to_file(p1, driver="GPKG")
    load_roads(conn, p1, source="utm", speed="speed", kind="kind", name="name")
    got = read_roads(conn, source="utm").set_index("name")
    assert got.loc["长江路"].geometry.hausdorff_distance(roads.geometry[0]) < 1e-7

    gcj = roads.copy()
    gcj["geometry"] = shapely.transform(roads.geometry.to_numpy(),
                                        lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], "gcj02")))
    p2 = tmp_path / "gcj.geojson"
    gcj.to_file(p2, driver="GeoJSON")
    load_roads(conn, p2, source="gcj", speed="speed", kind="kind", name="name", crs="gcj02")
    got = read_roads(conn, source="gcj").set_index("name")
    assert got.loc["长江路"].geometry.hausdorff_distance(roads.geometry[0]) < 1e-5  # about a metre


def test_missing_columns_and_non_line_files_are_clear_errors(conn, roads_file, tmp_path):
    with pytest.raises(InputError, match="no column --speed 'maxspeed'"):
        load_roads(conn, roads_file, source="x", speed="maxspeed")
    csv_path = tmp_path / "roads.csv"
    csv_path.write_text("name,speed\nA,30\n", encoding="utf-8")
    with pytest.raises(InputError, match="line geometries"):
        load_roads(conn, csv_path, source="x", speed="speed")


def test_demo_network_covers_the_demo_plan(conn, tmp_path):
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city
    from geogrid.store.grids import read_grids

    city = generate_city(seed=5, n_incidents=500, days=30, n_grids=50, n_posts=3, n_officers=10, n_auxiliaries=10)
    files = write_city(tmp_path / "city", city=city)
    loaded = load_city_files(conn, files, roads=True)
    assert loaded["roads"].rejected == 0 and loaded["roads"].rows_loaded > 0
    plan_id = int(read_grids(conn)["plan_id"].iloc[0])
    assert roads_cover_share(conn, plan_id) == 1.0  # generate_roads joins every grid to the network
    assert len(read_roads(conn, plan_id)) == _count(conn, "demo-roads")


def test_cli_ingest_roads(engine, database_url, roads_file):
    env = {**os.environ, "GEOGRID_DATABASE_URL": database_url, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "geogrid.cli", "ingest", "roads", str(roads_file), "--speed", "speed", "--kind",
           "kind", "--name", "name", "--source", "cli-roads-test"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "loaded 5" in out.stdout and "rejected 0" in out.stdout
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert "5 previous roads of that source replaced" in again.stdout
        with engine.connect() as c:
            assert _count(c, "cli-roads-test") == 5
        bad = subprocess.run([*cmd[:6], "--speed", "nope"], capture_output=True, text=True, env=env, timeout=300)
        assert bad.returncode == 2 and "no column --speed 'nope'" in bad.stderr
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM roads WHERE source = 'cli-roads-test'"))
            c.execute(text("DELETE FROM ingest_runs WHERE source = 'cli-roads-test'"))
