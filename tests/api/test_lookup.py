"""GET/POST /lookup against a live server on the API city: grid, staff, nearest post, deadline, plans in time."""
from __future__ import annotations

from datetime import datetime, timezone

import httpx
import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import text

from api.lookup import MAX_POINTS, BatchAnswer, LookupAnswer, LookupFailure
from geogrid.crs import from_wgs84
from geogrid.store import plans, results
from geogrid.store.grids import read_grids, upsert_grids

GEOD = Geod(ellps="WGS84")
PROBLEM = "application/problem+json"
OLD_FROM, OLD_TO = datetime(2001, 1, 1, tzinfo=timezone.utc), datetime(2002, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def inside(api_city) -> list[dict]:
    """A point inside each of 25 grids of the active plan (ST_PointOnSurface), with the grid's staff."""
    with api_city.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, g.kind, ST_X(p) AS lon, ST_Y(p) AS lat, "
            "       ARRAY(SELECT s.code FROM staff s WHERE s.grid_code = g.code ORDER BY s.code) AS staff "
            "FROM (SELECT code, kind, ST_PointOnSurface(geom) AS p FROM grids g "
            "      WHERE plan_id = (SELECT id FROM plans WHERE status = 'active')) g "
            "ORDER BY md5(g.code) LIMIT 25")).mappings().all()
    assert len(rows) == 25
    return [dict(r) for r in rows]


@pytest.fixture(scope="module")
def posts(api_city) -> list[tuple[str, float, float]]:
    with api_city.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT code, ST_X(geom), ST_Y(geom) FROM posts"))]


@pytest.fixture(scope="module")
def old_plan(api_city, inside):
    """A dedicated retired plan in force through 2001: the active grids copied, the first sample grid
    renamed 'H-<code>' and the second dropped. Deleted afterwards so other tests never see it."""
    renamed, dropped = inside[0]["code"], inside[1]["code"]
    with api_city.begin() as conn:
        plan, _ = plans.get_or_create_plan(conn, "lookup-test-2001", note="tests/api/test_lookup.py")
        grids = read_grids(conn)
        grids = grids[grids["code"] != dropped].copy()
        grids.loc[grids["code"] == renamed, "code"] = "H-" + renamed
        upsert_grids(conn, plan["id"], grids)
        conn.execute(text("UPDATE plans SET status = 'retired', valid_from = :f, valid_to = :t WHERE id = :p"),
                     {"f": OLD_FROM, "t": OLD_TO, "p": plan["id"]})
        # tiers and beats runs made for this plan only: the active plan must not pick them up
        geom = grids.loc[grids["code"] == "H-" + renamed].geometry.iloc[0].wkt
        tiers = results.start_run(conn, "tiers", {"test": "lookup"}, plan_id=plan["id"])
        conn.execute(text("INSERT INTO grid_tiers (run_id, code, tier, score, drivers, drivers_zh, geom) "
                          "VALUES (:r, :c, 4, 0, '', '', ST_Multi(ST_GeomFromText(:g, 4326)))"),
                     {"r": tiers, "c": "H-" + renamed, "g": geom})
        results.finish_run(conn, tiers, {})
        beats = results.start_run(conn, "beats", {"test": "lookup"}, plan_id=plan["id"])
        conn.execute(text("INSERT INTO beats (run_id, beat, officers, n_grids, workload, per_officer, deviation, "
                          "grid_codes, geom) VALUES (:r, 77, 1, 1, 1, 1, 0, :codes, ST_GeomFromText(:g, 4326))"),
                     {"r": beats, "codes": ["H-" + renamed], "g": geom})
        results.finish_run(conn, beats, {})
    yield {"id": plan["id"], "renamed": renamed, "dropped": dropped, "tiers": tiers, "beats": beats}
    with api_city.begin() as conn:
        conn.execute(text("DELETE FROM plans WHERE id = :p"), {"p": plan["id"]})  # cascades to its runs


def _get(client: httpx.Client, **params) -> httpx.Response:
    return client.get("/lookup", params=params)


def test_points_inside_grids_get_those_grids_and_their_staff(client, inside):
    for pt in inside:
        r = _get(client, lon=pt["lon"], lat=pt["lat"])
        assert r.status_code == 200, r.text
        body = LookupAnswer.model_validate(r.json())
        assert body.grid.code == pt["code"] and body.grid.kind == pt["kind"]
        if pt["staff"]:
            assert body.responsible.via == "grid"
            assert sorted(s.code for s in body.responsible.staff) == pt["staff"]
        assert body.point.lon == pytest.approx(pt["lon"], abs=1e-12)


LATEST_FOR_ACTIVE = ("(SELECT max(id) FROM analysis_runs WHERE kind = :k AND finished_at IS NOT NULL AND "
                     "(plan_id IS NULL OR plan_id = (SELECT id FROM plans WHERE status = 'active')))")


def test_tier_and_beat_come_from_the_latest_runs_of_the_plan(client, inside, api_city, old_plan):
    pt = inside[0]
    with api_city.connect() as conn:
        tier = conn.execute(text(f"SELECT tier FROM grid_tiers WHERE code = :c AND run_id = {LATEST_FOR_ACTIVE}"),
                            {"c": pt["code"], "k": "tiers"}).scalar()
        beat = conn.execute(text(f"SELECT beat FROM beats WHERE :c = ANY(grid_codes) AND run_id = {LATEST_FOR_ACTIVE}"),
                            {"c": pt["code"], "k": "beats"}).scalar()
    now = _get(client, lon=pt["lon"], lat=pt["lat"]).json()
    assert now["grid"]["tier"] == tier  # None when the city has no tiers run for its plan
    assert (now["beat"] or {}).get("beat") == beat
    then = _get(client, lon=pt["lon"], lat=pt["lat"], at="2001-03-01").json()
    assert then["grid"] == {"code": "H-" + pt["code"], "name": then["grid"]["name"], "kind": pt["kind"],
                            "district": then["grid"]["district"], "tier": 4, "tiers_run": old_plan["tiers"]}
    assert then["beat"]["beat"] == 77 and then["beat"]["run"] == old_plan["beats"]


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "EPSG:3857"], ids=str)
def test_offset_and_projected_input_is_converted(client, inside, crs):
    for pt in inside[:8]:
        x, y = from_wgs84([pt["lon"]], [pt["lat"]], crs)
        body = _get(client, lon=float(x[0]), lat=float(y[0]), crs=crs).json()
        assert body["grid"]["code"] == pt["code"], body
        assert body["point"]["lon"] == pytest.approx(pt["lon"], abs=1e-8)
        assert body["point"]["lat"] == pytest.approx(pt["lat"], abs=1e-8)


def test_nearest_post_is_the_true_nearest(client, inside, posts):
    for pt in inside:
        metres = {code: GEOD.inv(pt["lon"], pt["lat"], x, y)[2] for code, x, y in posts}
        want = min(metres, key=metres.get)
        got = _get(client, lon=pt["lon"], lat=pt["lat"]).json()
        post = got["nearest_post"]
        assert post["code"] == want and post["distance_m"] == pytest.approx(metres[want], abs=0.1)
        kmh = 30 if got["grid"]["kind"] == "urban" else 60
        assert got["travel_model"]["kmh"] == kmh
        assert post["travel_minutes"] == pytest.approx(metres[want] * 1.3 / (kmh * 1000 / 60), abs=0.01)


@pytest.mark.parametrize(("params", "priority", "minutes"), [
    ({}, "normal", 120),
    ({"priority": "urgent"}, "urgent", 15),
    ({"priority": "normal"}, "normal", 120),
    ({"category": "homicide"}, "urgent", 15),
    ({"category": "盗窃"}, "normal", 120),
], ids=["default", "urgent", "normal", "category-urgent", "category-zh"])
def test_deadline_by_priority(client, inside, params, priority, minutes):
    r = _get(client, lon=inside[0]["lon"], lat=inside[0]["lat"], **params)
    resp = r.json()["response"]
    assert (resp["priority"], resp["deadline_minutes"]) == (priority, minutes)
    post = r.json()["nearest_post"]
    assert post["within_deadline"] is (post["travel_minutes"] <= minutes)


def test_at_before_any_plan_is_404(client, inside, old_plan):
    r = _get(client, lon=inside[0]["lon"], lat=inside[0]["lat"], at="1990-06-01")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert "no plan was in force at 1990-06-01" in r.json()["detail"]


def test_at_during_an_older_plan_answers_from_it(client, inside, old_plan):
    renamed, dropped = inside[0], inside[1]
    body = _get(client, lon=renamed["lon"], lat=renamed["lat"], at="2001-06-01T12:00:00+08:00").json()
    assert body["plan"]["id"] == old_plan["id"] and body["grid"]["code"] == "H-" + renamed["code"]
    assert body["plan"]["at"] == "2001-06-01T12:00:00+08:00"
    r = _get(client, lon=dropped["lon"], lat=dropped["lat"], at="2001-06-01")
    assert r.status_code == 404 and "outside every grid of plan 'lookup-test-2001'" in r.json()["detail"]
    # today the active plan answers, as before
    assert _get(client, lon=renamed["lon"], lat=renamed["lat"]).json()["grid"]["code"] == renamed["code"]
    assert _get(client, lon=dropped["lon"], lat=dropped["lat"]).status_code == 200


def test_at_in_the_far_future_answers_from_the_active_plan(client, inside):
    body = _get(client, lon=inside[0]["lon"], lat=inside[0]["lat"], at="9999-12-31T23:59:00+00:00").json()
    assert body["grid"]["code"] == inside[0]["code"] and body["response"]["due_by"] is None


def test_outside_every_grid_is_404(client):
    r = _get(client, lon=10.0, lat=10.0)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert "outside every grid" in r.json()["detail"]


@pytest.mark.parametrize(("params", "names"), [
    ({"lat": 31.8}, "lon"),
    ({"lon": "east", "lat": 31.8}, "lon"),
    ({"lon": "nan", "lat": 31.8}, "lon"),
    ({"lon": 117.2, "lat": 95.0}, "valid position"),
    ({"lon": 117.2, "lat": 31.8, "crs": "martian"}, "crs"),
    ({"lon": 117.2, "lat": 31.8, "crs": "EPSG:123456"}, "crs"),
    ({"lon": 117.2, "lat": 31.8, "at": "last tuesday"}, "at"),
    ({"lon": 117.2, "lat": 31.8, "priority": "asap"}, "priority"),
    ({"lon": 117.2, "lat": 31.8, "category": "飞碟"}, "category"),
], ids=["missing-lon", "text-lon", "nan-lon", "lat-range", "crs-name", "crs-epsg", "at", "priority", "category"])
def test_bad_parameters_are_400_naming_them(client, params, names):
    r = client.get("/lookup", params=params)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text
    assert names in r.json()["detail"]


def test_batch_answers_in_input_order_with_per_item_problems(client, inside):
    a, b = inside[3], inside[4]
    gx, gy = from_wgs84([b["lon"]], [b["lat"]], "gcj02")
    items = [{"id": "a", "lon": a["lon"], "lat": a["lat"]},
             {"id": "bad", "lon": "x", "lat": 1},
             {"id": "out", "lon": 10.0, "lat": 10.0},
             {"id": 4, "lon": a["lon"], "lat": a["lat"], "priority": "urgent"},
             17]
    r = client.post("/lookup", json=items, params={"category": "theft"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert [g.get("id") for g in got] == ["a", "bad", "out", 4, None]
    assert [g["status"] for g in got] == [200, 400, 404, 200, 400]
    BatchAnswer.model_validate(got[0]), LookupFailure.model_validate(got[1])
    assert got[0]["grid"]["code"] == a["code"] and got[0]["response"]["priority_from"] == "category:theft"
    assert got[3]["response"]["priority"] == "urgent"
    assert "point 1: lon must be a finite number" in got[1]["problem"]["detail"]
    assert "outside every grid" in got[2]["problem"]["detail"]
    # the whole batch in another crs
    r = client.post("/lookup", json=[{"lon": float(gx[0]), "lat": float(gy[0])}], params={"crs": "gcj02"})
    assert r.json()[0]["grid"]["code"] == b["code"]


def test_batch_agrees_with_single_lookups(client, inside):
    got = client.post("/lookup", json=[{"id": p["code"], "lon": p["lon"], "lat": p["lat"]} for p in inside]).json()
    for pt, item in zip(inside, got):
        single = _get(client, lon=pt["lon"], lat=pt["lat"]).json()
        assert item["id"] == pt["code"]
        for key in ("grid", "beat", "responsible", "nearest_post", "plan"):
            assert item[key] == single[key]


@pytest.mark.parametrize(("body", "params", "status", "names"), [
    ({"lon": 1, "lat": 2}, {}, 400, "body"),
    ([{"lon": 117.2, "lat": 31.8}] * (MAX_POINTS + 1), {}, 400, f"at most {MAX_POINTS}"),
    ([{"lon": 117.2, "lat": 31.8}], {"crs": "nope"}, 400, "crs"),
    ([{"lon": 117.2, "lat": 31.8}], {"at": "1990-01-01"}, 404, "no plan was in force"),
], ids=["not-a-list", "too-many", "crs", "no-plan"])
def test_batch_wide_errors(client, body, params, status, names, old_plan):
    r = client.post("/lookup", json=body, params=params)
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    assert names in r.json()["detail"]


def test_every_read_role_may_look_up_and_anonymous_may_not(server, auth, inside):
    pt = inside[0]
    for role in ("viewer", "commander", "planner", "integrator", "admin"):
        assert httpx.get(f"{server}/lookup", params={"lon": pt["lon"], "lat": pt["lat"]},
                         headers=auth(role)).status_code == 200
        assert httpx.post(f"{server}/lookup", json=[{"lon": pt["lon"], "lat": pt["lat"]}],
                          headers=auth(role)).status_code == 200
    assert httpx.get(f"{server}/lookup", params={"lon": pt["lon"], "lat": pt["lat"]}).status_code == 401
    assert httpx.post(f"{server}/lookup", json=[]).status_code == 401


def test_empty_batch_is_an_empty_list(client):
    assert client.post("/lookup", json=[]).json() == []


def test_random_points_never_500(client):
    rng = np.random.default_rng(5)
    pts = [{"lon": float(x), "lat": float(y)} for x, y in zip(rng.uniform(-200, 200, 50), rng.uniform(-100, 100, 50))]
    for crs in ("wgs84", "bd09", "EPSG:3857", "EPSG:32650"):
        r = client.post("/lookup", json=pts, params={"crs": crs})
        assert r.status_code == 200 and {g["status"] for g in r.json()} <= {200, 400, 404}
