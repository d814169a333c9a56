"""Responsibility lookup over a real PostGIS: grid, tier, beat, staff, nearest post, deadline, plan in force."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import text

from geogrid.crs import from_wgs84, parse_crs
from geogrid.errors import InputError, NotFound
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.grids import load_grids
from geogrid.lookup import Options, lookup, lookup_many, parse_at, travel_minutes
from geogrid.store import plans, results
from geogrid.travel import StraightLineTravel

FIELDS = FieldMap(code="code", name="name", kind="kind")
GEOD = Geod(ellps="WGS84")
X0, Y0, D = 117.20, 31.80, 0.01  # the grid_frame fixture's origin and cell size
REL = 1e-6  # relative tolerance between PostGIS geography and pyproj geodesic distances


def _load(conn, frame: gpd.GeoDataFrame, path, plan: str, activate=True) -> dict:
    frame.to_file(path, driver="GPKG")
    load_grids(conn, path, FIELDS, plan=plan, activate=activate)
    return plans.get_plan(conn, plan)


def _post(conn, code: str, lon: float, lat: float, kind: str = "post") -> None:
    conn.execute(text("INSERT INTO posts (code, name, kind, geom) VALUES (:c, :n, :k, "
                      "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"), {"c": code, "n": f"{code}警务室", "k": kind,
                                                                  "x": lon, "y": lat})


def _staff(conn, code: str, role: str, grid: str | None, post: str = "P1") -> None:
    conn.execute(text("INSERT INTO staff (code, name, role, post_code, grid_code) VALUES (:c, :n, :r, :p, :g)"),
                 {"c": code, "n": f"姓名{code}", "r": role, "p": post, "g": grid})


@pytest.fixture
def city(conn, grid_frame, tmp_path):
    """The six test grids as the active plan A, two posts, staff on G1 and G4 only (G5 staffed through
    its beat), a tiers run and a beats run made for plan A."""
    plan = _load(conn, grid_frame, tmp_path / "a.gpkg", "A")
    _post(conn, "P1", X0 + 0.005, Y0 + 0.005)  # centre of G1
    _post(conn, "P2", X0 + 0.025, Y0 + 0.015)  # centre of G6
    _staff(conn, "O1", "officer", "G1"), _staff(conn, "A1", "auxiliary", "G1"), _staff(conn, "A2", "auxiliary", "G1")
    _staff(conn, "O4", "officer", "G4", "P2"), _staff(conn, "A4", "auxiliary", "G4", "P2")
    _staff(conn, "S0", "officer", None)  # station duty: responsible for no grid
    geoms = dict(zip(grid_frame["code"], grid_frame.geometry))
    tiers = results.start_run(conn, "tiers", {}, plan_id=plan["id"])
    for k, code in enumerate(grid_frame["code"]):
        conn.execute(text("INSERT INTO grid_tiers (run_id, code, tier, score, drivers, drivers_zh, geom) "
                          "VALUES (:r, :c, :t, 0, '', '', ST_Multi(ST_GeomFromText(:g, 4326)))"),
                     {"r": tiers, "c": code, "t": 1 + k % 4, "g": geoms[code].wkt})
    results.finish_run(conn, tiers, {})
    beats = results.start_run(conn, "beats", {}, plan_id=plan["id"])
    for beat, codes, post in ((1, ["G1", "G2", "G3"], "P1"), (2, ["G4", "G5", "G6"], "P2")):
        conn.execute(text("INSERT INTO beats (run_id, beat, officers, n_grids, workload, per_officer, deviation, "
                          "post_code, grid_codes, geom) VALUES (:r, :b, 1, 3, 1, 1, 0, :p, :codes, "
                          "ST_GeomFromText(:g, 4326))"),
                     {"r": beats, "b": beat, "p": post, "codes": codes,
                      "g": shapely.union_all([geoms[c] for c in codes]).wkt})
    results.finish_run(conn, beats, {})
    return {"plan": plan, "tiers": tiers, "beats": beats}


def _centre(code: str) -> tuple[float, float]:
    k = int(code[1:]) - 1
    return X0 + (k % 3 + 0.5) * D, Y0 + (k // 3 + 0.5) * D


def test_a_point_gets_its_grid_tier_beat_staff_and_nearest_post(conn, city):
    lon, lat = _centre("G2")
    got = lookup(conn, lon, lat)
    assert got["plan"] == {"id": city["plan"]["id"], "name": "A", "at": None}
    assert got["grid"]["code"] == "G2" and got["grid"]["kind"] == "urban" and got["grid"]["tier"] == 2
    assert got["grid"]["tiers_run"] == city["tiers"]
    assert got["beat"] == {"beat": 1, "officers": 1, "n_grids": 3, "post_code": "P1", "run": city["beats"]}
    # G2 has no staff of its own: the officers of its beat (O1 on G1) answer for it
    assert got["responsible"]["via"] == "beat" and [s["code"] for s in got["responsible"]["staff"]] == ["O1"]
    metres = GEOD.inv(lon, lat, X0 + 0.005, Y0 + 0.005)[2]
    post = got["nearest_post"]
    assert post["code"] == "P1" and post["distance_m"] == pytest.approx(metres, rel=REL, abs=0.1)
    assert post["travel_minutes"] == pytest.approx(metres * 1.3 / (30_000 / 60), abs=0.01)
    assert got["travel_model"]["kmh"] == 30 and got["travel_model"]["circuity"] == 1.3


def test_staff_assigned_to_the_grid_come_first_officers_before_auxiliaries(conn, city):
    got = lookup(conn, *_centre("G1"))
    assert got["responsible"]["via"] == "grid"
    assert [(s["code"], s["role"]) for s in got["responsible"]["staff"]] == [
        ("O1", "officer"), ("A1", "auxiliary"), ("A2", "auxiliary")]


def test_rural_grid_travels_at_the_rural_speed(conn, city):
    got = lookup(conn, *_centre("G5"))
    assert got["grid"]["kind"] == "rural" and got["travel_model"]["kmh"] == 60
    assert got["responsible"]["via"] == "beat" and [s["code"] for s in got["responsible"]["staff"]] == ["O4"]
    post = got["nearest_post"]
    assert post["travel_minutes"] == pytest.approx(travel_minutes(post["distance_m"], "rural", StraightLineTravel()),
                                                   abs=0.01)


def test_no_tiers_or_beats_run_gives_nulls(conn, grid_frame, tmp_path):
    _load(conn, grid_frame, tmp_path / "a.gpkg", "A")
    got = lookup(conn, *_centre("G3"))
    assert got["grid"]["tier"] is None and got["beat"] is None and got["nearest_post"] is None
    assert got["responsible"] == {"via": None, "staff": []}


def test_a_point_on_a_shared_boundary_belongs_to_the_smaller_code(conn, city):
    assert lookup(conn, X0 + D, Y0 + 0.5 * D)["grid"]["code"] == "G1"


def test_outside_every_grid_is_not_found(conn, city):
    with pytest.raises(NotFound, match="outside every grid of plan 'A'"):
        lookup(conn, X0 - 0.5, Y0)


def test_no_active_plan_is_not_found(conn):
    conn.execute(text("UPDATE plans SET status = 'retired' WHERE status = 'active'"))
    with pytest.raises(NotFound, match="no active plan"):
        lookup(conn, X0, Y0)


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "EPSG:3857", "EPSG:4490"], ids=str)
def test_input_in_another_crs_is_converted(conn, city, crs):
    lon, lat = _centre("G4")
    x, y = from_wgs84([lon], [lat], crs)
    got = lookup(conn, float(x[0]), float(y[0]), Options(crs=parse_crs(crs)))
    assert got["grid"]["code"] == "G4"
    assert got["point"]["lon"] == pytest.approx(lon, abs=1e-8) and got["point"]["lat"] == pytest.approx(lat, abs=1e-8)
    assert got["point"]["input"]["crs"] == parse_crs(crs).name


def test_gcj02_offset_matters(conn, city):
    """The GCJ-02 offset here (~500 m) moves a point near a grid edge into the neighbour: conversion is not a no-op."""
    lon, lat = X0 + D - 0.0005, Y0 + 0.5 * D  # 50 m inside G1, next to G2
    gx, gy = from_wgs84([lon], [lat], "gcj02")
    assert lookup(conn, float(gx[0]), float(gy[0]), Options(crs=parse_crs("gcj02")))["grid"]["code"] == "G1"
    assert lookup(conn, float(gx[0]), float(gy[0]))["grid"]["code"] != "G1"


@pytest.mark.parametrize(("priority", "category", "want", "minutes", "source"), [
    (None, None, "normal", 120, "default"),
    ("urgent", None, "urgent", 15, "priority"),
    ("normal", "homicide", "normal", 120, "priority"),
    (None, "homicide", "urgent", 15, "category:homicide"),
    (None, "邻里纠纷", "normal", 120, "category:neighbour_dispute"),
], ids=["default", "urgent", "priority-wins", "category-urgent", "category-zh"])
def test_deadline_follows_priority_then_category(conn, city, priority, category, want, minutes, source):
    at = datetime.now(timezone.utc)
    got = lookup(conn, *_centre("G1"), Options(at=at, priority=priority, category=category))["response"]
    assert (got["priority"], got["deadline_minutes"], got["priority_from"]) == (want, minutes, source)
    assert datetime.fromisoformat(got["due_by"]) == at + timedelta(minutes=minutes)


def test_within_deadline_compares_travel_time_with_the_deadline(conn, city):
    # 0.1° (~11 km) east of G3, in a new grid far from both posts: 11 km × 1.3 at 30 km/h ≈ 29 minutes
    far = gpd.GeoDataFrame({"code": ["G9"], "name": ["远"], "kind": ["urban"]},
                           geometry=[shapely.box(X0 + 0.12, Y0, X0 + 0.13, Y0 + D)], crs=4326)
    from geogrid.store.grids import upsert_grids

    upsert_grids(conn, city["plan"]["id"], far.assign(population=None, key_areas=[[]], post_code=None,
                                                      district=None, attrs=[{}]))
    urgent = lookup(conn, X0 + 0.125, Y0 + 0.005, Options(priority="urgent"))
    normal = lookup(conn, X0 + 0.125, Y0 + 0.005, Options(priority="normal"))
    assert 15 < urgent["nearest_post"]["travel_minutes"] < 120
    assert urgent["nearest_post"]["within_deadline"] is False and normal["nearest_post"]["within_deadline"] is True


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"crs": "EPSG:999999"}, "crs: unknown coordinate system .EPSG:999999"),
    ({"crs": "999999"}, "crs: unknown EPSG code 999999"),
    ({"crs": "mars-grid"}, "crs: unknown coordinate system"),
    ({"at": "yesterday"}, "at: 'yesterday' is not an ISO 8601"),
    ({"priority": "high"}, "priority must be one of urgent, normal"),
    ({"category": "飞碟"}, "category '飞碟' is unknown"),
], ids=["epsg", "epsg-digits", "name", "at", "priority", "category"])
def test_bad_options_name_the_parameter(kwargs, match):
    with pytest.raises(InputError, match=match):
        Options.parse(**kwargs)


def test_naive_at_is_taken_in_the_given_timezone():
    assert parse_at("2025-03-01T08:00", "Asia/Shanghai") == datetime(2025, 3, 1, 0, 0, tzinfo=timezone.utc)


def test_at_answers_from_the_plan_in_force_then(conn, city, grid_frame, tmp_path):
    t_a = city["plan"]["valid_from"]
    # plan B: G1 and G2 merged into "G12"; activated a minute after A
    merged = grid_frame.iloc[2:].copy()
    merged.loc[len(grid_frame)] = ["G12", "合并网格", "urban", 0, "", "P1",
                                   shapely.union_all(grid_frame.geometry[:2].to_numpy())]
    plan_b = _load(conn, merged, tmp_path / "b.gpkg", "B", activate=False)
    plans.activate_plan(conn, plan_b["id"], at=t_a + timedelta(minutes=1))
    point = _centre("G1")
    assert lookup(conn, *point)["grid"]["code"] == "G12"
    then = lookup(conn, *point, Options(at=t_a + timedelta(seconds=30)))
    assert then["grid"]["code"] == "G1" and then["plan"]["name"] == "A"
    assert then["grid"]["tier"] == 1 and then["beat"]["beat"] == 1  # A's runs; B has none, so null now
    assert lookup(conn, *point)["grid"]["tier"] is None
    with pytest.raises(NotFound, match="no plan was in force at"):
        lookup(conn, *point, Options(at=t_a - timedelta(days=1)))


def test_batch_answers_in_input_order_with_one_problem_per_bad_point(conn, city):
    items = [
        {"id": "a", "lon": _centre("G6")[0], "lat": _centre("G6")[1]},
        {"id": "b", "lon": "x", "lat": 31.8},
        {"id": "c", "lon": X0 - 1, "lat": Y0},
        {"id": "d", "lon": 200.0, "lat": 31.8},
        {"lon": _centre("G1")[0], "lat": _centre("G1")[1], "category": "homicide"},
        "not an object",
        {"id": 7, "lon": _centre("G3")[0], "lat": _centre("G3")[1]},
    ]
    got = lookup_many(conn, items, Options(priority="normal"))
    assert len(got) == len(items)
    assert got[0]["id"] == "a" and got[0]["grid"]["code"] == "G6"
    assert isinstance(got[1], InputError) and "lon must be a finite number" in str(got[1])
    assert isinstance(got[2], NotFound) and "outside every grid" in str(got[2])
    assert isinstance(got[3], InputError) and "not a valid position" in str(got[3])
    assert "id" not in got[4] and got[4]["grid"]["code"] == "G1" and got[4]["response"]["priority"] == "urgent"
    assert isinstance(got[5], InputError)
    assert got[6]["id"] == 7 and got[6]["grid"]["code"] == "G3"


def test_batch_is_one_statement(conn, city):
    """Many points, one round trip: the statement count does not grow with the batch."""
    from sqlalchemy import event

    statements = []
    listen = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(conn, "before_cursor_execute", listen)
    try:
        got = lookup_many(conn, [{"lon": _centre(f"G{k}")[0], "lat": _centre(f"G{k}")[1]} for k in range(1, 7)] * 50)
    finally:
        event.remove(conn, "before_cursor_execute", listen)
    assert [a["grid"]["code"] for a in got[:6]] == [f"G{k}" for k in range(1, 7)] and len(got) == 300
    assert len(statements) == 1


def test_nearest_post_is_the_geodesic_nearest_where_degrees_mislead(conn, tmp_path):
    """At 60°N a degree of longitude is half a degree of latitude: the degree-nearest post (north,
    0.009°, 1.0 km) is not the nearest (east, 0.016°, 0.89 km). The KNN probe alone would pick north."""
    lon, lat = 25.0, 60.0
    grid = gpd.GeoDataFrame({"code": ["N1"], "name": ["北"], "kind": ["urban"]},
                            geometry=[shapely.box(lon - 0.1, lat - 0.05, lon + 0.1, lat + 0.05)], crs=4326)
    _load(conn, grid, tmp_path / "n.gpkg", "N")
    _post(conn, "NORTH", lon, lat + 0.009)
    _post(conn, "EAST", lon + 0.016, lat)
    got = lookup(conn, lon, lat)["nearest_post"]
    posts = (("NORTH", lon, lat + 0.009), ("EAST", lon + 0.016, lat))
    want = min((GEOD.inv(lon, lat, x, y)[2], c) for c, x, y in posts)
    assert got["code"] == want[1] == "EAST" and got["distance_m"] == pytest.approx(want[0], rel=REL)
