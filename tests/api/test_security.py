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
