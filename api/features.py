"""OGC API – Features (Part 1 core + GeoJSON, Part 3 filtering with CQL2 text) over the collection registry.

Routes: ``/`` landing page, ``/conformance``, ``/collections``, ``/collections/{collectionId}``,
``.../queryables``, ``.../items`` and ``.../items/{featureId}``. HTTP parsing lives here; the SQL is in
``api.items`` and the CQL2 translation in ``api.cql2``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection

from api import items as q
from api.collections import COLLECTIONS, Collection, get_collection, layer_of, layer_version
from api.cql2 import CRS84
from api.etags import none_match
from api.deps import db
from api.errors import Forbidden
from api.security import READ, Principal, require
from geogrid.errors import InputError, NotFound

router = APIRouter(tags=["features"])
Reader = Annotated[Principal, Depends(require(READ))]
Conn = Annotated[Connection, Depends(db)]

GEOJSON = "application/geo+json"
JSON = "application/json"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
OGC = "http://www.opengis.net/spec"
CONFORMANCE = [
    f"{OGC}/ogcapi-features-1/1.0/conf/core",
    f"{OGC}/ogcapi-features-1/1.0/conf/geojson",
    f"{OGC}/ogcapi-features-1/1.0/conf/oas30",
    f"{OGC}/ogcapi-features-3/1.0/conf/filter",
    f"{OGC}/ogcapi-features-3/1.0/conf/features-filter",
    f"{OGC}/ogcapi-features-3/1.0/conf/queryables",
    f"{OGC}/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    f"{OGC}/cql2/1.0/conf/cql2-text",
    f"{OGC}/cql2/1.0/conf/basic-cql2",
    f"{OGC}/cql2/1.0/conf/advanced-comparison-operators",
    f"{OGC}/cql2/1.0/conf/case-insensitive-comparison",
    f"{OGC}/cql2/1.0/conf/basic-spatial-functions",
]
# query parameters of /items that are not property filters
RESERVED = {"bbox", "bbox-crs", "datetime", "limit", "offset", "filter", "filter-lang", "filter-crs", "plan", "run",
            "f"}
MAX_OFFSET = 2**62
# the enum documents the ids (and lets generated clients and schemathesis pick real ones); an unknown id
# still reaches the handler and is answered 404, as OGC API – Features asks
CollectionId = Annotated[str, Path(description="a collection id from /collections",
                                   json_schema_extra={"enum": sorted(COLLECTIONS)})]
Plan = Annotated[int | None, Query(description="grids of this plan (default: the active plan); grids only")]
Run = Annotated[int | None, Query(description="rows of this analysis run (default: the latest); result layers only")]
Format = Annotated[str | None, Query(description="response format: json (the only one)")]
BBox = Annotated[str | None, Query(description="minx,miny,maxx,maxy in CRS84 (lon/lat)",
                                   openapi_examples={"city": {"value": "117.2,31.8,117.3,31.9"}})]
Datetime = Annotated[str | None, Query(
    alias="datetime", openapi_examples={"month": {"value": "2025-02-01/2025-02-28"}},
    description="an instant (2025-03-01T08:00:00Z, or a date for that whole day) or an interval a/b, ../b, a/..; "
                "times without an offset are in the service's time zone; collections with a time property only")]
Limit = Annotated[int, Query(ge=1, description="features per page (larger values are cut to the server maximum)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="features to skip")]
Filter = Annotated[str | None, Query(
    alias="filter", description="a CQL2 text expression over the properties in /collections/{id}/queryables",
    openapi_examples={"spatial": {"value": "S_INTERSECTS(geometry, POINT(117.25 31.85))"}})]
FilterLang = Annotated[str | None, Query(alias="filter-lang", description="cql2-text (the only one)")]
FilterCrs = Annotated[str | None, Query(alias="filter-crs", description="CRS84 (the only one)")]
BBoxCrs = Annotated[str | None, Query(alias="bbox-crs", description="CRS84 (the only one)")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def _check_format(f: str | None) -> None:
    if f is not None and f.lower() not in ("json", "geojson"):
        raise InputError(f"f: format {f!r} is not offered; use f=json (or leave it out)")


def _view(coll: Collection, who: Principal) -> q.View:
    """The collection as ``who`` may see it: raw, aggregated, or not at all (403)."""
    if who.can(coll.roles):
        return q.View(coll)
    agg = q.AGGREGATED.get(coll.id)
    if agg is None:
        raise Forbidden(f"role {who.role!r} may not read collection {coll.id!r}")
    return q.View(coll, agg)


@router.get("/", operation_id="getLandingPage")
def landing(request: Request, who: Reader, f: Format = None) -> dict:
    """Landing page: what this service offers and where."""
    _check_format(f)
    b = _base(request)
    return {
        "title": "geogrid", "description": "Police-grid governance: grids, posts, beats, analysis results and "
                                           "incidents as OGC API – Features; vector tiles; responsibility lookup.",
        "links": [
            _link(f"{b}/", "self", title="this document"),
            _link(f"{b}/api", "service-desc", "application/vnd.oai.openapi+json;version=3.0", "the API definition"),
            _link(f"{b}/api.html", "service-doc", "text/html", "the API documentation"),
            _link(f"{b}/conformance", "conformance", title="conformance classes"),
            _link(f"{b}/conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance"),
            _link(f"{b}/collections", "data", title="collections"),
            _link(f"{b}/collections", "http://www.opengis.net/def/rel/ogc/1.0/data"),
            _link(f"{b}/map", "alternate", "text/html", "web map"),
        ],
    }


@router.get("/conformance", operation_id="getConformance")
def conformance(who: Reader, f: Format = None) -> dict:
    """Conformance classes implemented."""
    _check_format(f)
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", operation_id="getCollections")
def collections(request: Request, who: Reader, conn: Conn, f: Format = None) -> dict:
    """Every collection the caller may read (incidents aggregated for roles without raw access)."""
    _check_format(f)
    docs = []
    for coll in COLLECTIONS.values():
        try:
            view = _view(coll, who)
        except Forbidden:
            continue
        docs.append(_collection_doc(request, conn, view))
    b = _base(request)
    return {"links": [_link(f"{b}/collections", "self")], "collections": docs}


@router.get("/collections/{collectionId}", operation_id="describeCollection")
def collection(request: Request, who: Reader, conn: Conn, collectionId: CollectionId, f: Format = None) -> dict:
    """One collection: extent, CRS, links to its items, queryables and tiles."""
    _check_format(f)
    return _collection_doc(request, conn, _view(get_collection(collectionId), who))


@router.get("/collections/{collectionId}/queryables", operation_id="getQueryables",
            responses={200: {"content": {"application/schema+json": {}}, "description": "JSON Schema"}})
def queryables(request: Request, who: Reader, collectionId: CollectionId, f: Format = None) -> JSONResponse:
    """JSON Schema of the properties a filter may name."""
    _check_format(f)
    view = _view(get_collection(collectionId), who)
    props = {}
    for name, qa in view.queryables().items():
        if qa.kind == "geometry":
            props[name] = {"title": "geometry", "format": f"geometry-{view.geometry_type.lower()}",
                           "x-ogc-role": "primary-geometry"}
        elif qa.kind == "datetime":
            props[name] = {"title": name, "type": "string", "format": "date-time"}
        else:
            props[name] = {"title": name, "type": qa.kind}
    body = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{_base(request)}/collections/{view.coll.id}/queryables",
            "type": "object", "title": view.coll.title, "properties": props, "additionalProperties": False}
    return JSONResponse(body, media_type="application/schema+json")


@router.get("/collections/{collectionId}/items", operation_id="getFeatures", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}, "description": "a GeoJSON FeatureCollection"}})
def items(
    request: Request, who: Reader, conn: Conn, collectionId: CollectionId,
    bbox: BBox = None, datetime_: Datetime = None, limit: Limit = 100, offset: Offset = 0,
    filter_: Filter = None, filter_lang: FilterLang = None, filter_crs: FilterCrs = None, bbox_crs: BBoxCrs = None,
    plan: Plan = None, run: Run = None, f: Format = None,
) -> Response:
    """Features of a collection as GeoJSON, filtered and paged; other query parameters filter on properties."""
    _check_format(f)
    view = _view(get_collection(collectionId), who)
    _check_scope_params(view.coll, plan, run)
    _check_languages(filter_lang, filter_crs, bbox_crs)
    props: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in RESERVED:
            props.setdefault(key, []).append(value)
    filters = q.build_filters(view, bbox=bbox, datetime_=datetime_, cql=filter_, props=props,
                              tz=request.app.state.settings.timezone)
    limit = min(limit, request.app.state.settings.max_items)
    src = q.source(conn, view, filters, plan, run)
    matched, features = q.page(conn, view, src, filters, limit, offset)
    url = request.url
    links = [_link(str(url), "self", GEOJSON),
             _link(f"{_base(request)}/collections/{view.coll.id}", "collection")]
    if offset + len(features) < matched:
        links.append(_link(str(url.include_query_params(offset=offset + limit, limit=limit)), "next", GEOJSON))
    if offset > 0:
        links.append(_link(str(url.include_query_params(offset=max(0, offset - limit), limit=limit)), "prev", GEOJSON))
    meta = {"numberMatched": matched, "numberReturned": len(features),
            "timeStamp": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "links": links}
    body = '{"type":"FeatureCollection","features":[' + ",".join(features) + "]," + json.dumps(meta)[1:]
    return Response(body, media_type=GEOJSON)


@router.get("/collections/{collectionId}/items/{featureId}", operation_id="getFeature", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}, "description": "a GeoJSON Feature, with an ETag"}})
def item(request: Request, who: Reader, conn: Conn, collectionId: CollectionId,
         featureId: Annotated[str, Path(description="the feature's id (grids: the grid code)")],
         plan: Plan = None, run: Run = None, f: Format = None) -> Response:
    """One feature; grids carry their version as ETag (send it back as If-Match when editing)."""
    _check_format(f)
    view = _view(get_collection(collectionId), who)
    _check_scope_params(view.coll, plan, run)
    unknown = sorted(set(request.query_params) - {"plan", "run", "f"})
    if unknown:
        raise InputError(f"unknown query parameter {unknown[0]!r}; this route takes plan=, run= and f=")
    extra = None
    if view.agg is not None:
        try:
            cell = int(featureId, 16)
        except ValueError:
            raise NotFound(f"no feature {featureId!r} in {view.coll.id!r} (ids are H3 cells)") from None
        if not 0 < cell < 2**63:
            raise NotFound(f"no feature {featureId!r} in {view.coll.id!r}")
        extra = (f"{view.agg.cell_column} = :_cell", {"_cell": cell})
    if "\x00" in featureId:
        raise NotFound(f"no feature {featureId!r} in {view.coll.id!r}")
    src = q.source(conn, view, q.Filters(), plan, run, extra)
    text = q.one(conn, view, src, featureId)
    if text is None:
        raise NotFound(f"no feature {featureId!r} in collection {view.coll.id!r}")
    feature = json.loads(text)
    b = _base(request)
    feature["links"] = [_link(str(request.url), "self", GEOJSON),
                        _link(f"{b}/collections/{view.coll.id}", "collection")]
    if view.coll.scope == "plan":
        etag = f'"{feature["properties"]["version"]}"'  # the grid's version: what If-Match compares with
    else:
        etag = f'W/"{layer_of(view.coll)}-{layer_version(conn, view.coll)}"'
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(feature, media_type=GEOJSON, headers={"ETag": etag})


def _check_scope_params(coll: Collection, plan: int | None, run: int | None) -> None:
    if plan is not None and coll.scope != "plan":
        raise InputError(f"plan: collection {coll.id!r} is not drawn from a plan")
    if run is not None and coll.scope != "run":
        raise InputError(f"run: collection {coll.id!r} is not an analysis result")


def _check_languages(filter_lang: str | None, filter_crs: str | None, bbox_crs: str | None) -> None:
    if filter_lang is not None and filter_lang != "cql2-text":
        raise InputError(f"filter-lang: {filter_lang!r} is not supported; use cql2-text")
    for name, crs in (("filter-crs", filter_crs), ("bbox-crs", bbox_crs)):
        if crs is not None and crs not in CRS84:
            raise InputError(f"{name}: only {CRS84_URI} is supported, not {crs!r}")


def _collection_doc(request: Request, conn: Connection, view: q.View) -> dict:
    coll, b = view.coll, _base(request)
    url = f"{b}/collections/{coll.id}"
    links = [_link(url, "self"), _link(f"{url}/items", "items", GEOJSON, "features"),
             _link(f"{url}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                   "application/schema+json", "queryable properties")]
    if _offers_tiles():
        links.append(_link(f"{url}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                           JSON, "vector tiles"))
    doc = {"id": coll.id, "title": coll.title, "title_zh": coll.title_zh, "description": coll.description,
           "itemType": "feature", "crs": [CRS84_URI], "storageCrs": CRS84_URI,
           "geometryType": view.geometry_type, "aggregated": view.agg is not None, "links": links}
    if view.agg is not None:
        doc["description"] = (f"{coll.description} You see counts per H3 cell (properties cell, count); cells with "
                              f"fewer than {view.agg.min_count} incidents are left out. Filter on "
                              f"{', '.join(view.agg.prefilters)} and datetime before counting; on cell, count, "
                              "bbox and geometry after.")
    spatial, temporal = _extent(request, conn, view)
    if spatial or temporal:
        doc["extent"] = {}
        if spatial:
            doc["extent"]["spatial"] = {"bbox": [spatial], "crs": CRS84_URI}
        if temporal:
            doc["extent"]["temporal"] = {"interval": [temporal],
                                         "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return doc


def _extent(request: Request, conn: Connection, view: q.View):
    """Extent of the default rows, cached per layer version (an edit changes the version)."""
    cache = getattr(request.app.state, "feature_extents", None)
    if cache is None:
        cache = request.app.state.feature_extents = {}
    key = (view.coll.id, view.agg is not None, layer_version(conn, view.coll))
    if key not in cache:
        try:
            cache[key] = q.extent(conn, view, q.source(conn, view, q.Filters()))
        except NotFound:  # e.g. no active plan yet: a collection without extent, not an error
            cache[key] = (None, None)
        if len(cache) > 256:
            cache.pop(next(iter(cache)))
    return cache[key]


def _offers_tiles() -> bool:
    """Whether the tiles router serves ``/collections/{collectionId}/tiles`` (it does for every collection)."""
    from api import tiles

    return any(getattr(r, "path", "").startswith("/collections/{collectionId}/tiles") for r in tiles.router.routes)
