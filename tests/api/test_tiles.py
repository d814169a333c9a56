"""Vector tiles from the live server, decoded by GDAL's MVT driver (pyogrio's GDAL and /usr/bin/ogrinfo)."""
from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import h3
import httpx
import morecantile
import pandas as pd
import pyogrio
import pytest
import shapely
from sqlalchemy import text

from api.collections import COLLECTIONS
from api.mvt import MVT_TYPE, RAW_MIN_ZOOM, SUPPRESS_BELOW, cell_resolution

TMS = morecantile.tms.get("WebMercatorQuad")


def tile_url(coll: str, z: int, x: int, y: int) -> str:
    return f"/collections/{coll}/tiles/WebMercatorQuad/{z}/{x}/{y}"


def decode(tmp: Path, body: bytes, z: int, x: int, y: int) -> dict:
    """layer name → GeoDataFrame in EPSG:4326, read by GDAL's MVT driver from a z/x/y.pbf file."""
    path = tmp / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return {name: pyogrio.read_dataframe(path, layer=name).to_crs(4326)
            for name, _ in pyogrio.list_layers(path)}


def tile_around(bounds, max_zoom: int = 16) -> morecantile.Tile:
    """The deepest tile holding the whole box ``bounds``."""
    for z in range(max_zoom, -1, -1):
        tiles = list(TMS.tiles(*bounds, [z]))
        if len(tiles) == 1:
            return tiles[0]
    raise AssertionError(bounds)


@pytest.fixture(scope="module")
def grid(api_city):
    """One grid of the active plan: (code, WKT, bounds)."""
    with api_city.connect() as conn:
        code, wkt = conn.execute(text(
            "SELECT g.code, ST_AsText(g.geom) FROM grids g JOIN plans p ON p.id = g.plan_id "
            "WHERE p.status = 'active' ORDER BY g.code LIMIT 1 OFFSET 7")).first()
    geom = shapely.from_wkt(wkt)
    return code, geom


@pytest.fixture(scope="module")
def dense(api_city):
    """The centre of the H3 cell with most incidents, and the incident counts per cell (hex id → n)."""
    with api_city.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c, count(*) n FROM incidents "
            "GROUP BY h3 ORDER BY n DESC LIMIT 1) s")).first()
        counts = {h3.int_to_str(c): n for c, n in conn.execute(text("SELECT h3, count(*) FROM incidents GROUP BY h3"))}
    return lon, lat, counts


@pytest.fixture(scope="module")
def mixed_tile(dense):
    """The z14 tile around the cell under 5 incidents nearest the densest cell (it holds both kinds)."""
    lon, lat, counts = dense
    sparse = [h3.cell_to_latlng(c) for c, n in counts.items() if n < SUPPRESS_BELOW]
    y, x = min(sparse, key=lambda p: (p[0] - lat) ** 2 + (p[1] - lon) ** 2)
    return TMS.tile(x, y, 14)


def test_grid_tile_decodes_with_properties_and_geometry(server, auth, grid, tmp_path, api_city):
    code, geom = grid
    t = tile_around(geom.bounds)
    r = httpx.get(server + tile_url("grids", t.z, t.x, t.y), headers=auth("viewer"))
    assert r.status_code == 200 and r.headers["content-type"] == MVT_TYPE
    layers = decode(tmp_path, r.content, t.z, t.x, t.y)
    assert list(layers) == ["grids"]
    df = layers["grids"]
    assert set(COLLECTIONS["grids"].properties) <= set(df.columns)
    row = df[df["code"] == code]
    assert len(row) == 1
    got = row.geometry.iloc[0]
    # quantised to 4096 units per tile side: the shapes agree to a fraction of a percent
    assert got.symmetric_difference(geom).area / geom.area < 0.01
    assert pd.api.types.is_integer_dtype(df["population"]) and pd.api.types.is_integer_dtype(df["updated_at"])
    with api_city.connect() as conn:  # times are Unix seconds in tiles
        updated = conn.execute(text("SELECT updated_at FROM grids g JOIN plans p ON p.id = g.plan_id "
                                    "WHERE p.status = 'active' AND g.code = :c"), {"c": code}).scalar()
    assert int(row["updated_at"].iloc[0]) == int(updated.timestamp())


def test_ogrinfo_reads_a_tile(server, auth, api_city, grid, tmp_path):
    code, geom = grid
    t = tile_around(geom.bounds)
    body = httpx.get(server + tile_url("grids", t.z, t.x, t.y), headers=auth("viewer")).content
    path = tmp_path / str(t.z) / str(t.x) / f"{t.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    ogrinfo = shutil.which("ogrinfo") or "/usr/bin/ogrinfo"
    out = subprocess.run([ogrinfo, "-ro", "-al", "-so", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Layer name: grids" in out and "code: String" in out
    n = int(out.split("Feature Count: ")[1].split()[0])
    with api_city.connect() as conn:
        inner, outer = conn.execute(text(
            "SELECT count(*) FILTER (WHERE ST_Intersects(g.geom, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))), "
            "count(*) FROM grids g JOIN plans p ON p.id = g.plan_id WHERE p.status = 'active' "
            "AND ST_Intersects(g.geom, ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096), 4326))"),
            {"z": t.z, "x": t.x, "y": t.y}).first()
    assert inner <= n <= outer and n >= 1


def test_repeated_request_gets_304_with_the_etag(server, auth, grid):
    t = tile_around(grid[1].bounds)
    with httpx.Client(base_url=server, headers=auth("planner")) as c:
        first = c.get(tile_url("grids", t.z, t.x, t.y))
        etag = first.headers["etag"]
        assert "must-revalidate" in first.headers["cache-control"] and "max-age=0" in first.headers["cache-control"]
        again = c.get(tile_url("grids", t.z, t.x, t.y), headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        other = c.get(tile_url("grids", t.z, t.x, t.y), headers={"If-None-Match": 'W/"not-this-one"'})
        assert other.status_code == 200 and other.content == first.content


def test_edit_in_the_database_changes_etag_and_geometry(server, auth, api_city, grid, tmp_path):
    code, geom = grid
    t = tile_around(geom.bounds)
    url = server + tile_url("grids", t.z, t.x, t.y)
    before = httpx.get(url, headers=auth("viewer"))
    w, s, e, n = geom.bounds  # the middle half of the grid's box: big enough to compare at tile precision
    square = shapely.box(w + (e - w) / 4, s + (n - s) / 4, e - (e - w) / 4, n - (n - s) / 4)
    with api_city.begin() as conn:
        conn.execute(text("UPDATE grids g SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) FROM plans p "
                          "WHERE p.id = g.plan_id AND p.status = 'active' AND g.code = :c"),
                     {"w": square.wkt, "c": code})
    try:
        after = httpx.get(url, headers={**auth("viewer"), "If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
        df = decode(tmp_path, after.content, t.z, t.x, t.y)["grids"]
        got = df[df["code"] == code].geometry.iloc[0]
        assert got.symmetric_difference(square).area / square.area < 0.02
    finally:
        with api_city.begin() as conn:
            conn.execute(text("UPDATE grids g SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) FROM plans p "
                              "WHERE p.id = g.plan_id AND p.status = 'active' AND g.code = :c"),
                         {"w": geom.wkt, "c": code})
    restored = httpx.get(url, headers=auth("viewer"))
    assert restored.headers["etag"] not in (before.headers["etag"], after.headers["etag"])


@pytest.mark.parametrize("zxy,param", [
    ("25/0/0", "z"), ("-1/0/0", "z"), ("3/8/0", "x"), ("3/0/8", "y"), ("2/-1/0", "x"),
    ("a/0/0", "z"), ("1.5/0/0", "z"), ("2/0/1e3", "y"),
])
def test_bad_tile_address_is_400_problem(server, auth, zxy, param):
    r = httpx.get(server + f"/collections/grids/tiles/WebMercatorQuad/{zxy}", headers=auth("viewer"))
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].startswith(f"{param}:")


@pytest.mark.parametrize("path,status", [
    ("/collections/nope/tiles/WebMercatorQuad/1/0/0", 404),
    ("/collections/grids/tiles/WorldCRS84Quad/1/0/0", 404),
    ("/collections/nope/tiles", 404),
    ("/collections/nope/tiles/WebMercatorQuad", 404),
    ("/collections/grids/tiles/WebMercatorQuad/1/0/0?category=theft", 400),
    ("/collections/posts/tiles/WebMercatorQuad/1/0/0?plan=1", 400),
    ("/collections/grids/tiles/WebMercatorQuad/1/0/0?plan=99999", 404),
    ("/collections/incidents/tiles/WebMercatorQuad/1/0/0?datetime=yesterday", 400),
    ("/collections/incidents/tiles/WebMercatorQuad/1/0/0?datetime=2025-02-01/2025-01-01", 400),
    ("/collections/incidents/tiles/WebMercatorQuad/1/0/0?datetime=9999-12-31", 400),  # overflowed to a 500 once
    ("/collections/incidents/tiles/WebMercatorQuad?datetime=9999-12-31", 400),
    ("/collections/incidents/tiles/WebMercatorQuad/1/0/0?datetime=2025-01-01%00", 400),
])
def test_unknown_and_bad_parameters(server, auth, path, status):
    r = httpx.get(server + path, headers=auth("viewer"))
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text


def test_tiles_need_a_key(server):
    assert httpx.get(server + tile_url("grids", 0, 0, 0)).status_code == 401


def test_empty_tile_is_204_with_an_etag(server, auth):
    with httpx.Client(base_url=server, headers=auth("viewer")) as c:
        r = c.get(tile_url("grids", 14, 0, 0))  # the Arctic off Alaska: no grid there
        assert r.status_code == 204 and r.content == b"" and r.headers["etag"]
        assert c.get(tile_url("grids", 14, 0, 0), headers={"If-None-Match": r.headers["etag"]}).status_code == 304
        r = c.get(tile_url("incidents", 10, 0, 0))
        assert r.status_code == 204


def test_incidents_viewer_sees_only_cells_of_five_or_more(server, auth, dense, mixed_tile, tmp_path):
    counts, t = dense[2], mixed_tile
    r = httpx.get(server + tile_url("incidents", t.z, t.x, t.y), headers=auth("viewer"))
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    df = decode(tmp_path, r.content, t.z, t.x, t.y)["incidents"]
    assert {"cell", "count", "resolution"} <= set(df.columns)
    assert not {"category", "external_id", "occurred_at"} & set(df.columns)
    assert (df.geom_type == "Polygon").all() and (df["count"] >= SUPPRESS_BELOW).all()
    # whole counts, also for cells cut by the tile edge
    assert all(counts[c] == n for c, n in zip(df["cell"], df["count"]))
    # every cell of 5 or more whose centre is inside the tile is shown; none under 5 is
    w, s, e, n = TMS.bounds(t)
    inside = {c for c, k in counts.items() if w < h3.cell_to_latlng(c)[1] < e and s < h3.cell_to_latlng(c)[0] < n}
    assert {c for c in inside if counts[c] >= SUPPRESS_BELOW} <= set(df["cell"])
    assert any(counts[c] < SUPPRESS_BELOW for c in inside) and len(df) > 0  # the tile holds both kinds


def test_incidents_viewer_low_zoom_sums_only_published_cells(server, auth, dense, tmp_path):
    lon, lat, counts = dense
    t = TMS.tile(lon, lat, 11)
    res = cell_resolution(11, 9)
    r = httpx.get(server + tile_url("incidents", t.z, t.x, t.y), headers=auth("integrator"))
    df = decode(tmp_path, r.content, t.z, t.x, t.y)["incidents"]
    assert (df["resolution"] == res).all() and len(df) > 0
    for cell, n in zip(df["cell"], df["count"]):
        assert n == sum(k for c, k in counts.items() if k >= SUPPRESS_BELOW and h3.cell_to_parent(c, res) == cell)


def test_incidents_commander_gets_raw_points(server, auth, api_city, dense, tmp_path):
    lon, lat, _ = dense
    t = TMS.tile(lon, lat, 15)
    assert t.z >= RAW_MIN_ZOOM
    r = httpx.get(server + tile_url("incidents", t.z, t.x, t.y), headers=auth("commander"))
    df = decode(tmp_path, r.content, t.z, t.x, t.y)["incidents"]
    assert set(COLLECTIONS["incidents"].properties) <= set(df.columns)
    assert (df.geom_type == "Point").all()
    with api_city.connect() as conn:
        inner, outer = conn.execute(text(
            "SELECT count(*) FILTER (WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))), "
            "count(*) FROM incidents WHERE geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096), 4326)"),
            {"z": t.z, "x": t.x, "y": t.y}).first()
    assert 0 < inner <= len(df) <= outer
    # the role decides the variant, so the cache and the ETag must tell them apart
    viewer = httpx.get(server + tile_url("incidents", t.z, t.x, t.y), headers=auth("viewer"))
    assert viewer.headers["etag"] != r.headers["etag"]
    assert "external_id" not in decode(tmp_path / "v", viewer.content, t.z, t.x, t.y)["incidents"].columns
    # below z13 everyone gets cells; the commander's are not suppressed
    t12 = TMS.tile(lon, lat, 12)
    cells = decode(tmp_path / "c", httpx.get(server + tile_url("incidents", 12, t12.x, t12.y),
                                             headers=auth("commander")).content, 12, t12.x, t12.y)["incidents"]
    assert (cells["count"] < SUPPRESS_BELOW).any()


def test_incident_filters(server, auth, dense, tmp_path, api_city):
    lon, lat, _ = dense
    t = TMS.tile(lon, lat, 14)
    url = server + tile_url("incidents", t.z, t.x, t.y)
    full = decode(tmp_path / "a", httpx.get(url, headers=auth("admin")).content, t.z, t.x, t.y)["incidents"]
    cat = full["category"].value_counts().index[0]
    only = decode(tmp_path / "b", httpx.get(url, params={"category": cat}, headers=auth("admin")).content,
                  t.z, t.x, t.y)["incidents"]
    assert set(only["category"]) == {cat} and len(only) == (full["category"] == cat).sum()
    mid = sorted(full["occurred_at"])[len(full) // 2]  # Unix seconds in tiles
    when = datetime.fromtimestamp(int(mid), tz=timezone.utc).isoformat().replace("+00:00", "Z")
    early = decode(tmp_path / "c", httpx.get(url, params={"datetime": f"../{when}"}, headers=auth("admin")).content,
                   t.z, t.x, t.y)["incidents"]
    assert 0 < len(early) < len(full) and (early["occurred_at"] <= mid).all()
    # the stored instants, to the second
    row = full.iloc[0]
    with api_city.connect() as conn:
        stored = conn.execute(text("SELECT occurred_at FROM incidents WHERE source = :s AND external_id = :e"),
                              {"s": row["source"], "e": row["external_id"]}).scalar()
    assert int(row["occurred_at"]) == int(stored.timestamp())


def test_tilejson_and_tileset_list(server, auth, api_city):
    with httpx.Client(base_url=server, headers=auth("viewer")) as c:
        tj = c.get("/collections/grids/tiles/WebMercatorQuad").json()
        assert tj["tilejson"] == "3.0.0"
        assert tj["tiles"] == [f"{server}/collections/grids/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"]
        layer = tj["vector_layers"][0]
        assert layer["id"] == "grids" and set(layer["fields"]) == set(COLLECTIONS["grids"].properties)
        assert layer["fields"]["population"] == "Number"
        with api_city.connect() as conn:
            ext = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(g.geom) e "
                                    "FROM grids g JOIN plans p ON p.id = g.plan_id WHERE p.status = 'active') s")).first()
        assert tj["bounds"] == pytest.approx(list(ext), abs=1e-5)
        assert 0 <= tj["minzoom"] < tj["maxzoom"] <= 24
        planned = c.get("/collections/grids/tiles/WebMercatorQuad", params={"plan": 1}).json()
        assert planned["tiles"][0].endswith("{y}?plan=1")
        viewer_inc = c.get("/collections/incidents/tiles/WebMercatorQuad").json()
        assert set(viewer_inc["vector_layers"][0]["fields"]) == {"cell", "count", "resolution"}
        sets = c.get("/collections/grids/tiles").json()["tilesets"]
        assert sets[0]["dataType"] == "vector" and sets[0]["tileMatrixSetURI"].endswith("/WebMercatorQuad")
        item = next(x for x in sets[0]["links"] if x["rel"] == "item")
        assert item["href"].startswith(server) and item["type"] == MVT_TYPE
    commander = httpx.get(server + "/collections/incidents/tiles/WebMercatorQuad", headers=auth("commander")).json()
    assert set(COLLECTIONS["incidents"].properties) <= set(commander["vector_layers"][0]["fields"])


@pytest.mark.parametrize("coll", sorted(COLLECTIONS))
def test_every_collection_serves_tiles(server, auth, api_city, coll, tmp_path):
    with api_city.connect() as conn:
        w, s, e, n = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                       "(SELECT ST_Extent(geom) e FROM grids) q")).first()
    t = TMS.tile((w + e) / 2, (s + n) / 2, 13)
    r = httpx.get(server + tile_url(coll, t.z, t.x, t.y), headers=auth("admin"))
    assert r.status_code in (200, 204), r.text
    if r.status_code == 200:
        assert list(decode(tmp_path, r.content, t.z, t.x, t.y)) == [coll]
    assert httpx.get(server + f"/collections/{coll}/tiles/WebMercatorQuad", headers=auth("admin")).status_code == 200


@pytest.mark.parametrize("z,x,y", [(0, 0, 0), (3, 5, 2), (12, 3382, 1665), (14, 13529, 6661), (22, 3000000, 1000000)])
def test_tile_bounds_match_morecantile(z, x, y):
    import morecantile

    from api import mvt

    want = morecantile.tms.get("WebMercatorQuad").bounds(morecantile.Tile(x, y, z))
    assert mvt.tile_address(z, x, y).bounds() == pytest.approx(tuple(want), abs=1e-9)
