"""Grid geometries and attributes as planners send them (GeoJSON drawn on a web map), checked.

Every rejection is an :class:`~geogrid.errors.InputError` naming the member and the reason, so the API
answers 400 with a message a planner can act on. Accepted:

* a GeoJSON ``Polygon`` or ``MultiPolygon`` geometry, or a ``Feature`` holding one (``geometry`` may be
  ``null`` in a Feature that only changes properties);
* coordinates in WGS-84 lon/lat unless a ``crs`` member names another system (the GeoJSON 2008 form
  ``{"type": "name", "properties": {"name": "EPSG:4490"}}`` or a plain string; ``gcj02``/``bd09`` for
  geometries drawn on AMap/Baidu are converted with :func:`geogrid.crs.geoms_to_wgs84`);
* rings closed (first position = last), at least four positions each, a valid polygon (OGC rules,
  :func:`shapely.is_valid_reason` names the fault and where it is).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon

from geogrid.crs import geoms_to_wgs84, parse_crs
from geogrid.errors import InputError
from geogrid.ingest.grids import KEY_AREA_WORDS, KIND_WORDS

EDITABLE = ("name", "kind", "population", "key_areas", "post_code")
# properties a client may send back unchanged from a GET (they are set by the server, never edited)
READ_ONLY = frozenset({"code", "version", "updated_at", "district", "attrs", "id", "plan_id", "plan"})
CODE_RE = re.compile(r"^[\w.\-]{1,64}$")


def check_code(code: Any, what: str = "code") -> str:
    """A grid code: 1–64 letters, digits, ``_``, ``-`` or ``.``."""
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise InputError(f"{what} must be 1-64 letters, digits, '_', '-' or '.', got {code!r}")
    return code


def check_text(value: Any, what: str, max_len: int) -> str:
    """A string PostgreSQL can store (no NUL) of at most ``max_len`` characters."""
    if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
        raise InputError(f"{what} must be text of at most {max_len} characters without NUL")
    return value


def split_feature(body: Any) -> tuple[Mapping | None, dict]:
    """(geometry member or None, properties) of a GeoJSON geometry or Feature body."""
    if not isinstance(body, Mapping):
        raise InputError("body must be a GeoJSON object (a Polygon/MultiPolygon geometry or a Feature)")
    kind = body.get("type")
    if kind == "Feature":
        props = body.get("properties") or {}
        if not isinstance(props, Mapping):
            raise InputError("Feature.properties must be an object or null")
        geom = body.get("geometry")
        if geom is not None and not isinstance(geom, Mapping):
            raise InputError("Feature.geometry must be a GeoJSON geometry object or null")
        if geom is not None and "crs" in body and "crs" not in geom:
            geom = dict(geom, crs=body["crs"])
        return geom, dict(props)
    if kind in ("Polygon", "MultiPolygon"):
        return body, {}
    if kind is None:
        raise InputError("body has no 'type'; send a GeoJSON Polygon, MultiPolygon or Feature")
    raise InputError(f"GeoJSON type {kind!r} is not accepted here; send a Polygon, MultiPolygon or a Feature")


def polygon_from_geojson(obj: Mapping, crs: str | None = None) -> MultiPolygon:
    """A valid MultiPolygon in WGS-84 from a GeoJSON Polygon/MultiPolygon object (checked)."""
    kind = obj.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise InputError(f"geometry type must be Polygon or MultiPolygon, got {kind!r}")
    coords = obj.get("coordinates")
    polys = [coords] if kind == "Polygon" else coords
    if not isinstance(polys, (list, tuple)) or not polys:
        raise InputError(f"{kind}.coordinates must be a non-empty array")
    shells = [_polygon(p, f"{kind}.coordinates" + ("" if kind == "Polygon" else f"[{i}]"))
              for i, p in enumerate(polys)]
    geom = MultiPolygon(shells)
    crs = crs if crs is not None else _crs_member(obj.get("crs"))
    if crs is not None:
        spec = parse_crs(crs)
        if not spec.is_wgs84 and spec.name not in ("EPSG:4490",):
            geom = geoms_to_wgs84(geom, spec)
            if not all(math.isfinite(v) for v in geom.bounds):
                raise InputError(f"coordinates could not be converted from {spec.name} to WGS-84")
    _check_lonlat(geom)
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        raise InputError(f"invalid geometry: {reason} (fix the outline; rings must not cross or touch themselves)")
    if geom.area == 0:
        raise InputError("geometry has no area")
    return geom


def line_from_geojson(obj: Any, what: str = "line") -> shapely.LineString:
    """A LineString in WGS-84 from a GeoJSON LineString object (or a Feature holding one)."""
    if isinstance(obj, Mapping) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if not isinstance(obj, Mapping) or obj.get("type") != "LineString":
        raise InputError(f"{what} must be a GeoJSON LineString")
    pts = _positions(obj.get("coordinates"), f"{what}.coordinates")
    if len(pts) < 2:
        raise InputError(f"{what} needs at least two positions")
    line = shapely.LineString(pts)
    crs = _crs_member(obj.get("crs"))
    if crs is not None and not parse_crs(crs).is_wgs84:
        line = geoms_to_wgs84(line, crs)
    _check_lonlat(line)
    if line.length == 0:
        raise InputError(f"{what} has zero length")
    return line


def grid_properties(props: Mapping, current: Mapping | None = None) -> dict:
    """The editable properties in ``props``, normalised; unknown members are refused by name.

    ``current`` (the stored grid) lets a client send back read-only members unchanged, as a GET gave them.
    """
    unknown = sorted(set(props) - set(EDITABLE) - READ_ONLY)
    if unknown:
        raise InputError(f"unknown properties {unknown}; editable are {list(EDITABLE)}")
    if current is not None and "code" in props and props["code"] != current.get("code"):
        raise InputError(f"properties.code {props['code']!r} differs from the grid's code "
                         f"{current.get('code')!r}; codes change only by split, merge or create")
    out: dict = {}
    if "name" in props:
        name = props["name"]
        if name is None:
            name = ""
        out["name"] = check_text(name, "properties.name", 200)
    if "kind" in props:
        kind = KIND_WORDS.get(str(props["kind"]).strip().casefold()) if props["kind"] is not None else None
        if kind is None:
            raise InputError(f"properties.kind must be 'urban' or 'rural', got {props['kind']!r}")
        out["kind"] = kind
    if "population" in props:
        pop = props["population"]
        if pop is not None and (isinstance(pop, bool) or not isinstance(pop, (int, float)) or pop < 0
                                or not math.isfinite(pop) or int(pop) != pop):
            raise InputError(f"properties.population must be a whole number >= 0 or null, got {pop!r}")
        out["population"] = None if pop is None else int(pop)
    if "key_areas" in props:
        ka = props["key_areas"]
        if ka is None:
            ka = []
        if isinstance(ka, str):
            ka = [p for p in re.split(r"[,;，；、]", ka) if p.strip()]
        if not isinstance(ka, list) or not all(isinstance(x, str) for x in ka):
            raise InputError("properties.key_areas must be a list of strings")
        bad = [x for x in ka if x.strip().casefold() not in KEY_AREA_WORDS]
        if bad:
            raise InputError(f"properties.key_areas has unknown values {bad}; "
                             f"known: {sorted(set(KEY_AREA_WORDS.values()))} (or 老旧小区, 商业街区, 城中村)")
        out["key_areas"] = sorted({KEY_AREA_WORDS[x.strip().casefold()] for x in ka})
    if "post_code" in props:
        pc = props["post_code"]
        if pc is not None and (not isinstance(pc, str) or not pc or len(pc) > 64 or "\x00" in pc):
            raise InputError("properties.post_code must be a post code (string) or null")
        out["post_code"] = pc
    return out


# --- private steps -------------------------------------------------------------------------------

def _crs_member(crs: Any) -> str | None:
    if crs is None:
        return None
    if isinstance(crs, str):
        return crs
    if isinstance(crs, Mapping) and isinstance(crs.get("properties"), Mapping):
        name = crs["properties"].get("name")
        if isinstance(name, str):
            if name.upper().endswith("CRS84"):  # urn:ogc:def:crs:OGC:1.3:CRS84 is lon/lat WGS-84
                return "EPSG:4326"
            m = re.match(r"urn:ogc:def:crs:EPSG::?(\d+)$", name, re.I)
            return f"EPSG:{m.group(1)}" if m else name
    raise InputError("crs must be a name such as 'EPSG:4326' or {'type': 'name', 'properties': {'name': ...}}")


def _positions(seq: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(seq, (list, tuple)):
        raise InputError(f"{where} must be an array of positions")
    out = []
    for i, p in enumerate(seq):
        if (not isinstance(p, (list, tuple)) or len(p) < 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p[:2])
                or not all(math.isfinite(v) for v in p[:2])):
            raise InputError(f"{where}[{i}] must be a position [lon, lat] of finite numbers, got {p!r}")
        out.append((float(p[0]), float(p[1])))
    return out


def _polygon(rings: Any, where: str) -> Polygon:
    if not isinstance(rings, (list, tuple)) or not rings:
        raise InputError(f"{where} must be a non-empty array of linear rings")
    parsed = []
    for k, ring in enumerate(rings):
        pts = _positions(ring, f"{where}[{k}]")
        if len(pts) < 4:
            raise InputError(f"{where}[{k}] is a ring of {len(pts)} positions; a ring needs at least 4")
        if pts[0] != pts[-1]:
            raise InputError(f"{where}[{k}] is not closed: its first and last positions differ")
        parsed.append(pts)
    return Polygon(parsed[0], parsed[1:])


def _check_lonlat(geom) -> None:
    x0, y0, x1, y1 = geom.bounds
    if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        raise InputError(f"coordinates ({x0:.6g}, {y0:.6g}) … ({x1:.6g}, {y1:.6g}) are not longitude/latitude: "
                         "send WGS-84 (EPSG:4326) or name the system in a 'crs' member")
