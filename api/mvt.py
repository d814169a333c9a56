"""Mapbox vector tiles of a collection, encoded by PostGIS (``ST_AsMVT``).

Two kinds of tile:

* **features**: the rows of a collection (its scope: a plan, a run, or the whole table) whose
  geometry meets the tile, with the collection's whitelisted properties;
* **cells** (incidents only): counts of incidents per H3 cell, for roles that may not see raw
  incidents (cells with fewer than :data:`SUPPRESS_BELOW` incidents are left out) and, at low
  zoom, for everyone (raw points would make tiles of megabytes). At low zoom cells are H3 parents
  whose counts are sums of the *published* base cells, so coarse tiles reveal nothing the base
  cells do not (no differencing between zooms). Cell polygons come from h3 in Python: PostGIS here
  has no h3 extension.

ST_AsMVT skips rows whose ST_AsMVTGeom is NULL (outside the tile); filtering them with a WHERE
made PostgreSQL compute ST_AsMVTGeom twice per row (a third slower on a dense z14 tile).

Every identifier in the SQL below comes from the collection registry (``api.collections``) or the
SQLAlchemy models; request values travel as bind parameters only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import h3
import morecantile
from sqlalchemy import ARRAY, Boolean, Connection, DateTime, Float, Integer, Numeric, text
from sqlalchemy.dialects.postgresql import JSONB

from api.collections import Collection, inline_scope
from geogrid.errors import InputError
from geogrid.store.models import Base

MVT_TYPE = "application/vnd.mapbox-vector-tile"
EXTENT = 4096  # tile units per side (the MVT default)
BUFFER = 64  # units drawn beyond the tile edge, so strokes and symbols do not break at the seams
MAX_ZOOM = 24
RAW_MIN_ZOOM = 13  # below, everyone gets cells: raw points make tiles of megabytes (z12 of the demo city: 6 MB; FIELD-NOTES: aggregate below ~z13)
SUPPRESS_BELOW = 5  # cells with fewer incidents are not shown to roles without raw access
TMS = morecantile.tms.get("WebMercatorQuad")

# collection id → extra filters it accepts (parameter → column); datetime comes from the registry
CATEGORY_FILTER = {"incidents": "category"}
FORECAST_FILTER = frozenset({"forecasts", "forecast-grids"})


@dataclass(frozen=True)
class TileAddress:
    """A checked tile of WebMercatorQuad."""

    z: int
    x: int
    y: int

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees.

        The closed-form WebMercatorQuad inverse, not ``TMS.bounds``: morecantile hashes its CRS on
        every call (~0.2 ms, measured), which is a visible share of a cached tile's time; a test pins
        this to morecantile's answer."""
        n = 1 << self.z

        def lat(row: int) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

        return (self.x / n * 360.0 - 180.0, lat(self.y + 1), (self.x + 1) / n * 360.0 - 180.0, lat(self.y))


def tile_address(z: int, x: int, y: int) -> TileAddress:
    """Check ``z/x/y`` against WebMercatorQuad (0 ≤ z ≤ 24, 0 ≤ x, y < 2^z)."""
    if not 0 <= z <= MAX_ZOOM:
        raise InputError(f"z: tile zoom must be from 0 to {MAX_ZOOM}, got {z}")
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise InputError(f"{name}: at zoom {z} the tile {name} must be from 0 to {n - 1}, got {v}")
    return TileAddress(z, x, y)


@dataclass(frozen=True)
class TileFilters:
    """The request's row filters, normalised (hashable: part of the cache key and ETag)."""

    plan: int | None = None
    run: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    categories: tuple[str, ...] = ()
    horizon_days: int | None = None
    method: str | None = None

    def key(self) -> tuple:
        return (self.plan, self.run, self.start and self.start.isoformat(), self.end and self.end.isoformat(),
                self.categories, self.horizon_days, self.method)


def tile_filters(coll: Collection, *, plan: int | None = None, run: int | None = None,
                 datetime_: str | None = None, category: str | None = None, horizon_days: int | None = None,
                 method: str | None = None, tz: str = "UTC") -> TileFilters:
    """Check the filter parameters a tile request may carry for ``coll``; names the bad parameter."""
    if coll.scope != "plan" and plan is not None:
        raise InputError(f"plan: collection {coll.id!r} is not drawn from a plan")
    if coll.scope != "run" and run is not None:
        raise InputError(f"run: collection {coll.id!r} is not the result of an analysis run")
    start = end = None
    if datetime_ is not None:
        if coll.datetime_column is None:
            raise InputError(f"datetime: collection {coll.id!r} has no time to filter on")
        start, end = parse_datetime(datetime_, tz)
    cats: tuple[str, ...] = ()
    if category is not None:
        if coll.id not in CATEGORY_FILTER:
            raise InputError(f"category: collection {coll.id!r} has no category to filter on")
        cats = tuple(sorted({c.strip() for c in category.split(",") if c.strip()}))
        if not cats or len(cats) > 50 or any(len(c) > 64 for c in cats):
            raise InputError("category: give 1 to 50 comma-separated category codes of at most 64 characters")
    if (horizon_days is not None or method is not None) and coll.id not in FORECAST_FILTER:
        bad = "horizon_days" if horizon_days is not None else "method"
        raise InputError(f"{bad}: only the forecast collections take {bad}")
    return TileFilters(plan, run, start, end, cats, horizon_days, method)


def parse_datetime(value: str, tz: str = "UTC") -> tuple[datetime | None, datetime | None]:
    """OGC ``datetime``: an instant, a date (that whole day) or an interval ``a/b`` with ``..`` open ends.

    Times without an offset are read in ``tz`` (the service's local time zone). Shared by tiles and
    features, so a map's time window selects the same rows in both.
    """
    if "\x00" in value:
        raise InputError("datetime: NUL characters are not allowed")

    def one(s: str, end: bool) -> datetime | None:
        s = s.strip()
        if s in ("", ".."):
            return None
        try:
            if len(s) == 10:
                d = date.fromisoformat(s)
                t = datetime.combine(d + timedelta(days=1) if end else d, time.min, ZoneInfo(tz))
                return t - timedelta(microseconds=1) if end else t
            t = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except (ValueError, OverflowError):  # 9999-12-31 + 1 day overflows
            raise InputError(f"datetime: {s!r} is not an RFC 3339 date or date-time") from None
        return t if t.tzinfo else t.replace(tzinfo=ZoneInfo(tz))

    if "/" in value:
        a, sep, b = value.partition("/")
        if "/" in b:
            raise InputError(f"datetime: {value!r} has more than one '/'")
        start, end = one(a, False), one(b, True)
        if start and end and end < start:
            raise InputError(f"datetime: the interval {value!r} ends before it starts")
        return start, end
    if value.strip() == "..":
        raise InputError("datetime: '..' alone is not an instant; use an interval such as '2025-01-01/..'")
    return one(value, False), one(value, True)


def filter_sql(coll: Collection, f: TileFilters) -> tuple[list[str], dict]:
    """Conditions (on alias ``t``) and binds of the request's filters."""
    conds, binds = [], {}
    if f.start is not None:
        conds.append(f"t.{coll.datetime_column} >= :_t0")
        binds["_t0"] = f.start
    if f.end is not None:
        conds.append(f"t.{coll.datetime_column} <= :_t1")
        binds["_t1"] = f.end
    if f.categories:
        conds.append(f"t.{CATEGORY_FILTER[coll.id]} = ANY(:_cats)")
        binds["_cats"] = list(f.categories)
    if f.horizon_days is not None:
        conds.append("t.horizon_days = :_hd")
        binds["_hd"] = f.horizon_days
    if f.method is not None:
        conds.append("t.method = :_method")
        binds["_method"] = f.method
    return conds, binds


def _column_type(coll: Collection, name: str):
    return Base.metadata.tables[coll.table].c[name].type


def property_sql(coll: Collection, name: str) -> str:
    """SQL of one whitelisted property as an MVT value (arrays and JSON as text, times as Unix seconds)."""
    col = f't."{name}"'
    kind = _column_type(coll, name)
    if isinstance(kind, ARRAY):
        return f"array_to_string({col}, ',')"
    if isinstance(kind, JSONB):
        return f"{col}::text"  # ST_AsMVT would spread a jsonb's keys into separate properties
    if isinstance(kind, DateTime):
        # Unix seconds: a number compares in a style's filter expressions, and ST_AsMVT stores it in a
        # few bytes where a unique RFC 3339 string per feature cost 3 ms of a 6,000-point tile's 17 ms
        return f"CAST(floor(extract(epoch FROM {col})) AS bigint)"  # whole seconds, not rounded up
    return col


def field_types(coll: Collection) -> dict[str, str]:
    """Property → TileJSON field description (``Number``, ``Boolean`` or ``String``)."""
    out = {}
    for name in coll.properties:
        kind = _column_type(coll, name)
        if isinstance(kind, Boolean):
            out[name] = "Boolean"
        elif isinstance(kind, (Integer, Float, Numeric, DateTime)) and not isinstance(kind, ARRAY):
            out[name] = "Number"
        else:
            out[name] = "String"
    return out


CELL_FIELDS = {"cell": "String", "count": "Number", "resolution": "Number"}


def _lat_scale(addr: TileAddress) -> float:
    """cos of the tile's latitude furthest from the equator (mercator metres per true metre, inverted)."""
    _, south, _, north = addr.bounds()
    return max(math.cos(math.radians(max(abs(south), abs(north)))), 0.05)


def features_query(conn: Connection, coll: Collection, addr: TileAddress, f: TileFilters) -> tuple[str, dict]:
    """SQL (and binds) of the features tile of ``coll``; run with the same connection for the same scope."""
    scope, binds = inline_scope(conn, coll, plan=f.plan, run=f.run)
    conds, fb = filter_sql(coll, f)
    binds.update(fb)
    props = ", ".join(f'{property_sql(coll, p)} AS "{p}"' for p in coll.properties)
    geom = "t.geom"
    if coll.geometry_type != "Point":
        # drop vertices closer than half a tile unit before projecting: invisible in the tile, and
        # ST_Transform and ST_AsMVTGeom then see fewer of them (degrees of latitude are the tighter side)
        geom = "ST_Simplify(t.geom, :_tol, true)"
        binds["_tol"] = 0.5 * 360.0 * _lat_scale(addr) / (EXTENT * (1 << addr.z))
    where = " AND ".join([f"({scope})", *conds])
    sql = f"""
        WITH b AS (SELECT ST_TileEnvelope(:_z, :_x, :_y) AS tile,
                          ST_Transform(ST_TileEnvelope(:_z, :_x, :_y, margin => :_margin), 4326) AS box),
        f AS (
          SELECT ST_AsMVTGeom(ST_Transform({geom}, 3857), b.tile, :_extent, :_buffer, true) AS geom, {props}
            FROM {coll.table} t, b
           WHERE t.geom && b.box AND {where}
        )
        SELECT ST_AsMVT(f.*, :_layer, :_extent, 'geom') FROM f"""
    binds.update(_z=addr.z, _x=addr.x, _y=addr.y, _margin=BUFFER / EXTENT, _extent=EXTENT, _buffer=BUFFER,
                 _layer=coll.id)
    return sql, binds


def cell_resolution(z: int, base_res: int) -> int:
    """H3 resolution of the cells drawn at zoom ``z``: the stored one from z12, one coarser per two zooms
    below (keeps a cell about 10 px or more across on a 256 px tile)."""
    return max(0, min(base_res, base_res - math.ceil((12 - z) / 2)))


def _parent_masks(res: int) -> tuple[int, int]:
    """(clear, set) masks turning an H3 index of a finer resolution into its parent at ``res``.

    H3 index bits: resolution in bits 52–55, then 15 three-bit digits, unused digits all 1 (7).
    """
    low = (1 << (3 * (15 - res))) - 1
    clear = ~((0xF << 52) | low)
    return clear, (res << 52) | low


def cell_counts_query(conn: Connection, coll: Collection, addr: TileAddress, f: TileFilters, res: int,
                      base_res: int, min_count: int) -> tuple[str, dict]:
    """SQL of (cell at ``res``, count) for the cells that may show in the tile.

    Base cells with fewer than ``min_count`` incidents are dropped before summing to parents. The
    box is widened by two parent and two base cells so that every cell meeting the tile is counted
    whole (a cell cut by the tile edge must not show a partial, or a wrongly suppressed, count).
    """
    scope, binds = inline_scope(conn, coll, plan=f.plan, run=f.run)
    conds, fb = filter_sql(coll, f)
    binds.update(fb)
    edge = h3.average_hexagon_edge_length(res, unit="m") + h3.average_hexagon_edge_length(base_res, unit="m")
    tile_m = 2 * 20037508.342789244 / (1 << addr.z)
    margin = 3.0 * edge / _lat_scale(addr) + tile_m * BUFFER / EXTENT  # 1.5 × (2 edges), in mercator metres
    clear, set_ = _parent_masks(res)
    where = " AND ".join([f"({scope})", *conds])
    sql = f"""
        WITH b AS (SELECT ST_Transform(ST_Expand(ST_TileEnvelope(:_z, :_x, :_y), :_m), 4326) AS box),
        base AS (
          SELECT t.h3, count(*) AS n FROM {coll.table} t, b
           WHERE t.geom && b.box AND {where}
           GROUP BY t.h3 HAVING count(*) >= :_k
        )
        SELECT (h3 & :_clear) | :_set AS cell, sum(n)::bigint AS n FROM base GROUP BY 1"""
    binds.update(_z=addr.z, _x=addr.x, _y=addr.y, _m=margin, _k=min_count, _clear=clear, _set=set_)
    return sql, binds


CELLS_MVT_SQL = """
    SELECT ST_AsMVT(f.*, :_layer, :_extent, 'geom') FROM (
      SELECT ST_AsMVTGeom(ST_Transform(ST_GeomFromWKB(u.w, 4326), 3857), ST_TileEnvelope(:_z, :_x, :_y),
                          :_extent, :_buffer, true) AS geom,
             u.c AS cell, u.n AS "count", :_res AS resolution
        FROM unnest(CAST(:_cells AS text[]), CAST(:_counts AS bigint[]), CAST(:_wkbs AS bytea[])) AS u(c, n, w)
    ) f"""


def render_cells(conn: Connection, coll: Collection, addr: TileAddress, f: TileFilters, res: int,
                 base_res: int, min_count: int) -> bytes:
    """The cells tile: counts in SQL, cell polygons from h3, encoding by ``ST_AsMVT``."""
    from geogrid.cells import cell_to_str, cells_to_polygons

    sql, binds = cell_counts_query(conn, coll, addr, f, res, base_res, min_count)
    rows = conn.execute(text(sql), binds).all()
    if not rows:
        return b""
    cells = [int(r[0]) for r in rows]
    polys = cells_to_polygons(cells)
    return fetch_tile(conn, CELLS_MVT_SQL, {
        "_layer": coll.id, "_extent": EXTENT, "_buffer": BUFFER, "_z": addr.z, "_x": addr.x, "_y": addr.y,
        "_res": res, "_cells": [cell_to_str(c) for c in cells], "_counts": [int(r[1]) for r in rows],
        "_wkbs": [bytes(w) for w in polys.to_wkb()],
    })


def render_features(conn: Connection, coll: Collection, addr: TileAddress, f: TileFilters) -> bytes:
    """The features tile of ``coll`` (empty bytes when no feature meets it)."""
    sql, binds = features_query(conn, coll, addr, f)
    return fetch_tile(conn, sql, binds)


def fetch_tile(conn: Connection, sql: str, binds: dict) -> bytes:
    """Run a tile statement (one bytea) and return its bytes, fetched in binary.

    In text format the server hex-encodes the tile and the client decodes it: 1.5-2 ms of a 440 KB
    tile's 18 ms, 0.3 ms of a 30 KB one (bench/tiles.py). SQLAlchemy has no per-statement binary
    results, so the statement compiled by its dialect runs on psycopg's own cursor.
    """
    compiled = text(sql).bindparams(**binds).compile(dialect=conn.dialect)
    with conn.connection.driver_connection.cursor(binary=True) as cur:
        cur.execute(compiled.string, compiled.params)
        row = cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
