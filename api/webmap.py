"""The web map at ``/map``: the built page and its assets, and the JSON the page needs besides the data API.

The page and its static assets are public (a browser cannot send an API key with ``<script src>``);
every data request the page makes sends the key, and so do ``legends.json`` and ``context.json`` here.
The assets are built by ``make maps-assets`` (npm + esbuild) into ``api/static/map/``; when they are
missing every route below answers 503 naming that command instead of a bare 404.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, text
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from api.collections import COLLECTIONS
from api.deps import db
from api.errors import ApiError
from api.security import READ, RAW_INCIDENTS, WRITE, Principal, require

router = APIRouter(tags=["web map"])
ASSETS = Path(__file__).resolve().parent / "static" / "map"
# The page loads nothing from elsewhere (no CDN, no base map): the browser is told so, too.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'")
# Analysis kinds the commander view can pick a run of (the run= of the collections drawn from them).
RUN_KINDS = ("hotspots", "emerging", "clusters", "forecast", "tiers", "staffing", "beats", "coverage", "siting")
MAX_RUNS = 20

Reader = Annotated[Principal, Depends(require(READ))]
Conn = Annotated[Connection, Depends(db)]


class AssetsMissing(ApiError):
    status, title = 503, "Service unavailable"


def _assets() -> Path:
    if not (ASSETS / "index.html").is_file():
        raise AssetsMissing(f"the web map is not built ({ASSETS} has no index.html): run `make maps-assets`")
    return ASSETS


@cache
def _static(directory: Path) -> StaticFiles:
    return StaticFiles(directory=directory, check_dir=False)


@router.get("/map", include_in_schema=False)
@router.get("/map/", include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    """The web map page (public HTML; it asks for an API key and sends it with every data request)."""
    html = (_assets() / "index.html").read_text(encoding="utf-8")
    # the page's own URLs are absolute under the app's root path (a reverse-proxy prefix)
    html = html.replace("%BASE%", request.scope.get("root_path", "").rstrip("/"))
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache",
                                       "Referrer-Policy": "no-referrer"})


@router.api_route("/map/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def asset(path: str, request: Request) -> Response:
    """A built asset (JS, CSS, images); Starlette's StaticFiles keeps the path inside the folder."""
    directory = _assets()
    try:
        response = await _static(directory).get_response(path, request.scope)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise HTTPException(404, f"no web map asset {path!r}") from None
        raise
    response.headers["Cache-Control"] = "no-cache"  # fixed file names: revalidate by ETag (304)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@cache
def legends() -> dict:
    """Classes, colours and bilingual labels of every layer, from ``maps.palettes`` (the one source)."""
    from maps import palettes as pal  # maps pulls in folium: loaded on first use only

    def row(r, key=None, **extra) -> dict:
        return {"key": key, "color": r.color, "zh": r.label_zh, "en": r.label_en, "swatch": r.swatch, **extra}

    lim_mid, lim_top = pal.COVERAGE_LIMITS  # a class holds minutes <= its max; the last the rest
    coverage = [row(pal.COVERAGE[0], "fast", max=lim_mid), row(pal.COVERAGE[1], "mid", max=lim_top),
                row(pal.COVERAGE[2], "slow")]
    # the bounds of maps.layers._allocation_class: a class holds v <= max, or v < below
    allocation = {"none": {"max": 0}, "shared": {"below": 1}, "1": {"below": 2}, "2": {"below": 3}, "3+": {}}
    return {
        "titles": {c.id: {"zh": c.title_zh, "en": c.title} for c in COLLECTIONS.values()},
        "grid_outline": pal.GRID_OUTLINE,
        "not_significant": pal.NOT_SIGNIFICANT,
        "hotspots": {"field": "gi_bin", "classes": [row(r, k) for k, r in sorted(pal.GI_BINS.items(), reverse=True)]},
        "emerging": {"field": "pattern", "classes": [row(r, k) for k, r in pal.EMERGING.items()]},
        "tiers": {"field": "tier", "classes": [row(r, k) for k, r in pal.TIERS.items()]},
        "staffing": {"field": "officers", "classes": [row(r, k, **allocation[k])
                                                      for k, r in pal.ALLOCATION.items()]},
        "coverage": {"field": "mean_minutes", "classes": coverage},
        "coverage-cells": {"field": "minutes", "classes": coverage},
        "forecasts": {"field": "score", "ramp": list(pal.RISK), "flagged": row(pal.FLAGGED, "flagged")},
        "forecast-grids": {"field": "score", "ramp": list(pal.RISK), "flagged": row(pal.FLAGGED, "flagged")},
        "beats": {"field": "beat", "palette": list(pal.BEAT_COLOURS), "border": pal.BEAT_BORDER},
        "posts": {"classes": [row(pal.POST, "post")]},
        "siting": {"field": "existing", "classes": [row(pal.PROPOSED_SITE, "new"), row(pal.POST, "existing")]},
        "roads": {"classes": [row(pal.ROAD, "road")]},
        "uncovered": row(pal.UNCOVERED, "uncovered"),
    }


@router.get("/map/legends.json", operation_id="map_legends")
def get_legends(p: Reader) -> dict:
    """Legend classes, colours and zh-CN/en labels of the map layers (generated from ``maps.palettes``)."""
    return legends()


@router.get("/map/context.json", operation_id="map_context")
def get_context(p: Reader, conn: Conn) -> dict:
    """What the page needs to set itself up: the caller's role and rights, incident categories and time
    range, the active plan and its extent, and the recent runs of each analysis (for the run pickers)."""
    cats = [dict(r._mapping) for r in conn.execute(text("SELECT code, zh, en FROM categories ORDER BY code"))]
    if not cats:  # incidents loaded without a category table: their codes, untranslated
        cats = [{"code": c, "zh": c, "en": c} for (c,) in conn.execute(text(
            "SELECT DISTINCT category FROM incidents ORDER BY 1 LIMIT 500"))]
    span = conn.execute(text("SELECT min(occurred_at), max(occurred_at) FROM incidents")).first()
    plan = conn.execute(text(
        "SELECT p.id, p.name, ST_XMin(e) AS x0, ST_YMin(e) AS y0, ST_XMax(e) AS x1, ST_YMax(e) AS y1 "
        "FROM plans p LEFT JOIN LATERAL (SELECT ST_Extent(geom)::geometry AS e FROM grids WHERE plan_id = p.id) g "
        "ON TRUE WHERE p.status = 'active'")).first()
    runs = conn.execute(text(
        "SELECT id, kind, data_from, data_to, params, finished_at FROM ("
        " SELECT *, row_number() OVER (PARTITION BY kind ORDER BY id DESC) AS n FROM analysis_runs"
        " WHERE finished_at IS NOT NULL AND kind = ANY(:kinds)) r WHERE n <= :n ORDER BY kind, id DESC"),
        {"kinds": list(RUN_KINDS), "n": MAX_RUNS})
    by_kind: dict[str, list[dict]] = {k: [] for k in RUN_KINDS}
    for r in runs:
        by_kind[r.kind].append({"id": r.id, "data_from": r.data_from, "data_to": r.data_to,
                                "params": r.params, "finished_at": r.finished_at})
    return {
        "role": p.role,
        "can_write": p.can(WRITE),
        "raw_incidents": p.can(RAW_INCIDENTS),
        "categories": cats,
        "incidents": {"from": span[0], "to": span[1]},
        "active_plan": None if plan is None else {
            "id": plan.id, "name": plan.name,
            "bbox": None if plan.x0 is None else [plan.x0, plan.y0, plan.x1, plan.y1]},
        "runs": by_kind,
    }
