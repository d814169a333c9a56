"""Checks of a plan's grids before it goes live: overlaps, gaps, invalid, sliver and multi-part grids.

Pure: grids in, problems out (no SQL). Every problem names its ``kind``, the grid ``codes`` involved,
a ``location`` (a GeoJSON Point a map can put a marker on) and, where the problem is an area, its
``geometry`` (GeoJSON, WGS-84) and ``area_m2``.

Overlaps and gaps are computed in the grids' own lon/lat coordinates (so edges that are straight and
shared there stay shared: reprojecting first bends long edges by a few metres and invents slivers);
areas and lengths are then measured in metres in the local UTM zone. Thresholds (parameters of
:func:`plan_problems`):

* **overlap**: two grids share an area of at least ``min_area_m2`` (1 m²) and at least
  ``hairline_m`` (5 cm) wide by ``2A/P``; smaller shared areas are digitising noise, not a double
  assignment — so is a hairline where two files draw one border with vertices a millimetre apart
  (1 mm along a kilometre of border is a square metre).
* **gap**: a piece of the jurisdiction of at least ``min_area_m2`` and ``hairline_m`` wide that no grid covers. The
  jurisdiction is the union of the active plan's grids (when checking another plan), else the plan's own
  outer boundary (the union of its grids with holes filled), so a hole inside the city is a gap.
* **sliver**: a grid thinner than ``sliver_width_m`` (10 m) by the width ``2A/P`` (for a long strip of
  width w, ``2A/P → w``; a square of side s gives s/2), or smaller than ``sliver_area_m2`` (500 m²).
  A real community or village grid is hundreds of metres across; such shapes are leftovers of an edit.
* **invalid**: not a valid polygon by OGC rules (self-intersection, ring crossing…), with the place
  GEOS reports.
* **multipart**: a grid of more than one polygon (an officer could not walk it without leaving it).
"""
from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import mapping

from geogrid.compactness import to_metres

KINDS = ("invalid", "multipart", "sliver", "overlap", "gap")
_WHERE = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\]")


def plan_problems(grids: gpd.GeoDataFrame, jurisdiction=None, min_area_m2: float = 1.0,
                  sliver_width_m: float = 10.0, sliver_area_m2: float = 500.0, hairline_m: float = 0.05) -> list[dict]:
    """Problems of ``grids`` (columns ``code`` and geometry, WGS-84) as a list of dicts, invalid first.

    ``jurisdiction`` (a shapely geometry in WGS-84, e.g. the union of the active plan's grids) adds the
    area gaps are searched in; the plan's own outer boundary is always included.
    """
    if len(grids) == 0:
        return []
    codes = grids["code"].astype(str).to_numpy()
    geoms = np.asarray(grids.geometry.values, dtype=object)
    m2 = _metric(to_metres(grids.iloc[:1]).crs)  # one local UTM zone for the whole city
    problems: list[dict] = []
    valid = shapely.is_valid(geoms)
    for i in np.flatnonzero(~valid):
        reason = shapely.is_valid_reason(geoms[i])
        m = _WHERE.search(reason)
        point = shapely.Point(float(m.group(1)), float(m.group(2))) if m else shapely.point_on_surface(
            shapely.make_valid(geoms[i]))
        problems.append(_problem("invalid", [codes[i]], f"grid {codes[i]} is not a valid polygon: {reason}", point))
    fixed = geoms.copy()
    fixed[~valid] = shapely.make_valid(geoms[~valid])  # the other checks run on repaired shapes
    fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
    for i, g in enumerate(fixed):
        parts = shapely.get_parts(g)
        if len(parts) > 1:
            order = np.argsort(-shapely.area(parts))
            extra = shapely.MultiPolygon(list(parts[order[1:]]))
            problems.append(_problem(
                "multipart", [codes[i]], f"grid {codes[i]} has {len(parts)} separate parts; "
                f"the {len(parts) - 1} smaller one(s) should join a neighbour or become own grids",
                shapely.point_on_surface(extra), extra, shapely.area(m2(extra))))
    metric = m2(fixed)
    area, perim = shapely.area(metric), shapely.length(metric)
    width = np.divide(2 * area, perim, out=np.zeros_like(area), where=perim > 0)
    for i in np.flatnonzero((width < sliver_width_m) | (area < sliver_area_m2)):
        problems.append(_problem(
            "sliver", [codes[i]], f"grid {codes[i]} is a sliver: {area[i]:.0f} m², width 2A/P {width[i]:.1f} m "
            f"(thresholds {sliver_area_m2:g} m², {sliver_width_m:g} m)",
            shapely.point_on_surface(fixed[i]), fixed[i], area[i]))
    problems += _overlaps(fixed, codes, min_area_m2, hairline_m, m2)
    problems += _gaps(fixed, codes, jurisdiction, min_area_m2, hairline_m, m2)
    return problems


# --- private steps -------------------------------------------------------------------------------

def _noise(piece_m, min_area_m2: float, hairline_m: float) -> tuple[bool, float]:
    """(too small or too thin to be a planning problem, its area in m²) of a piece measured in metres."""
    area, perim = shapely.area(piece_m), shapely.length(piece_m)
    return area < min_area_m2 or (perim > 0 and 2 * area / perim < hairline_m), area


def _overlaps(geoms, codes, min_area_m2, hairline_m, m2) -> list[dict]:
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    out = []
    for a, b in zip(left[keep].tolist(), right[keep].tolist()):
        shared = _polygonal(shapely.intersection(geoms[a], geoms[b]))
        if shared.is_empty:
            continue
        noise, area = _noise(m2(shared), min_area_m2, hairline_m)
        if noise:
            continue
        pair = sorted([codes[a], codes[b]])
        out.append(_problem("overlap", pair, f"grids {pair[0]} and {pair[1]} overlap by {area:.0f} m²",
                            shapely.point_on_surface(shared), shared, area))
    return out


def _gaps(geoms, codes, jurisdiction, min_area_m2, hairline_m, m2) -> list[dict]:
    covered = shapely.union_all(geoms)
    outer = shapely.union_all([shapely.Polygon(p.exterior) for p in shapely.get_parts(covered)])
    area = outer
    if jurisdiction is not None and not jurisdiction.is_empty:
        area = shapely.union(outer, jurisdiction)
    holes = _polygonal(shapely.difference(area, covered))
    tree = shapely.STRtree(geoms)
    out = []
    for piece in shapely.get_parts(holes):
        noise, area = _noise(m2(piece), min_area_m2, hairline_m)
        if noise:
            continue
        near = sorted(codes[i] for i in tree.query(piece, predicate="dwithin", distance=1e-6).tolist())
        out.append(_problem("gap", near, f"{area:.0f} m² inside the jurisdiction belong to no grid"
                            + (f" (next to {', '.join(near)})" if near else ""),
                            shapely.point_on_surface(piece), piece, area))
    return out


def _polygonal(g):
    """The polygonal part of ``g`` (intersections and make_valid can add lines and points)."""
    if g is None or g.is_empty:
        return shapely.MultiPolygon()
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.MultiPolygon()


def _metric(crs):
    """Geometries (lon/lat) → the same in metres of ``crs``, for measuring only."""
    from pyproj import Transformer

    t = Transformer.from_crs(4326, crs, always_xy=True)

    def m2(g):
        return shapely.transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))

    return m2


def _problem(kind, codes, message, location, geometry=None, area_m2=None) -> dict:
    out = {"kind": kind, "codes": list(codes), "message": message, "location": mapping(location)}
    if geometry is not None:
        out["geometry"] = mapping(geometry)
    if area_m2 is not None:
        out["area_m2"] = round(float(area_m2), 2)
    return out
