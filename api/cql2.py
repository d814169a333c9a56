"""CQL2 text filters → SQL with bind parameters, over a whitelist of queryable properties.

pygeofilter parses the text into its AST; the translation to SQL is ours because it must refuse
everything outside the whitelist and the supported subset with a 400 that names the problem, and
must never splice a request string into SQL: properties map to fixed column expressions, literals
become bind parameters cast to the property's type.

Supported: ``= <> < <= > >=``, ``AND OR NOT``, ``[NOT] LIKE`` (``%`` and ``_`` wildcards, ``\\``
escape), ``[NOT] IN``, ``[NOT] BETWEEN``, ``IS [NOT] NULL``, ``CASEI(...)``, and
``S_INTERSECTS / S_WITHIN / S_CONTAINS`` against WKT geometries or ``BBOX(minx, miny, maxx, maxy)``
in CRS84.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import shapely
import shapely.geometry
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_text import parse

from geogrid.errors import InputError

# property kind → SQL type literal values are cast to (so PostgreSQL never has to guess a bind's type)
SQL_TYPES = {"string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean",
             "datetime": "timestamptz"}
CRS84 = {"http://www.opengis.net/def/crs/OGC/1.3/CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84",
         "http://www.opengis.net/def/crs/EPSG/0/4326", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"}
INT64 = 2**63 - 1

_COMPARISONS = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
                ast.GreaterThan: ">", ast.GreaterEqual: ">="}
_SPATIAL = {ast.GeometryIntersects: "ST_Intersects", ast.GeometryWithin: "ST_Within",
            ast.GeometryContains: "ST_Contains"}
_ORDERED = {"integer", "number", "datetime", "string"}


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its SQL expression (from a whitelist) and its kind."""

    name: str
    sql: str
    kind: str  # string | integer | number | boolean | datetime | geometry


class _Translator:
    """Walks one AST; collects bind parameters named ``{prefix}{n}``."""

    def __init__(self, fields: dict[str, Queryable], prefix: str) -> None:
        self.fields, self.prefix, self.binds = fields, prefix, {}

    # -- operands --------------------------------------------------------------------------
    def bind(self, value, kind: str) -> str:
        """A new bind parameter holding ``value``, cast to ``kind`` (geometries travel as WKB)."""
        name = f"{self.prefix}{len(self.binds)}"
        self.binds[name] = value
        if kind == "geometry":
            return f"ST_GeomFromWKB(CAST(:{name} AS bytea), 4326)"
        return f"CAST(:{name} AS {SQL_TYPES[kind]})"

    def attribute(self, node: ast.Attribute) -> Queryable:
        field = self.fields.get(node.name)
        if field is None:
            raise InputError(f"filter: unknown property {node.name!r}; queryables: {', '.join(sorted(self.fields))}")
        return field

    def operand(self, node, want: str | None = None) -> tuple[str, str]:
        """(SQL, kind) of a scalar operand; ``want`` is the kind of the other side when known."""
        if isinstance(node, ast.Attribute):
            f = self.attribute(node)
            if f.kind == "geometry":
                raise InputError(f"filter: geometry property {f.name!r} can only be used in S_INTERSECTS, "
                                 "S_WITHIN or S_CONTAINS")
            return f.sql, f.kind
        if isinstance(node, ast.Function) and node.name == "lower":  # CASEI(x)
            if len(node.arguments) != 1:
                raise InputError("filter: CASEI takes exactly one argument")
            sql, kind = self.operand(node.arguments[0], "string")
            if kind != "string":
                raise InputError("filter: CASEI applies to text properties and strings only")
            return f"lower({sql})", "string"
        if isinstance(node, (ast.Node, values.Geometry, values.Envelope, values.Interval, list)):
            raise InputError(f"filter: unsupported expression {_describe(node)}")
        return self.literal(node, want)

    def literal(self, value, want: str | None) -> tuple[str, str]:
        kind = _literal_kind(value)
        if want is None:
            want = "datetime" if kind == "date" else kind
        if kind == "integer" and abs(value) > INT64:
            raise InputError(f"filter: integer {value} is out of range")
        if want == "number" and kind == "integer":
            kind = "number"
        if want == "integer" and kind == "number":
            return self.bind(float(value), "number"), "number"
        if want == "datetime" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value, kind = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc), "datetime"
        if want == "datetime" and isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)  # CQL2 timestamps without a zone are UTC
        if not _compatible(kind, want):
            raise InputError(f"filter: {_show(value)} is {_a(kind)} but is compared with {_a(want)} property")
        return self.bind(value, want), want

    def pair(self, lhs, rhs) -> tuple[str, str, str]:
        """Both sides of a comparison, typed against each other."""
        want = self._kind_of(lhs) or self._kind_of(rhs)
        left, lk = self.operand(lhs, want)
        right, rk = self.operand(rhs, lk)
        if not _compatible(rk, lk):
            raise InputError(f"filter: cannot compare {_a(lk)} with {_a(rk)}")
        return left, right, lk

    def typed(self, node, kind: str) -> str:
        """SQL of an operand that must be of ``kind`` (a literal is cast to it)."""
        sql, got = self.operand(node, kind)
        if not _compatible(got, kind):
            raise InputError(f"filter: cannot compare {_a(kind)} with {_a(got)}")
        return sql

    def _kind_of(self, node) -> str | None:
        if isinstance(node, ast.Attribute):
            return self.attribute(node).kind
        if isinstance(node, ast.Function) and node.name == "lower":
            return "string"
        return None

    def geometry(self, node) -> str:
        if isinstance(node, ast.Attribute):
            f = self.attribute(node)
            if f.kind != "geometry":
                raise InputError(f"filter: {f.name!r} is not a geometry property")
            return f.sql
        if isinstance(node, ast.Function) and node.name == "bbox":
            return self.bind(shapely.to_wkb(shapely.box(*_bbox_args(node.arguments))), "geometry")
        if isinstance(node, values.Geometry):
            return self.bind(shapely.to_wkb(_shape(node.geometry)), "geometry")
        if isinstance(node, values.Envelope):
            raise InputError("filter: ENVELOPE is not supported; use BBOX(minx, miny, maxx, maxy)")
        raise InputError(f"filter: expected a geometry property, a WKT geometry or BBOX(...), got {_describe(node)}")

    # -- predicates ------------------------------------------------------------------------
    def __call__(self, node) -> str:
        if isinstance(node, ast.And):
            return f"({self(node.lhs)} AND {self(node.rhs)})"
        if isinstance(node, ast.Or):
            return f"({self(node.lhs)} OR {self(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"(NOT {self(node.sub_node)})"
        op = _COMPARISONS.get(type(node))
        if op:
            left, right, kind = self.pair(node.lhs, node.rhs)
            if op not in ("=", "<>") and kind not in _ORDERED:
                raise InputError(f"filter: {op} does not apply to {kind} values")
            return f"({left} {op} {right})"
        if isinstance(node, ast.Like):
            left, kind = self.operand(node.lhs, "string")
            if kind != "string" or not isinstance(node.pattern, str):
                raise InputError("filter: LIKE compares a text property with a quoted pattern")
            # CQL2's wildcards (% and _) and escape (\) are SQL's: the pattern binds unchanged
            return f"({left} {'NOT ' if node.not_ else ''}LIKE {self.bind(node.pattern, 'string')} ESCAPE '\\')"
        if isinstance(node, ast.In):
            want = self._kind_of(node.lhs)
            left, kind = self.operand(node.lhs, want)
            items = [self.typed(x, kind) for x in node.sub_nodes]
            return f"({left} {'NOT ' if node.not_ else ''}IN ({', '.join(items)}))"
        if isinstance(node, ast.Between):
            want = self._kind_of(node.lhs)
            left, kind = self.operand(node.lhs, want)
            if kind not in ("integer", "number", "datetime"):
                raise InputError(f"filter: BETWEEN applies to numbers and timestamps, not {kind}")
            low, high = self.typed(node.low, kind), self.typed(node.high, kind)
            return f"({left} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high})"
        if isinstance(node, ast.IsNull):
            if isinstance(node.lhs, ast.Attribute) and self.attribute(node.lhs).kind == "geometry":
                sql = self.attribute(node.lhs).sql
            else:
                sql = self.operand(node.lhs)[0]
            return f"({sql} IS {'NOT ' if node.not_ else ''}NULL)"
        fn = _SPATIAL.get(type(node))
        if fn:
            return f"{fn}({self.geometry(node.lhs)}, {self.geometry(node.rhs)})"
        raise InputError(f"filter: {_describe(node)} is not supported; supported: comparisons, AND/OR/NOT, "
                         "LIKE, IN, BETWEEN, IS NULL, CASEI, S_INTERSECTS, S_WITHIN, S_CONTAINS")


def to_sql(text: str, fields: dict[str, Queryable], prefix: str = "_f") -> tuple[str, dict]:
    """Translate CQL2 text ``text`` into a SQL condition and its bind parameters.

    Raises ``InputError`` for a syntax error, an unknown property, a type mismatch or an
    unsupported operator, each named in the message.

    >>> to_sql("tier >= 2", {"tier": Queryable("tier", 't."tier"', "integer")})
    ('(t."tier" >= CAST(:_f0 AS bigint))', {'_f0': 2})
    """
    if not text or not text.strip():
        raise InputError("filter: empty expression")
    try:
        tree = parse(text)
    except Exception as exc:  # lark raises several unrelated classes; each is a bad expression
        raise InputError(f"filter: cannot parse CQL2 text: {_first_line(exc)}") from None
    if not isinstance(tree, ast.Node):
        raise InputError("filter: the expression is not a condition")
    tr = _Translator(fields, prefix)
    try:
        return tr(tree), tr.binds
    except RecursionError:
        raise InputError("filter: expression nested too deeply") from None


def _literal_kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dt.datetime, dt.date)):
        return "datetime" if isinstance(value, dt.datetime) else "date"
    raise InputError(f"filter: unsupported literal {_describe(value)}")


def _compatible(kind: str, want: str) -> bool:
    numeric = {"integer", "number"}
    return kind == want or (kind in numeric and want in numeric) or (kind == "date" and want == "datetime")


def _bbox_args(args: list) -> tuple[float, float, float, float]:
    if len(args) != 4 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise InputError("filter: BBOX takes four numbers (minx, miny, maxx, maxy); a 3-D box is not supported")
    minx, miny, maxx, maxy = map(float, args)
    check_bbox(minx, miny, maxx, maxy, "filter: BBOX")
    return minx, miny, maxx, maxy


def check_bbox(minx: float, miny: float, maxx: float, maxy: float, what: str) -> None:
    """Raise ``InputError`` (prefixed ``what``) unless the box is finite, in range and ordered."""
    if not all(map(_finite, (minx, miny, maxx, maxy))):
        raise InputError(f"{what}: coordinates must be finite numbers")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InputError(f"{what}: longitudes must lie in [-180, 180] and latitudes in [-90, 90]")
    if minx > maxx or miny > maxy:
        raise InputError(f"{what}: minx must not exceed maxx nor miny maxy (boxes across the antimeridian "
                         "are not supported)")


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def _shape(geojson: dict):
    crs = (geojson.get("crs") or {}).get("properties", {}).get("name")
    if crs is not None and crs not in CRS84:
        raise InputError(f"filter: geometry literals must be in CRS84 (lon/lat), not {crs}")
    try:
        geom = shapely.force_2d(shapely.geometry.shape({k: v for k, v in geojson.items() if k != "crs"}))
    except Exception as exc:  # shapely raises several classes for malformed coordinates
        raise InputError(f"filter: invalid geometry literal: {_first_line(exc)}") from None
    if geom.is_empty:
        raise InputError("filter: empty geometry literal")
    coords = shapely.get_coordinates(geom)
    if not (abs(coords[:, 0]) <= 180).all() or not (abs(coords[:, 1]) <= 90).all():
        raise InputError("filter: geometry literal outside lon [-180, 180] / lat [-90, 90]")
    if not geom.is_valid:
        raise InputError(f"filter: invalid geometry literal: {shapely.is_valid_reason(geom)}")
    return geom


def _first_line(exc: Exception) -> str:
    lines = [x for x in str(exc).splitlines() if x.strip()]
    return " ".join(lines[:3])[:300] or type(exc).__name__


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _show(value) -> str:
    return repr(value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value)


def _describe(node) -> str:
    if isinstance(node, ast.Function):
        return f"function {node.name.upper()}()"
    if isinstance(node, ast.Node):
        name = type(node).__name__
        op = getattr(node, "op", None)
        return f"{name} ({op.value})" if op is not None and hasattr(op, "value") else name
    return type(node).__name__
