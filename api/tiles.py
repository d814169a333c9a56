"""Vector tiles (OGC API – Tiles shape): tileset list, TileJSON 3.0.0 and MVT tiles of every collection.

A tile's ETag is a hash of (collection, z/x/y, filters, what the caller's role sees, and the
version of the layer the collection is drawn from). ``layer_versions`` is bumped by triggers in
the same transaction as every write, so the ETag changes on the very next request after an edit,
and a repeated request costs one one-row query: 304 when the client holds the ETag, else the bytes
from an in-process LRU cache keyed the same way. See docs/tiles.md.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from urllib.parse import urlencode
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import Connection, text
from starlette.concurrency import run_in_threadpool

from api import mvt
from api.collections import Collection, get_collection, layer_of, scope_filter
from api.deps import db
from api.etags import none_match
from api.security import RAW_INCIDENTS, READ, Principal, require
from api.tilecache import TileCache
from geogrid.errors import NotFound

router = APIRouter(tags=["tiles"])

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
# must-revalidate + max-age=0: a client or proxy may keep the tile but asks each time (a 304 is
# cheap), so a planner's edit shows on the next request. Vary: the role decides what incidents show.
CACHE_CONTROL = "public, max-age=0, must-revalidate"
CACHE_CONTROL_PRIVATE = "private, max-age=0, must-revalidate"
VARY = "Authorization, X-API-Key"
TILEJSON_MAXZOOM = 22

_cache_lock = threading.Lock()


def tile_cache(request: Request) -> TileCache:
    """The app's tile cache (shared by its requests; ``GEOGRID_TILE_CACHE_BYTES`` bounds it, 0 turns it off)."""
    cache = getattr(request.app.state, "tile_cache", None)
    if cache is None:
        with _cache_lock:
            cache = getattr(request.app.state, "tile_cache", None)
            if cache is None:
                cache = request.app.state.tile_cache = TileCache(request.app.state.settings.tile_cache_bytes)
    return cache


def _tms(tileMatrixSetId: str) -> str:
    if tileMatrixSetId != TMS_ID:
        raise NotFound(f"tile matrix set {tileMatrixSetId!r} is not offered; use {TMS_ID}")
    return tileMatrixSetId


def _variant(coll: Collection, z: int, who: Principal) -> tuple:
    """What the caller's role sees at zoom ``z``: ('features',) or ('cells', min_count)."""
    if coll.id != "incidents":
        return ("features",)
    raw = who.can(RAW_INCIDENTS)
    if raw and z >= mvt.RAW_MIN_ZOOM:
        return ("features",)
    return ("cells", 1 if raw else mvt.SUPPRESS_BELOW)


def _layer_state(conn: Connection, coll: Collection) -> tuple[int, str]:
    """(version, changed_at) of the collection's layer: the one tiny query of a repeated request."""
    row = conn.execute(text("SELECT version, changed_at FROM layer_versions WHERE layer = :l"),
                       {"l": layer_of(coll)}).first()
    return (0, "") if row is None else (int(row[0]), row[1].isoformat())


def _etag(key: tuple) -> str:
    # weak: the same data may encode to different bytes (row order), which weak comparison allows
    return 'W/"' + hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest() + '"'


def _filters(request: Request, coll: Collection, plan, run, datetime_, category, horizon_days, method):
    return mvt.tile_filters(coll, plan=plan, run=run, datetime_=datetime_, category=category,
                            horizon_days=horizon_days, method=method, tz=request.app.state.settings.timezone)


CollectionId = Annotated[str, Path(description="collection id (see /collections)")]
TmsId = Annotated[str, Path(description="tile matrix set; only WebMercatorQuad")]
PlanQ = Annotated[int | None, Query(ge=1, description="plan id (grids; default the active plan)")]
RunQ = Annotated[int | None, Query(ge=1, description="analysis run id (result layers; default the latest)")]
DatetimeQ = Annotated[str | None, Query(alias="datetime", max_length=100,
                                        description="RFC 3339 instant, date or interval a/b ('..' open)")]
CategoryQ = Annotated[str | None, Query(max_length=2000, description="incidents: comma-separated categories")]
HorizonQ = Annotated[int | None, Query(ge=1, le=3650, description="forecasts: horizon in days")]
MethodQ = Annotated[str | None, Query(max_length=32, description="forecasts: method")]


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}/{z}/{x}/{y}", operation_id="getTile",
            response_class=Response,
            responses={200: {"content": {mvt.MVT_TYPE: {}}, "description": "the tile"},
                       204: {"description": "no feature meets the tile"},
                       304: {"description": "the client's copy (If-None-Match) is current"}})
async def get_tile(request: Request, collectionId: CollectionId, tileMatrixSetId: TmsId,
                   z: Annotated[int, Path(description="zoom, 0 to 24")],
                   x: Annotated[int, Path(description="column, 0 to 2^z - 1")],
                   y: Annotated[int, Path(description="row, 0 to 2^z - 1")],
                   plan: PlanQ = None, run: RunQ = None, datetime_: DatetimeQ = None, category: CategoryQ = None,
                   horizon_days: HorizonQ = None, method: MethodQ = None,
                   who: Principal = Depends(require(READ))) -> Response:
    """One Mapbox vector tile (layer name = collection id). Incidents: raw points for commanders and
    admins from zoom 13; otherwise counts per H3 cell, cells under 5 incidents left out for other roles."""
    t0 = time.perf_counter()
    coll = get_collection(collectionId)
    _tms(tileMatrixSetId)
    addr = mvt.tile_address(z, x, y)
    f = _filters(request, coll, plan, run, datetime_, category, horizon_days, method)
    # async route, all database work in one worker-thread hop: a repeated tile is mostly overhead
    response = await run_in_threadpool(_answer, request, coll, addr, f, _variant(coll, addr.z, who))
    # the handler's own time, so clients (and bench/tiles.py) can tell it from the HTTP stack's
    response.headers["Server-Timing"] = f"tile;dur={(time.perf_counter() - t0) * 1000:.2f}"
    return response


def _answer(request: Request, coll: Collection, addr: mvt.TileAddress, f: mvt.TileFilters, variant: tuple) -> Response:
    with request.app.state.engine.connect() as c:
        # autocommit: no BEGIN/ROLLBACK round trips. The version is read before the tile is drawn, so a
        # write landing in between gives newer data under the older ETag, never older data under a newer one.
        conn = c.execution_options(isolation_level="AUTOCOMMIT")
        key = (coll.id, addr.z, addr.x, addr.y, f.key(), variant, _layer_state(conn, coll))
        etag = _etag(key)
        headers = {"ETag": etag, "Vary": VARY,
                   "Cache-Control": CACHE_CONTROL_PRIVATE if coll.id == "incidents" else CACHE_CONTROL}
        if none_match(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        cache = tile_cache(request)
        body = cache.get(key)
        if body is None:
            body = _render(conn, coll, addr, f, variant)
            cache.put(key, body)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=mvt.MVT_TYPE, headers=headers)


def _render(conn: Connection, coll: Collection, addr: mvt.TileAddress, f: mvt.TileFilters, variant: tuple) -> bytes:
    if variant[0] == "features":
        return mvt.render_features(conn, coll, addr, f)
    from geogrid.store.incidents import h3_resolution

    base = h3_resolution(conn)
    if base is None:  # no incidents loaded yet
        return b""
    return mvt.render_cells(conn, coll, addr, f, mvt.cell_resolution(addr.z, base), base, variant[1])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _template(request: Request, coll: Collection) -> str:
    """Absolute tile URL template, carrying the request's filters (so the tiles match the document)."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "f"])
    return (f"{_base(request)}/collections/{coll.id}/tiles/{TMS_ID}/{{z}}/{{x}}/{{y}}"
            + (f"?{query}" if query else ""))


@router.get("/collections/{collectionId}/tiles", operation_id="getTileSets")
def get_tilesets(request: Request, collectionId: CollectionId, who: Principal = Depends(require(READ))) -> dict:
    """The tilesets of a collection (OGC API – Tiles): one vector tileset in WebMercatorQuad."""
    coll = get_collection(collectionId)
    base = f"{_base(request)}/collections/{coll.id}/tiles"
    return {
        "links": [{"rel": "self", "href": base, "type": "application/json"},
                  {"rel": "collection", "href": f"{_base(request)}/collections/{coll.id}", "type": "application/json"}],
        "tilesets": [{
            "title": f"{coll.title} ({TMS_ID})",
            "dataType": "vector",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "tileMatrixSetURI": TMS_URI,
            "links": [
                {"rel": "self", "href": f"{base}/{TMS_ID}", "type": "application/vnd.mapbox.tile+json",
                 "title": "TileJSON 3.0.0"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "href": TMS_URI},
                {"rel": "item", "href": _template(request, coll), "type": mvt.MVT_TYPE, "templated": True},
            ],
        }],
    }


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}", operation_id="getTileJSON")
def get_tilejson(request: Request, collectionId: CollectionId, tileMatrixSetId: TmsId,
                 plan: PlanQ = None, run: RunQ = None, datetime_: DatetimeQ = None, category: CategoryQ = None,
                 horizon_days: HorizonQ = None, method: MethodQ = None,
                 who: Principal = Depends(require(READ)), conn: Connection = Depends(db)) -> Response:
    """TileJSON 3.0.0 of the collection's tiles (absolute URL template, zooms, bounds, fields)."""
    coll = get_collection(collectionId)
    _tms(tileMatrixSetId)
    f = _filters(request, coll, plan, run, datetime_, category, horizon_days, method)
    bounds = _bounds(conn, coll, f)
    raw = _variant(coll, mvt.MAX_ZOOM, who) == ("features",)
    fields = mvt.field_types(coll) if raw else mvt.CELL_FIELDS
    layer = {"id": coll.id, "description": coll.title, "minzoom": 0, "maxzoom": TILEJSON_MAXZOOM, "fields": fields}
    doc = {
        "tilejson": "3.0.0",
        "name": coll.id,
        "description": coll.description or coll.title,
        "attribution": "geogrid",
        "scheme": "xyz",
        "tiles": [_template(request, coll)],
        "minzoom": 0,
        "maxzoom": TILEJSON_MAXZOOM,
        "bounds": bounds,
        "center": [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6), 12],
        "vector_layers": [layer],
    }
    if coll.id == "incidents":
        doc["description"] = (
            (f"Raw incident points from zoom {mvt.RAW_MIN_ZOOM}; below, counts per H3 cell."
             if raw else f"Counts of incidents per H3 cell; cells with fewer than {mvt.SUPPRESS_BELOW} are left out.")
            + " Cell layers have the fields cell, count and resolution.")
    return Response(_json(doc), media_type="application/json",
                    headers={"Cache-Control": CACHE_CONTROL_PRIVATE, "Vary": VARY})


def _json(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _bounds(conn: Connection, coll: Collection, f: mvt.TileFilters) -> list[float]:
    """[w, s, e, n] of the rows served (the whole world when there are none)."""
    scope, binds = scope_filter(conn, coll, plan=f.plan, run=f.run)
    conds, fb = mvt.filter_sql(coll, f)
    where = " AND ".join([f"({scope})", *conds])
    box = conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                            f"(SELECT ST_Extent(t.geom) AS e FROM {coll.table} t WHERE {where}) s"),
                       {**binds, **fb}).first()
    if box is None or box[0] is None:
        return [-180.0, -85.051129, 180.0, 85.051129]
    return [round(float(v), 6) for v in box]

