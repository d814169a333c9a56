"""OGC API – Features against a live server on the API city: every answer checked against SQL on the same data."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from api.collections import COLLECTIONS

GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"
# a point and a box inside the API city (Hefei)
LON, LAT = 117.25, 31.85
BOX = (117.22, 31.82, 117.28, 31.87)


@pytest.fixture(scope="module")
def sql(api_city):
    """``sql(query, **binds)`` → rows from the API city's database."""

    def run(query: str, **binds):
        with api_city.connect() as conn:
            return conn.execute(text(query), binds).all()

    return run


def _all_ids(client: httpx.Client, url: str, headers: dict | None = None, **params) -> list[str]:
    """Ids of every feature reached by following ``next`` links from ``url``."""
    ids, pages = [], 0
    # params= would drop url's query
    r = client.get(url, params=params, headers=headers) if params else client.get(url, headers=headers)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [f["id"] for f in body["features"]]
        pages += 1
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return ids
        assert pages < 500, "next links do not end"
        r = client.get(nxt[0], headers=headers)


def _grid_codes(sql, where: str = "TRUE", **binds) -> list[str]:
    return sorted(r[0] for r in sql(
        f"SELECT code FROM grids WHERE plan_id = (SELECT id FROM plans WHERE status = 'active') AND {where}", **binds))


def test_landing_page_links(client):
    body = client.get("/").json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["service-desc"].endswith("/api") and rels["conformance"].endswith("/conformance")
    assert rels["data"].endswith("/collections") and rels["alternate"].endswith("/map")
    assert client.get(rels["service-desc"]).json()["paths"]["/collections/{collectionId}/items"]


def test_conformance_lists_core_geojson_and_cql2(client):
    classes = set(client.get("/conformance").json()["conformsTo"])
    for c in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
              "ogcapi-features-3/1.0/conf/features-filter", "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/basic-cql2",
              "cql2/1.0/conf/basic-spatial-functions"):
        assert f"http://www.opengis.net/spec/{c}" in classes


def test_collections_are_the_registry_with_extents_from_the_data(client, sql):
    body = client.get("/collections").json()
    docs = {c["id"]: c for c in body["collections"]}
    assert set(docs) == set(COLLECTIONS)
    grids = docs["grids"]
    assert grids["title_zh"] == "网格" and grids["itemType"] == "feature"
    assert grids["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
    (box,) = sql("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM grids "
                 "WHERE plan_id = (SELECT id FROM plans WHERE status = 'active')) s")
    assert grids["extent"]["spatial"]["bbox"][0] == pytest.approx(list(box), abs=1e-6)
    (lo,) = sql("SELECT min(occurred_at) FROM incidents")[0]
    assert docs["incidents"]["extent"]["temporal"]["interval"][0][0].startswith(lo.strftime("%Y-%m-%dT%H:%M:%S"))
    assert "temporal" not in docs["posts"].get("extent", {})
    rels = {link["rel"] for link in grids["links"]}
    assert {"self", "items", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"} <= rels
    one = client.get("/collections/grids").json()
    assert one["id"] == "grids" and one["extent"] == grids["extent"]


def test_queryables_are_a_json_schema_of_the_whitelisted_properties(client):
    r = client.get("/collections/grids/queryables")
    assert r.headers["content-type"].startswith("application/schema+json")
    props = r.json()["properties"]
    assert props["population"]["type"] == "integer" and props["updated_at"]["format"] == "date-time"
    assert "geometry" in props and "key_areas" not in props and "attrs" not in props


def test_paging_walks_every_feature_exactly_once(client, sql):
    ids = _all_ids(client, "/collections/grids/items", limit=7)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == _grid_codes(sql)


def test_page_metadata_and_prev_link(client, sql):
    total = len(_grid_codes(sql))
    body = client.get("/collections/grids/items", params={"limit": 10, "offset": 20}).json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == total and body["numberReturned"] == 10
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert "offset=10" in links["prev"] and "offset=30" in links["next"]
    last = client.get("/collections/grids/items", params={"limit": 10, "offset": total - 3}).json()
    assert last["numberReturned"] == 3 and "next" not in {link["rel"] for link in last["links"]}


def test_items_are_geojson_with_exactly_the_whitelisted_properties(client):
    r = client.get("/collections/grids/items", params={"limit": 3})
    assert r.headers["content-type"] == GEOJSON
    for f in r.json()["features"]:
        assert set(f["properties"]) == set(COLLECTIONS["grids"].properties)
        assert f["geometry"]["type"] == "MultiPolygon" and f["id"] == f["properties"]["code"]


def test_limit_is_cut_to_the_server_maximum(client):
    from geogrid.settings import Settings

    cap = Settings().max_items  # the server runs with this environment
    assert cap < 20_000, "the city must have more incidents than the cap for this test to mean anything"
    body = client.get("/collections/incidents/items", params={"limit": 50_000}).json()
    assert body["numberMatched"] == 20_000 and body["numberReturned"] == cap


def test_bbox_gives_the_grids_sql_gives(client, sql):
    ids = _all_ids(client, "/collections/grids/items", bbox=",".join(map(str, BOX)), limit=50)
    want = _grid_codes(sql, "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
                       a=BOX[0], b=BOX[1], c=BOX[2], d=BOX[3])
    assert 0 < len(want) < len(_grid_codes(sql)) and sorted(ids) == want


def _local(stamp: str) -> str:
    """SQL of a wall-clock time in the service's time zone (bound as :tz)."""
    return f"(TIMESTAMP '{stamp}' AT TIME ZONE :tz)"


@pytest.fixture(scope="module")
def tz() -> str:
    """The server's time zone (it runs with this environment): dates and naive times are read in it."""
    from geogrid.settings import Settings

    return Settings().timezone


@pytest.mark.parametrize("value, where", [
    ("2025-02-01T00:00:00Z/2025-02-08T00:00:00Z",
     "occurred_at BETWEEN '2025-02-01T00:00:00Z' AND '2025-02-08T00:00:00Z'"),
    ("../2025-01-10T00:00:00Z", "occurred_at <= '2025-01-10T00:00:00Z'"),
    ("2025-04-20T00:00:00+08:00/..", "occurred_at >= '2025-04-20T00:00:00+08:00'"),
    ("2025-03-01", f"occurred_at >= {_local('2025-03-01')} AND occurred_at < {_local('2025-03-02')}"),
    ("2025-03-01/2025-03-03", f"occurred_at >= {_local('2025-03-01')} AND occurred_at < {_local('2025-03-04')}"),
    ("2025-03-01T12:00:00/2025-03-02T12:00:00",
     f"occurred_at BETWEEN {_local('2025-03-01 12:00')} AND {_local('2025-03-02 12:00')}"),
], ids=["closed", "open-start", "open-end", "date", "date-interval", "local-times"])
def test_datetime_counts_what_sql_counts(client, auth, sql, tz, value, where):
    body = client.get("/collections/incidents/items", params={"datetime": value, "limit": 1},
                      headers=auth("commander")).json()
    (n,) = sql(f"SELECT count(*) FROM incidents WHERE {where}", tz=tz)[0]
    assert 0 < n < 20_000 and body["numberMatched"] == n


def test_datetime_instant_matches_exactly(client, sql):
    ((t, n),) = sql("SELECT occurred_at, count(*) OVER (PARTITION BY occurred_at) FROM incidents ORDER BY id LIMIT 1")
    body = client.get("/collections/incidents/items", params={"datetime": t.isoformat()}).json()
    assert body["numberMatched"] == n
    assert all(datetime.fromisoformat(f["properties"]["occurred_at"]) == t for f in body["features"])


def test_property_filters(client, sql):
    ids = _all_ids(client, "/collections/grids/items", kind="urban", limit=100)
    assert sorted(ids) == _grid_codes(sql, "kind = 'urban'")
    (pop,) = sql("SELECT population FROM grids WHERE population IS NOT NULL ORDER BY code LIMIT 1")[0]
    ids = _all_ids(client, "/collections/grids/items", population=pop)
    assert sorted(ids) == _grid_codes(sql, "population = :p", p=pop)
    ids = _all_ids(client, "/collections/grids/items", kind=["urban", "rural"], limit=200)  # repeated: either
    assert sorted(ids) == _grid_codes(sql)


def test_property_filter_on_a_time_takes_an_instant_or_a_day(client, auth, sql, tz):
    ((t, n),) = sql("SELECT occurred_at, count(*) OVER (PARTITION BY occurred_at) FROM incidents ORDER BY id LIMIT 1")
    body = client.get("/collections/incidents/items", params={"occurred_at": t.isoformat()}).json()
    assert body["numberMatched"] == n
    (day,) = sql(f"SELECT count(*) FROM incidents WHERE occurred_at >= {_local('2025-03-05')} "
                 f"AND occurred_at < {_local('2025-03-06')}", tz=tz)[0]
    body = client.get("/collections/incidents/items", params={"occurred_at": "2025-03-05", "limit": 1}).json()
    assert day > 0 and body["numberMatched"] == day


CQL = [
    ("population > 3000 AND kind = 'urban'", "population > 3000 AND kind = 'urban'"),
    ("kind IN ('rural') OR population BETWEEN 1000 AND 2000", "kind IN ('rural') OR population BETWEEN 1000 AND 2000"),
    ("NOT (kind = 'urban') AND population < 2500", "NOT (kind = 'urban') AND population < 2500"),
    ("name LIKE '%社区%'", "name LIKE '%社区%'"),
    ("CASEI(code) = 'hf-0007'", "code = 'HF-0007'"),
    ("district IS NOT NULL AND code <> 'HF-0001'", "district IS NOT NULL AND code <> 'HF-0001'"),
    (f"S_INTERSECTS(geometry, POINT({LON} {LAT}))",
     f"ST_Intersects(geom, ST_SetSRID(ST_MakePoint({LON}, {LAT}), 4326))"),
    (f"S_CONTAINS(geometry, POINT({LON} {LAT}))", f"ST_Contains(geom, ST_SetSRID(ST_MakePoint({LON}, {LAT}), 4326))"),
    ("S_WITHIN(geometry, BBOX({}, {}, {}, {}))".format(*BOX),
     "ST_Within(geom, ST_MakeEnvelope({}, {}, {}, {}, 4326))".format(*BOX)),
    ("S_INTERSECTS(geometry, POLYGON(({0} {1}, {2} {1}, {2} {3}, {0} {1}))) AND kind = 'urban'".format(*BOX),
     "ST_Intersects(geom, ST_GeomFromText('POLYGON(({0} {1}, {2} {1}, {2} {3}, {0} {1}))', 4326)) "
     "AND kind = 'urban'".format(*BOX)),
]


@pytest.mark.parametrize("cql, where", CQL, ids=[c[0][:30] for c in CQL])
def test_cql2_filter_gives_the_rows_sql_gives(client, sql, cql, where):
    ids = _all_ids(client, "/collections/grids/items", filter=cql, **{"filter-lang": "cql2-text"}, limit=200)
    want = _grid_codes(sql, where)
    assert want and sorted(ids) == want


def test_cql2_on_incident_times_and_categories(client, auth, sql):
    cql = "occurred_at >= TIMESTAMP('2025-04-01T00:00:00Z') AND category IN ('theft', 'fraud')"
    body = client.get("/collections/incidents/items", params={"filter": cql, "limit": 1},
                      headers=auth("commander")).json()
    (n,) = sql("SELECT count(*) FROM incidents WHERE occurred_at >= '2025-04-01T00:00:00Z' "
               "AND category IN ('theft', 'fraud')")[0]
    assert n > 0 and body["numberMatched"] == n


def test_single_feature_has_the_grid_version_as_etag(client, sql):
    ((code, version),) = sql("SELECT code, version FROM grids ORDER BY code LIMIT 1")
    r = client.get(f"/collections/grids/items/{code}")
    assert r.status_code == 200 and r.headers["content-type"] == GEOJSON
    assert r.headers["etag"] == f'"{version}"'
    assert r.json()["id"] == code and r.json()["properties"]["version"] == version
    again = client.get(f"/collections/grids/items/{code}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]
    # If-None-Match compares weakly (RFC 9110), in a list, and * matches any current version
    for header in (f'W/{r.headers["etag"]}', f'"nope", {r.headers["etag"]}', "*"):
        assert client.get(f"/collections/grids/items/{code}", headers={"If-None-Match": header}).status_code == 304
    assert client.get(f"/collections/grids/items/{code}", headers={"If-None-Match": '"0"'}).status_code == 200


BAD = [
    ("grids", {"bbox": "1,2,3"}, "bbox"),
    ("grids", {"bbox": "a,b,c,d"}, "bbox"),
    ("grids", {"bbox": "118,31,117,32"}, "bbox"),
    ("grids", {"bbox": "117,-95,118,32"}, "bbox"),
    ("grids", {"bbox": "117,31,118,32,0,1"}, "bbox"),
    ("grids", {"datetime": "yesterday"}, "datetime"),
    ("grids", {"datetime": "2025-02-01/2025-01-01"}, "datetime"),
    ("grids", {"datetime": "9999-12-31"}, "datetime"),
    ("grids", {"updated_at": "2025-01-01/.."}, "updated_at"),
    ("incidents", {"occurred_at": "soon"}, "occurred_at"),
    ("posts", {"datetime": "2025-01-01"}, "datetime"),
    ("grids", {"limit": "0"}, "limit"),
    ("grids", {"limit": "ten"}, "limit"),
    ("grids", {"offset": "-1"}, "offset"),
    ("grids", {"colour": "red"}, "colour"),
    ("grids", {"population": "many"}, "population"),
    ("grids", {"filter": "colour = 'red'"}, "colour"),
    ("grids", {"filter": "population = 'many'"}, "filter"),
    ("grids", {"filter": "population >"}, "filter"),
    ("grids", {"filter": "S_CROSSES(geometry, POINT(117 31))"}, "CROSSES"),
    ("grids", {"filter": "S_INTERSECTS(geometry, POINT(917 31))"}, "filter"),
    ("grids", {"filter": "population + 1 = 2"}, "filter"),
    ("grids", {"filter": "kind = 'urban'", "filter-lang": "cql2-json"}, "filter-lang"),
    ("posts", {"plan": "1"}, "plan"),
    ("grids", {"f": "html"}, "f"),
]


@pytest.mark.parametrize("coll, params, names", BAD, ids=[f"{c}-{'&'.join(f'{k}={v}' for k, v in p.items())}"
                                                          for c, p, _ in BAD])
def test_bad_parameters_are_400_problems_naming_the_parameter(client, coll, params, names):
    r = client.get(f"/collections/{coll}/items", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    assert names in r.json()["detail"]


@pytest.mark.parametrize("path", ["/collections/nope", "/collections/nope/items", "/collections/nope/queryables",
                                  "/collections/grids/items/NO-SUCH-GRID", "/collections/hotspots/items/zz",
                                  f"/collections/grids/items?plan={2**40}"])
def test_missing_things_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_a_key_is_required(server):
    r = httpx.get(f"{server}/collections")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("role", ["commander", "admin"])
def test_privileged_roles_see_raw_incidents(client, auth, role):
    body = client.get("/collections/incidents/items", params={"limit": 5}, headers=auth(role)).json()
    assert body["numberMatched"] == 20_000
    f = body["features"][0]
    assert f["geometry"]["type"] == "Point" and "external_id" in f["properties"]
    assert client.get("/collections/incidents", headers=auth(role)).json()["aggregated"] is False


@pytest.mark.parametrize("role", ["viewer", "planner", "integrator"])
def test_other_roles_see_only_cell_counts_of_five_or_more(client, auth, sql, role):
    headers = auth(role)
    doc = client.get("/collections/incidents", headers=headers).json()
    assert doc["aggregated"] is True and "5" in doc["description"]
    r = client.get("/collections/incidents/items", params={"limit": 10_000}, headers=headers)
    body = r.json()
    cells = {f["properties"]["cell"]: f["properties"]["count"] for f in body["features"]}
    want = dict(sql("SELECT lower(to_hex(h3)), count(*) FROM incidents GROUP BY h3 HAVING count(*) >= 5"))
    (small,) = sql("SELECT count(*) FROM (SELECT h3 FROM incidents GROUP BY h3 HAVING count(*) < 5) s")[0]
    assert small > 0, "the city must have small cells for this test to mean anything"
    assert cells == want and body["numberMatched"] == len(want)
    for f in body["features"]:
        assert set(f["properties"]) == {"cell", "count"} and f["geometry"]["type"] == "Polygon"
    assert "external_id" not in r.text and "HF0011-" not in r.text
    # the filters that could single out an incident are refused
    assert client.get("/collections/incidents/items", params={"external_id": "x"}, headers=headers).status_code == 400
    assert client.get("/collections/incidents/items", params={"filter": "external_id = 'x'"},
                      headers=headers).status_code == 400
    # a suppressed cell cannot be fetched by id either
    ((hidden,),) = sql("SELECT lower(to_hex(h3)) FROM incidents GROUP BY h3 HAVING count(*) < 5 ORDER BY 1 LIMIT 1")
    assert client.get(f"/collections/incidents/items/{hidden}", headers=headers).status_code == 404
    shown, n = next(iter(want.items()))
    one = client.get(f"/collections/incidents/items/{shown}", headers=headers).json()
    assert one["properties"] == {"cell": shown, "count": n}


def test_aggregated_counts_honour_category_and_time_before_counting(client, auth, sql, tz):
    params = {"category": "theft", "datetime": "2025-02-01/2025-03-31", "limit": 10_000}
    body = client.get("/collections/incidents/items", params=params, headers=auth("viewer")).json()
    want = dict(sql("SELECT lower(to_hex(h3)), count(*) FROM incidents WHERE category = 'theft' AND "
                    f"occurred_at >= {_local('2025-02-01')} AND occurred_at < {_local('2025-04-01')} "
                    "GROUP BY h3 HAVING count(*) >= 5", tz=tz))
    assert want and {f["id"]: f["properties"]["count"] for f in body["features"]} == want
    cql = client.get("/collections/incidents/items", params={"filter": "count >= 20", "limit": 10_000},
                     headers=auth("viewer")).json()
    (n,) = sql("SELECT count(*) FROM (SELECT h3 FROM incidents GROUP BY h3 HAVING count(*) >= 20) s")[0]
    assert n > 0 and cql["numberMatched"] == n


def test_next_links_keep_the_filters(client, sql):
    cql = "population > 2000"
    ids = _all_ids(client, f"/collections/grids/items?filter={quote(cql)}&kind=urban&limit=5")
    assert sorted(ids) == _grid_codes(sql, "population > 2000 AND kind = 'urban'")


def test_raw_incidents_page_in_numeric_id_order(client, auth, sql):
    # raw incidents page by their numeric key (the primary-key index), not by the id's text
    got = [int(i) for i in _all_ids(client, "/collections/incidents/items", auth("commander"), limit=400,
                                    datetime="2025-03-01T00:00:00Z/2025-04-01T00:00:00Z")]
    want = [r[0] for r in sql("SELECT id FROM incidents WHERE occurred_at BETWEEN '2025-03-01T00:00:00Z' "
                              "AND '2025-04-01T00:00:00Z' ORDER BY id")]
    assert len(want) > 800, "the filter must span several pages for this test to mean anything"
    assert got == want
    assert any(len(str(a)) < len(str(b)) for a, b in zip(want, want[1:])), "ids must cross a power of ten"
