"""Incident ingest against a real PostGIS: formats, CRSs, bad rows, atomicity, idempotency, chunking."""
from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geogrid.crs import from_wgs84
from geogrid.errors import InputError
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.grids import load_grids
from geogrid.ingest.incidents import IngestAborted, load_incidents


CSV_FIELDS = FieldMap(id="id", lon="lon", lat="lat", time="time", category="category")
GRID_FIELDS = FieldMap(code="code", name="name", kind="kind", population="population", key_areas="key_areas", post="post")


@pytest.fixture
def with_grids(conn, grid_frame, tmp_path):
    path = tmp_path / "grids.gpkg"
    grid_frame.to_file(path, driver="GPKG")
    load_grids(conn, path, GRID_FIELDS, plan="test-plan", activate=True)
    return conn


def count(conn, source=None) -> int:
    q = "SELECT count(*) FROM incidents" + (" WHERE source = :s" if source else "")
    return conn.execute(text(q), {"s": source}).scalar()


def write_csv(df, tmp_path, name="incidents.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_csv_load_indexes_h3_and_grid(with_grids, incidents_df, tmp_path):
    conn = with_grids
    res = load_incidents(conn, write_csv(incidents_df, tmp_path), CSV_FIELDS, source="t")
    assert (res.rows_read, res.rows_loaded, res.inserted, res.rejected) == (200, 200, 200, 0)
    rows = conn.execute(text(
        "SELECT i.external_id, ST_X(i.geom), ST_Y(i.geom), i.h3, g.code, i.category, i.priority "
        "FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id WHERE source = 't'")).all()
    df = pd.DataFrame(rows, columns=["id", "x", "y", "h3", "grid", "category", "priority"]).set_index("id")
    # H3 cells equal h3's own answer
    want = [h3.str_to_int(h3.latlng_to_cell(y, x, 9)) for x, y in zip(df.x, df.y)]
    assert (df.h3.astype("uint64").to_numpy() == np.array(want, dtype=np.uint64)).all()
    # the grid stored is the grid that contains the point (shapely), and PostGIS agrees
    gdf = pd.DataFrame(incidents_df).set_index("id")
    assert set(df.category) <= {"neighbour_dispute", "theft", "telecom_fraud"}
    pg = dict(conn.execute(text(
        "SELECT i.external_id, g.code FROM incidents i JOIN grids g ON ST_Contains(g.geom, i.geom) "
        "JOIN plans p ON p.id = g.plan_id AND p.status = 'active' WHERE i.source = 't'")).all())
    assert pg == df.grid.to_dict()
    assert df.grid.notna().all() and len(gdf) == len(df)


def test_reload_is_idempotent_and_updates_changed_rows(with_grids, incidents_df, tmp_path):
    conn = with_grids
    path = write_csv(incidents_df, tmp_path)
    load_incidents(conn, path, CSV_FIELDS, source="t")
    again = load_incidents(conn, path, CSV_FIELDS, source="t")
    assert (again.inserted, again.updated, count(conn, "t")) == (0, 0, 200)
    changed = incidents_df.copy()
    changed.loc[:4, "category"] = "抢劫"
    res = load_incidents(conn, write_csv(changed, tmp_path), CSV_FIELDS, source="t")
    assert (res.inserted, res.updated, count(conn, "t")) == (0, 5, 200)
    assert conn.execute(text("SELECT count(*) FROM incidents WHERE source='t' AND category='robbery'")).scalar() == 5


def _bad_file(incidents_df):
    df = incidents_df.head(20).copy().astype(object)
    df.loc[1, "lon"] = None                       # missing coordinate
    df.loc[2, "lat"] = "abc"                      # non-numeric
    df.loc[3, ["lon", "lat"]] = [df.loc[3, "lat"], df.loc[3, "lon"]]  # swapped
    df.loc[4, ["lon", "lat"]] = [117.9, 31.9]     # outside the jurisdiction
    df.loc[5, ["lon", "lat"]] = [250.0, 31.8]     # outside plausible bounds
    df.loc[6, "time"] = "yesterday-ish"           # unparseable
    df.loc[7, "time"] = "2999-01-01 00:00:00"     # future
    df.loc[8, "category"] = "外星人入侵"           # unknown category
    df.loc[9, "id"] = df.loc[10, "id"]            # duplicate id inside the file
    return df


EXPECTED = {  # file row (1-based) -> (field, words in the reason)
    2: ("lon", "missing"), 3: ("lat", "not a number"), 4: ("lat", "swapped"),
    5: ("lon", "jurisdiction"), 6: ("lon", "plausible"), 7: ("time", "unparseable"),
    8: ("time", "future"), 11: ("id", "duplicate"),
}


def test_each_bad_row_is_reported_with_row_field_reason(with_grids, incidents_df, tmp_path):
    conn = with_grids
    path = write_csv(_bad_file(incidents_df), tmp_path)
    res = load_incidents(conn, path, CSV_FIELDS, source="t")
    report = pd.read_csv(res.report_path)
    got = {int(r.row): (r.field, r.reason) for r in report.itertuples()}
    assert set(got) == set(EXPECTED), report
    for row, (field, words) in EXPECTED.items():
        assert got[row][0] == field and words in got[row][1], (row, got[row])
    assert res.rows_loaded == 20 - len(EXPECTED) == count(conn, "t")
    assert any("外星人入侵" in w for w in res.log.warnings)  # unknown category: loaded as other, warned
    assert conn.execute(text("SELECT category FROM incidents WHERE external_id = :e"),
                        {"e": incidents_df.loc[8, "id"]}).scalar() == "other"


def test_strict_rejects_unknown_category_and_writes_nothing(with_grids, incidents_df, tmp_path):
    conn = with_grids
    before = count(conn)
    with pytest.raises(IngestAborted, match="--strict"):
        load_incidents(conn, write_csv(_bad_file(incidents_df), tmp_path), CSV_FIELDS, source="t", strict=True)
    assert count(conn) == before
    report = pd.read_csv(tmp_path / "incidents.csv.rejected.csv")
    assert "unknown category" in " ".join(report.reason)


def test_failed_load_leaves_database_unchanged(with_grids, incidents_df, tmp_path, monkeypatch):
    """A failure after rows were COPY'd (here: the upsert step) rolls everything back."""
    from geogrid.store import incidents as store

    conn = with_grids
    load_incidents(conn, write_csv(incidents_df.head(50), tmp_path, "first.csv"), CSV_FIELDS, source="t")
    snapshot = conn.execute(text("SELECT external_id, category, occurred_at FROM incidents ORDER BY 1")).all()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "upsert_from_stage", boom)
    with pytest.raises(RuntimeError):
        load_incidents(conn, write_csv(incidents_df, tmp_path), CSV_FIELDS, source="t", chunk_rows=30)
    assert conn.execute(text("SELECT external_id, category, occurred_at FROM incidents ORDER BY 1")).all() == snapshot
    assert conn.execute(text("SELECT count(*) FROM ingest_runs WHERE path LIKE '%incidents.csv'")).scalar() == 0


def test_chunked_load_equals_single_chunk_and_finds_duplicates_across_chunks(with_grids, incidents_df, tmp_path):
    conn = with_grids
    df = pd.concat([incidents_df, incidents_df.iloc[[3]]], ignore_index=True)  # row 201 repeats row 4
    res = load_incidents(conn, write_csv(df, tmp_path), CSV_FIELDS, source="t", chunk_rows=37)
    assert (res.rows_read, res.rows_loaded, res.rejected) == (201, 200, 1)
    assert res.log.first(1)[0][:2] == (201, "id")


def test_missing_column_is_a_clear_error(conn, incidents_df, tmp_path):
    with pytest.raises(InputError, match="no column 'when'.*the file has: id, lon, lat, time, category"):
        load_incidents(conn, write_csv(incidents_df, tmp_path), CSV_FIELDS.merged(time="when"), source="t")


def _points_gdf(df):
    import geopandas as gpd

    return gpd.GeoDataFrame(df.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(df.lon, df.lat), crs=4326)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp.zip", "parquet", "csv"], ids=str)
def test_every_format_loads_the_same_rows(with_grids, incidents_df, tmp_path, fmt):
    conn = with_grids
    gdf = _points_gdf(incidents_df)
    path = tmp_path / f"inc.{fmt}"
    if fmt == "geojson":
        gdf.to_file(path, driver="GeoJSON")
    elif fmt == "gpkg":
        gdf.to_file(path, driver="GPKG")
    elif fmt == "shp.zip":
        import zipfile

        shp_dir = tmp_path / "shp"
        shp_dir.mkdir()
        gdf.to_file(shp_dir / "inc.shp", driver="ESRI Shapefile", encoding="utf-8")
        path = tmp_path / "inc.zip"
        with zipfile.ZipFile(path, "w") as z:
            for f in shp_dir.iterdir():
                z.write(f, f.name)
    elif fmt == "parquet":
        gdf.to_parquet(path)
    else:
        incidents_df.to_csv(path, index=False)
    fields = FieldMap(id="id", time="time", category="category", lon="lon", lat="lat")
    res = load_incidents(conn, path, fields, source=f"fmt-{fmt}")
    assert (res.rows_loaded, res.rejected) == (200, 0)
    xy = conn.execute(text("SELECT external_id, ST_X(geom), ST_Y(geom) FROM incidents WHERE source = :s"),
                      {"s": f"fmt-{fmt}"}).all()
    got = pd.DataFrame(xy, columns=["id", "x", "y"]).set_index("id").sort_index()
    want = incidents_df.set_index("id").sort_index()
    assert np.allclose(got.x, want.lon, atol=1e-9) and np.allclose(got.y, want.lat, atol=1e-9)


def _geodesic_m(lon1, lat1, lon2, lat2):
    from pyproj import Geod

    return np.abs(Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2])


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "EPSG:3857", "EPSG:4490", "EPSG:32650"], ids=str)
def test_coordinate_systems_are_converted_to_wgs84(with_grids, incidents_df, tmp_path, crs):
    conn = with_grids
    df = incidents_df.copy()
    df["lon"], df["lat"] = from_wgs84(incidents_df.lon.to_numpy(), incidents_df.lat.to_numpy(), crs)
    res = load_incidents(conn, write_csv(df, tmp_path), CSV_FIELDS, source="t", crs=crs)
    assert (res.rows_loaded, res.rejected) == (200, 0)
    xy = conn.execute(text("SELECT external_id, ST_X(geom), ST_Y(geom) FROM incidents WHERE source='t'")).all()
    got = pd.DataFrame(xy, columns=["id", "x", "y"]).set_index("id").loc[incidents_df.id]
    err = _geodesic_m(got.x.to_numpy(), got.y.to_numpy(), incidents_df.lon.to_numpy(), incidents_df.lat.to_numpy())
    assert err.max() < 1.0, err.max()


def test_offset_crs_outside_china_is_implausible(conn, incidents_df, tmp_path):
    df = incidents_df.head(3).copy()
    df["lon"], df["lat"] = -87.6, 41.8  # Chicago, labelled as GCJ-02
    res = load_incidents(conn, write_csv(df, tmp_path), CSV_FIELDS, source="t", crs="gcj02")
    assert res.rows_loaded == 0 and all("only in China" in r[2] for r in res.log.first(3))


def test_file_without_ids_gets_stable_content_ids(with_grids, incidents_df, tmp_path):
    conn = with_grids
    path = write_csv(incidents_df.drop(columns="id"), tmp_path)
    fields = FieldMap(lon="lon", lat="lat", time="time", category="category")
    a = load_incidents(conn, path, fields, source="t")
    b = load_incidents(conn, path, fields, source="t")
    assert (a.inserted, b.inserted, b.updated, count(conn, "t")) == (200, 0, 0, 200)


def test_naive_times_are_local_time_in_the_given_zone(conn, incidents_df, tmp_path):
    df = incidents_df.head(1).copy()
    df["time"] = "2025-07-01 08:00:00"
    load_incidents(conn, write_csv(df, tmp_path), CSV_FIELDS, source="t", tz="Asia/Shanghai")
    got = conn.execute(text("SELECT occurred_at AT TIME ZONE 'UTC' FROM incidents WHERE source='t'")).scalar()
    assert str(got) == "2025-07-01 00:00:00"
