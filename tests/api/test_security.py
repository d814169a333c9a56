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
    r = httpx.post(server + "/plans", content=b"x" * 1_000_001, headers={**auth("planner"),
                                                                          "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413


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
