"""Keys, roles, limits, audit and problem+json, against the live server."""
from __future__ import annotations

import httpx
from sqlalchemy import text


def test_openapi_and_unknown_route_is_problem_json(server):
    r = httpx.get(server + "/api")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
    r = httpx.get(server + "/no/such/route")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404 and r.json()["title"] == "Not Found"


def test_body_over_the_limit_is_refused_before_the_handler(server, auth, api_city):
    with api_city.connect() as c:
        before = c.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    r = httpx.post(server + "/plans", content=b"x" * 1_000_001, headers={**auth("planner"),
                                                                          "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413
    with api_city.connect() as c:  # a refused write is still a write attempt: audited, with who sent it
        rows = c.execute(text("SELECT role, method, path, status FROM audit_log WHERE id > :b"),
                         {"b": before}).all()
    assert [tuple(r) for r in rows] == [("planner", "POST", "/plans", 413)]


def test_every_write_is_audited_also_refused_ones(server, auth, api_city):
    with api_city.connect() as c:
        before = c.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    httpx.post(server + "/plans", json={"name": "audit-probe"}, headers=auth("viewer"))
    with api_city.connect() as c:
        rows = c.execute(text("SELECT actor, role, method, path, status FROM audit_log WHERE id > :b"),
                         {"b": before}).mappings().all()
    assert [(r["role"], r["method"], r["path"], r["status"]) for r in rows] == [("viewer", "POST", "/plans", 403)]
    assert rows[0]["actor"].startswith("key-") and "viewer-key" not in rows[0]["actor"]


PUBLIC = {("GET", "/health"), ("GET", "/map"), ("GET", "/map/legends.json")}


def _operations(server):
    spec = httpx.get(server + "/api").json()
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path


def _concrete(path: str) -> str:
    # any value: the key check runs before the parameters are looked at
    import re
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_but_health_and_the_page_needs_a_key(server):
    ops = list(_operations(server))
    assert len(ops) > 15  # the routers are wired
    for method, path in ops:
        if (method, path) in PUBLIC or path.startswith("/map/static"):
            continue
        r = httpx.request(method, server + _concrete(path), json={} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "Bearer" in r.headers.get("www-authenticate", "")


def test_unknown_key_is_401_not_anonymous(server):
    r = httpx.get(server + "/collections", headers={"X-API-Key": "not-a-key"})
    assert r.status_code == 401 and r.json()["detail"] == "unknown API key"


def test_x_api_key_header_works_like_bearer(server, keys):
    assert httpx.get(server + "/collections", headers={"X-API-Key": keys["viewer"]}).status_code == 200


ROLES = ("viewer", "commander", "planner", "integrator", "admin")
WRITERS = {"planner", "admin"}


def _inside_point(api_city):
    with api_city.connect() as c:
        return c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) p FROM grids g "
                              "JOIN plans pl ON pl.id = g.plan_id AND pl.status = 'active' LIMIT 1) s")).one()


def test_role_matrix(server, auth, api_city):
    """Each role × each kind of route: reads for all, writes for planner/admin, raw incidents for commander/admin."""
    import morecantile

    lon, lat = _inside_point(api_city)
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12)
    made = []
    try:
        for role in ROLES:
            h = auth(role)
            reads = ["/collections", "/collections/grids/items?limit=1", f"/collections/grids/tiles/WebMercatorQuad/12/{t.x}/{t.y}",
                     f"/lookup?lon={lon}&lat={lat}", "/plans", "/map/context.json", "/conformance"]
            for path in reads:
                r = httpx.get(server + path, headers=h, timeout=60)
                assert r.status_code == 200, (role, path, r.status_code, r.text[:200])
            props = httpx.get(server + "/collections/incidents/items?limit=1", headers=h, timeout=60).json()[
                "features"][0]["properties"]
            raw = role in ("commander", "admin")
            assert ("category" in props) is raw and ("count" in props) is (not raw), (role, props)
            name = f"matrix-{role}"
            r = httpx.post(server + "/plans", json={"name": name}, headers=h, timeout=120)
            assert r.status_code == (201 if role in WRITERS else 403), (role, r.status_code, r.text[:200])
            if r.status_code == 201:
                made.append(r.json()["id"])
                pid = made[-1]
                with api_city.connect() as c:
                    code, version = c.execute(text("SELECT code, version FROM grids WHERE plan_id = :p LIMIT 1"),
                                              {"p": pid}).one()
                for other in ROLES:
                    if other in WRITERS:
                        continue
                    r = httpx.post(server + f"/plans/{pid}/activate", headers=auth(other))
                    assert r.status_code == 403, (other, r.status_code)
                    r = httpx.put(server + f"/plans/{pid}/grids/{code}", headers={**auth(other), "If-Match": f'"{version}"'},
                                  json={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
                    assert r.status_code == 403, (other, r.status_code)
    finally:
        with api_city.begin() as c:
            for pid in made:
                c.execute(text("DELETE FROM grid_history WHERE plan_id = :p"), {"p": pid})
                c.execute(text("DELETE FROM plans WHERE id = :p AND status = 'draft'"), {"p": pid})
