"""The SQL behind ``/collections/{id}/items``: one collection's rows as GeoJSON, filtered and paged.

A *view* is a collection as one caller may see it: raw rows, or — for incidents and roles without
the right to raw points — counts per H3 cell with small counts suppressed. Every identifier reaching
SQL comes from the registry in ``api.collections`` or from this module; request values are binds.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import shapely
from sqlalchemy import Connection, text
from sqlalchemy.exc import DataError
from sqlalchemy.types import ARRAY, JSON, Boolean, DateTime, Float, Integer, Numeric, String

from api import mvt
from api.cql2 import Queryable, check_bbox, to_sql
from api.collections import Collection, scope_filter
from geogrid.cells import cells_to_polygons
from geogrid.errors import InputError


@dataclass(frozen=True)
class Aggregation:
    """How a collection is shown to roles that may not see its rows: counts per H3 cell.

    Cells with fewer than ``min_count`` rows are left out (small counts could identify a victim or
    an address). Only ``prefilters`` (coarse attributes) and the time window narrow the rows counted;
    filters on ``cell``/``count``, ``bbox`` and spatial predicates apply to the cells afterwards.
    """

    cell_column: str = "h3"
    min_count: int = mvt.SUPPRESS_BELOW  # one threshold for features and tiles
    prefilters: tuple[str, ...] = ("category", "priority")


AGGREGATED: dict[str, Aggregation] = {"incidents": Aggregation()}
AGG_KINDS = {"cell": "string", "count": "integer"}


@dataclass(frozen=True)
class View:
    """A collection as the caller sees it."""

    coll: Collection
    agg: Aggregation | None = None

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(AGG_KINDS) if self.agg else self.coll.properties

    @property
    def geometry_type(self) -> str:
        return "Polygon" if self.agg else self.coll.geometry_type

    def kinds(self) -> dict[str, str]:
        """Property → kind (string, integer, number, boolean, datetime, array, object)."""
        return dict(AGG_KINDS) if self.agg else column_kinds(self.coll)

    def queryables(self) -> dict[str, Queryable]:
        """Properties a filter may name (arrays and JSON objects are not filterable), plus ``geometry``."""
        out = {n: Queryable(n, f't."{n}"', k) for n, k in self.kinds().items() if k in _FILTERABLE}
        out["geometry"] = Queryable("geometry", "t.geom", "geometry")
        return out

    def prefilter_kinds(self) -> dict[str, str]:
        """Properties filtered before aggregation (query parameters only)."""
        if not self.agg:
            return {}
        kinds = column_kinds(self.coll)
        return {n: kinds[n] for n in self.agg.prefilters}


_FILTERABLE = {"string", "integer", "number", "boolean", "datetime"}


def column_kinds(coll: Collection) -> dict[str, str]:
    """Kind of each public property of ``coll``, read from the SQLAlchemy models."""
    from geogrid.store.models import Base

    table = Base.metadata.tables[coll.table]
    return {p: _kind(table.c[p].type) for p in coll.properties}


def _kind(sqltype) -> str:
    # order matters: Boolean/Integer before Numeric; arrays and JSON are served but not filterable
    for cls, kind in ((ARRAY, "array"), (JSON, "object"), (Boolean, "boolean"), (Integer, "integer"),
                      (Float, "number"), (Numeric, "number"), (DateTime, "datetime"), (String, "string")):
        if isinstance(sqltype, cls):
            return kind
    return "string"


@dataclass
class Filters:
    """The filters of one items request, parsed and checked (SQL conditions with binds)."""

    inner: list[str] = field(default_factory=list)  # on the table's rows (before any aggregation)
    outer: list[str] = field(default_factory=list)  # on the served features ``t``
    binds: dict = field(default_factory=dict)


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in CRS84 → floats; ``InputError`` naming ``bbox`` otherwise."""
    parts = value.split(",")
    if len(parts) == 6:
        raise InputError("bbox: a 3-D box (6 numbers) is not supported; give minx,miny,maxx,maxy")
    if len(parts) != 4:
        raise InputError(f"bbox: expected 4 comma-separated numbers minx,miny,maxx,maxy, got {len(parts)}")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(f"bbox: {value!r} is not four numbers") from None
    check_bbox(*box, "bbox")
    return box


def build_filters(view: View, *, bbox: str | None, datetime_: str | None, cql: str | None,
                  props: dict[str, list[str]], tz: str = "UTC") -> Filters:
    """Parse and check every filter of an items request into SQL conditions (``tz``: see api.mvt.parse_datetime)."""
    f = Filters()
    if bbox is not None:
        minx, miny, maxx, maxy = parse_bbox(bbox)
        f.outer.append("ST_Intersects(t.geom, ST_MakeEnvelope(:_bx0, :_by0, :_bx1, :_by1, 4326))")
        f.binds.update(_bx0=minx, _by0=miny, _bx1=maxx, _by1=maxy)
    if datetime_ is not None:
        col = view.coll.datetime_column
        if col is None:
            raise InputError(f"datetime: collection {view.coll.id!r} has no time property")
        lo, hi = mvt.parse_datetime(datetime_, tz)
        if lo is not None:
            f.inner.append(f"{col} >= :_t0")
        if hi is not None:
            f.inner.append(f"{col} <= :_t1")
        f.binds.update(_t0=lo, _t1=hi)
    queryables, pre = view.queryables(), view.prefilter_kinds()
    for i, (name, vals) in enumerate(sorted(props.items())):
        if name in pre:
            expr, kind, target = name, pre[name], f.inner
        elif name in queryables and queryables[name].kind != "geometry":
            expr, kind, target = queryables[name].sql, queryables[name].kind, f.outer
        else:
            allowed = sorted(set(pre) | {q for q, v in queryables.items() if v.kind != "geometry"})
            raise InputError(f"unknown query parameter {name!r}; properties to filter on: {', '.join(allowed)}")
        alternatives = []
        for j, raw in enumerate(vals):
            key = f"_p{i}_{j}"
            if kind == "datetime":  # a date matches its whole day, as in datetime=
                try:
                    lo, hi = mvt.parse_datetime(raw, tz)
                except InputError as exc:
                    raise InputError(f"{name}: {exc}".replace(f"{name}: datetime: ", f"{name}: ")) from None
                if lo is None or hi is None:
                    raise InputError(f"{name}: give an instant or a date, not an interval (use datetime= or filter=)")
                f.binds.update({f"{key}a": lo, f"{key}b": hi})
                alternatives.append(f"{expr} BETWEEN :{key}a AND :{key}b")
            else:
                f.binds[key] = _typed(name, raw, kind)
                alternatives.append(f"{expr} = :{key}")
        target.append(" OR ".join(alternatives))
    if cql is not None:
        if len(cql) > 20_000:
            raise InputError("filter: longer than 20,000 characters")
        cond, binds = to_sql(cql, queryables)
        f.outer.append(cond)
        f.binds.update(binds)
    return f


def _typed(name: str, raw: str, kind: str):
    if "\x00" in raw:
        raise InputError(f"{name}: NUL characters are not allowed")
    try:
        if kind == "integer":
            v = int(raw)
            if abs(v) > 2**63 - 1:
                raise ValueError
            return v
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            return {"true": True, "false": False}[raw.lower()]
    except (ValueError, KeyError):
        raise InputError(f"{name}: {raw!r} is not {'an' if kind[0] in 'ai' else 'a'} {kind}") from None
    return raw


def source(conn: Connection, view: View, filters: Filters, plan: int | None = None, run: int | None = None,
           extra: tuple[str, dict] | None = None) -> tuple[str, dict]:
    """A SELECT yielding ``_id``, ``_ord`` (the paging key), ``geom`` and the view's properties."""
    coll = view.coll
    scope, binds = scope_filter(conn, coll, plan, run)
    conds = [scope, *filters.inner] + ([extra[0]] if extra else [])
    binds = {**binds, **filters.binds, **(extra[1] if extra else {})}
    where = " AND ".join(f"({c})" for c in conds)
    if view.agg is None:
        cols = ", ".join(f'"{p}"' for p in coll.properties)
        order = coll.order_expr or f'({coll.id_expr}) COLLATE "C"'
        return f"SELECT {coll.id_expr} AS _id, {order} AS _ord, geom, {cols} FROM {coll.table} WHERE {where}", binds
    # counts per cell in SQL; the cells' polygons come from h3 (no h3 extension in the database) and go
    # back in as an array so that bbox and spatial filters run on the cells, not on the hidden points
    rows = _execute(conn, f"SELECT {view.agg.cell_column} AS cell, count(*) AS n FROM {coll.table} "
                          f"WHERE {where} GROUP BY 1 HAVING count(*) >= :_min", {**binds, "_min": view.agg.min_count})
    cells = [int(r.cell) for r in rows]
    wkbs = [bytes(w) for w in shapely.to_wkb(cells_to_polygons(cells).values)] if cells else []
    sql = ("SELECT lower(to_hex(a.cell)) AS _id, lower(to_hex(a.cell)) COLLATE \"C\" AS _ord, "
           "ST_GeomFromWKB(a.wkb, 4326) AS geom, "
           "lower(to_hex(a.cell)) AS cell, a.count FROM unnest(CAST(:_cells AS bigint[]), "
           "CAST(:_counts AS integer[]), CAST(:_wkbs AS bytea[])) AS a(cell, count, wkb)")
    return sql, {"_cells": cells, "_counts": [int(r.n) for r in rows], "_wkbs": wkbs}


def feature_sql(view: View) -> str:
    """SQL of one GeoJSON Feature (text) of the row ``t``."""
    props = ", ".join(f"'{p}', t.\"{p}\"" for p in view.properties)
    return ("json_build_object('type', 'Feature', 'id', t._id, 'geometry', ST_AsGeoJSON(t.geom, 9)::json, "
            f"'properties', json_build_object({props}))::text")


def page(conn: Connection, view: View, src: tuple[str, dict], filters: Filters, limit: int,
         offset: int) -> tuple[int, list[str]]:
    """(number matched, features of the page as GeoJSON text), in the collection's paging order."""
    sql, binds = src
    binds = {**binds, **filters.binds}
    where = " AND ".join(f"({c})" for c in filters.outer) or "TRUE"
    matched = _execute(conn, f"SELECT count(*) FROM ({sql}) AS t WHERE {where}", binds)[0][0]
    rows = _execute(conn, f"SELECT {feature_sql(view)} FROM ({sql}) AS t WHERE {where} "
                          "ORDER BY t._ord LIMIT :_limit OFFSET :_offset",
                    {**binds, "_limit": limit, "_offset": offset})
    return int(matched), [r[0] for r in rows]


def one(conn: Connection, view: View, src: tuple[str, dict], feature_id: str) -> str | None:
    """The feature ``feature_id`` as GeoJSON text, or None."""
    sql, binds = src
    rows = _execute(conn, f"SELECT {feature_sql(view)} FROM ({sql}) AS t WHERE t._id = :_fid",
                    {**binds, "_fid": feature_id})
    return rows[0][0] if rows else None


def extent(conn: Connection, view: View, src: tuple[str, dict]) -> tuple[list[float] | None, list[str] | None]:
    """(spatial bbox, temporal interval) of the rows served by default."""
    sql, binds = src
    box = _execute(conn, f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                         f"(SELECT ST_Extent(t.geom) AS e FROM ({sql}) AS t) s", binds)[0]
    spatial = None if box[0] is None else [round(float(x), 7) for x in box]
    temporal = None
    col = view.coll.datetime_column
    if col:
        scope, sbinds = scope_filter(conn, view.coll)
        lo, hi = _execute(conn, f"SELECT min({col}), max({col}) FROM {view.coll.table} WHERE {scope}", sbinds)[0]
        if lo is not None:
            temporal = [_rfc3339(lo), _rfc3339(hi)]
    return spatial, temporal


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _execute(conn: Connection, sql: str, binds: dict) -> list:
    try:
        return conn.execute(text(sql), binds).all()
    except DataError as exc:
        # a value PostgreSQL refuses (out of range, NUL byte): the request's fault, not the server's
        conn.rollback()
        raise InputError(f"a parameter value was refused by the database: {exc.orig}".splitlines()[0]) from None
