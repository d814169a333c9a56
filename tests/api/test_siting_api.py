"""The `siting` and `roads` collections on the live server: items and tiles for every reading role,
checked against SQL on the API city (a road network and a siting run are added here and removed after)."""
from __future__ import annotations

import httpx
import morecantile
import pyogrio
import pytest
from sqlalchemy import text

from api.collections import COLLECTIONS

SOURCE = "api-siting-test-roads"
ROLES = ("viewer", "commander", "planner", "integrator", "admin")


@pytest.fixture(scope="module")
def siting_run(api_city):
    """Roads generated for the API city's grids and one siting run on them, committed; the run id."""
    from geogrid.ingest.roads import save_roads
    from geogrid.planning_runs import SitingOptions, run_planning
    from geogrid.roads import generate_roads
    from geogrid.store.grids import read_grids

    with api_city.begin() as conn:
        save_roads(conn, generate_roads(read_grids(conn), seed=1), SOURCE)
    with api_city.begin() as conn:
        run = run_planning(conn, kinds=("siting",), siting=SitingOptions(k=3))["siting"]
    yield run
    with api_city.begin() as conn:
        conn.execute(text("DELETE FROM analysis_runs WHERE id = :r"), {"r": run})
        conn.execute(text("DELETE FROM roads WHERE source = :s"), {"s": SOURCE})


def _all(server, path, role, **params):
    r = httpx.get(server + path, params={"limit": 1000, **params}, headers={
        "Authorization": f"Bearer {role}-key-0123456789"}, timeout=60)
    assert r.status_code == 200, (role, r.text)
    return r.json()


def test_collections_are_registered_with_their_geometry():
    assert COLLECTIONS["siting"].geometry_type == "Point" and COLLECTIONS["siting"].run_kind == "siting"
    assert COLLECTIONS["roads"].geometry_type == "MultiLineString" and COLLECTIONS["roads"].scope == "table"


@pytest.mark.parametrize("role", ROLES)
def test_every_reading_role_reads_siting_and_roads(server, api_city, siting_run, role):
    with api_city.connect() as conn:
        want = {f"{m}-{s}": (r, e, g) for m, s, r, e, g in conn.execute(text(
            "SELECT model, site, rank, existing, gain FROM siting_proposals WHERE run_id = :r"), {"r": siting_run})}
        n_roads = conn.execute(text("SELECT count(*) FROM roads")).scalar()
    body = _all(server, "/collections/siting/items", role)
    got = {f["id"]: (f["properties"]["rank"], f["properties"]["existing"], f["properties"]["gain"])
           for f in body["features"]}
    assert got == want and {f["geometry"]["type"] for f in body["features"]} == {"Point"}
    assert sum(1 for r, e, _ in want.values() if not e and r > 0) >= 3  # MCLP's 3 new posts at least
    roads = _all(server, "/collections/roads/items", role, limit=10)
    assert roads["numberMatched"] == n_roads and roads["features"][0]["geometry"]["type"] == "MultiLineString"
    assert {"source", "speed_kmh", "kind"} <= set(roads["features"][0]["properties"])
    docs = {c["id"] for c in _all(server, "/collections", role)["collections"]}
    assert {"siting", "roads"} <= docs


def test_siting_items_filter_by_model_and_run(server, siting_run):
    body = _all(server, "/collections/siting/items", "viewer", filter="model = 'mclp' AND existing = false",
                run=siting_run)
    ranks = sorted(f["properties"]["rank"] for f in body["features"])
    assert ranks == [1, 2, 3]


@pytest.mark.parametrize("coll", ["siting", "roads"])
def test_tiles_hold_the_features(server, api_city, siting_run, coll, tmp_path):
    with api_city.connect() as conn:
        table = COLLECTIONS[coll].table
        where = "run_id = :r" if coll == "siting" else "source = :s"
        lon, lat = conn.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM {table} "
                                     f"WHERE {where} LIMIT 1) q"), {"r": siting_run, "s": SOURCE}).one()
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 14)
    r = httpx.get(f"{server}/collections/{coll}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}",
                  headers={"Authorization": "Bearer viewer-key-0123456789"}, timeout=60)
    assert r.status_code == 200, r.text
    path = tmp_path / f"{t.z}" / f"{t.x}" / f"{t.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(r.content)
    layers = [name for name, _ in pyogrio.list_layers(path)]
    assert layers == [coll] and len(pyogrio.read_dataframe(path, layer=coll)) >= 1
