"""Grid ingest: plans, repairs, strictness, idempotency, formats."""
from __future__ import annotations

import zipfile

import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geogrid.crs import from_wgs84
from geogrid.errors import InputError
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.grids import load_grids
from geogrid.ingest.incidents import IngestAborted

FIELDS = FieldMap(code="code", name="name", kind="kind", population="population", key_areas="key_areas", post="post")


def grids_in_db(conn, plan="p"):
    return pd.DataFrame(conn.execute(text(
        "SELECT g.code, g.name, g.kind, g.population, g.key_areas, g.post_code, ST_AsText(g.geom) AS wkt, "
        "ST_IsValid(g.geom) AS valid FROM grids g JOIN plans p ON p.id = g.plan_id WHERE p.name = :p ORDER BY code"),
        {"p": plan}).mappings().all())


def test_load_creates_and_activates_plan(conn, grid_frame, tmp_path):
    path = tmp_path / "g.gpkg"
    grid_frame.to_file(path, driver="GPKG")
    res = load_grids(conn, path, FIELDS, plan="p")
    assert (res.rows_loaded, res.inserted, res.rejected) == (6, 6, 0)
    df = grids_in_db(conn)
    assert df.code.tolist() == [f"G{i}" for i in range(1, 7)]
    assert df.loc[1, "key_areas"] == ["commercial_street", "old_compound"]
    assert df.loc[4, "key_areas"] == ["urban_village"] and df.loc[0, "name"] == "测试社区第1网格"
    assert conn.execute(text("SELECT status FROM plans WHERE name='p'")).scalar() == "active"
    again = load_grids(conn, path, FIELDS, plan="p")
    assert (again.inserted, again.updated) == (0, 0)


def test_invalid_polygon_is_repaired_and_reported(conn, grid_frame, tmp_path):
    g = grid_frame.copy()
    x0, y0, x1, y1 = g.geometry[0].bounds
    g.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow-tie
    path = tmp_path / "g.geojson"
    g.to_file(path, driver="GeoJSON")
    res = load_grids(conn, path, FIELDS, plan="p")
    assert res.rejected == 0 and any("row 1: invalid polygon repaired" in w for w in res.log.warnings)
    df = grids_in_db(conn)
    assert df.valid.all() and df.wkt[0].startswith("MULTIPOLYGON")


def test_strict_rejects_invalid_polygon_and_writes_nothing(conn, grid_frame, tmp_path):
    g = grid_frame.copy()
    x0, y0, x1, y1 = g.geometry[0].bounds
    g.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    path = tmp_path / "g.geojson"
    g.to_file(path, driver="GeoJSON")
    with pytest.raises(IngestAborted):
        load_grids(conn, path, FIELDS, plan="p", strict=True)
    assert conn.execute(text("SELECT count(*) FROM plans WHERE name = 'p'")).scalar() == 0
    report = pd.read_csv(f"{path}.rejected.csv")
    assert report.iloc[0].row == 1 and "Self-intersection" in report.iloc[0].reason


def test_bad_rows_are_reported(conn, grid_frame, tmp_path):
    g = grid_frame.copy()
    g.loc[1, "code"] = "G1"          # duplicate code
    g.loc[2, "kind"] = "suburban"    # unknown kind
    g.loc[3, "population"] = -5      # negative population
    path = tmp_path / "g.gpkg"
    g.to_file(path, driver="GPKG")
    res = load_grids(conn, path, FIELDS, plan="p")
    got = {int(r.row): (r.field, r.reason) for r in pd.read_csv(res.report_path).itertuples()}
    assert got[2][0] == "code" and "duplicate" in got[2][1]
    assert got[3][0] == "kind" and got[4][0] == "population"
    assert res.rows_loaded == 3


def test_zipped_shapefile_in_gcj02(conn, grid_frame, tmp_path):
    g = grid_frame.copy()
    g["geometry"] = shapely.transform(g.geometry.to_numpy(), lambda xy: __import__("numpy").column_stack(
        from_wgs84(xy[:, 0], xy[:, 1], "gcj02")))
    d = tmp_path / "shp"
    d.mkdir()
    g.to_file(d / "grids.shp", driver="ESRI Shapefile", encoding="utf-8")
    path = tmp_path / "grids.zip"
    with zipfile.ZipFile(path, "w") as z:
        for f in d.iterdir():
            z.write(f, f.name)
    res = load_grids(conn, path, FIELDS, plan="p", crs="gcj02")
    assert res.rows_loaded == 6
    back = shapely.from_wkt(grids_in_db(conn).wkt[0])
    # converted back to WGS-84: the corner matches the original within ~1e-8° (≈ 1 mm)
    assert shapely.equals_exact(back.geoms[0].exterior.envelope, grid_frame.geometry[0].envelope, tolerance=1e-8)
    assert grids_in_db(conn).name[0] == "测试社区第1网格"


def test_missing_code_option_is_a_clear_error(conn, grid_frame, tmp_path):
    path = tmp_path / "g.gpkg"
    grid_frame.to_file(path, driver="GPKG")
    with pytest.raises(InputError, match="--code"):
        load_grids(conn, path, FieldMap(), plan="p")
    with pytest.raises(InputError, match="no column 'nope'"):
        load_grids(conn, path, FIELDS.merged(name="nope"), plan="p")
