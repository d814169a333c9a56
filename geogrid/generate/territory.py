"""The jurisdiction and its grids: an irregular city boundary tiled by Voronoi grids.

Geometry is built in a local metric frame centred on Hefei (an equirectangular projection, see
:class:`LocalFrame`). The frame is *affine* in longitude/latitude, so straight edges stay straight and
a point inside a polygon in metres is inside the same polygon in degrees: nothing drifts across a
boundary when the city is converted to WGS-84. Its scale error (< 0.3 % over the city) is harmless
for a demo.
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Polygon

from geogrid.generate.names import district_of

CENTRE_LON, CENTRE_LAT = 117.27, 31.86
URBAN_SHARE = 0.6  # share of grids that are urban community grids
URBAN_AREA_M2 = (0.22e6, 0.50e6)  # target urban grid area at the centre and at the core's edge
RURAL_AREA_M2 = 5.0e6
PRECISION_M = 0.01  # coordinates are snapped to 1 cm so that neighbours share identical vertices

_EARTH_R = 6_371_008.8


@dataclass(frozen=True)
class LocalFrame:
    """Equirectangular metres around (lon0, lat0); affine, hence exact for containment."""

    lon0: float = CENTRE_LON
    lat0: float = CENTRE_LAT

    @property
    def _k(self) -> tuple[float, float]:
        ky = np.pi / 180.0 * _EARTH_R
        return ky * np.cos(np.radians(self.lat0)), ky

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kx, ky = self._k
        return self.lon0 + np.asarray(x) / kx, self.lat0 + np.asarray(y) / ky

    def from_lonlat(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kx, ky = self._k
        return (np.asarray(lon) - self.lon0) * kx, (np.asarray(lat) - self.lat0) * ky

    def geoms_to_lonlat(self, geoms: np.ndarray) -> np.ndarray:
        kx, ky = self._k
        return shapely.transform(geoms, lambda c: c / (kx, ky) + (self.lon0, self.lat0))


@dataclass
class Territory:
    """Grids in metres (columns kind, district, population, geometry) and the two outlines."""

    grids: gpd.GeoDataFrame
    boundary: Polygon
    core: Polygon


def build_territory(rng: np.random.Generator, n_grids: int) -> Territory:
    """Boundary, urban core and ``n_grids`` grids: small urban grids in the core, villages around."""
    n_urban = max(1, round(URBAN_SHARE * n_grids))
    n_rural = n_grids - n_urban
    core_area = n_urban * 0.5 * sum(URBAN_AREA_M2) * 0.9  # density is higher at the centre
    core = _star_polygon(rng, core_area, wobble=0.06)
    boundary = _star_polygon(rng, core_area + n_rural * RURAL_AREA_M2, wobble=0.09)
    core = core.intersection(boundary)
    rc = np.sqrt(core_area / np.pi)

    def urban_area(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        rho = np.minimum(np.hypot(x, y) / rc, 1.0)
        return URBAN_AREA_M2[0] + (URBAN_AREA_M2[1] - URBAN_AREA_M2[0]) * rho**2

    seeds, spacing = _dart_throw(rng, n_urban, core, urban_area)
    rural_zone = boundary.difference(core)

    def rural_area(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # villages next to the city are smaller, so urban grids at the core's edge stay small too
        near = np.minimum(shapely.distance(core, shapely.points(x, y)) / 4000.0, 1.0)
        return RURAL_AREA_M2 * (0.3 + 0.7 * near)

    rural_seeds, _ = _dart_throw(rng, n_rural, rural_zone, rural_area, (seeds, spacing))
    xy = np.vstack([seeds, rural_seeds])
    kind = np.array(["urban"] * n_urban + ["rural"] * n_rural, dtype=object)
    cells = _tessellate(xy, boundary)

    cx, cy = shapely.get_coordinates(shapely.centroid(cells)).T
    r = np.hypot(cx, cy)
    # twist sector borders with distance so districts do not meet along straight rays
    angle = np.degrees(np.arctan2(cy, cx)) + 12.0 * np.sin(r / 3000.0 + rng.uniform(0, 2 * np.pi))
    area_km2 = shapely.area(cells) / 1e6
    density = np.where(
        kind == "urban", 3000.0 + 22000.0 * np.exp(-r / 5000.0), rng.uniform(200.0, 450.0, r.size)
    )
    population = np.round(area_km2 * density * rng.lognormal(0.0, 0.3, r.size)).astype(np.int64)
    grids = gpd.GeoDataFrame(
        {
            "kind": kind,
            "district": district_of(angle, kind == "rural"),
            "population": population,
            "dist_m": r,  # distance of the centroid from the centre, used by later steps
        },
        geometry=cells,
        crs=None,
    )
    return Territory(grids, boundary, core)


def _star_polygon(rng: np.random.Generator, area: float, wobble: float, n: int = 240) -> Polygon:
    """A smooth irregular star-shaped outline of the given area (a few random harmonics)."""
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    k = np.arange(2, 7)
    amp = wobble * rng.uniform(0.4, 1.0, k.size) / np.sqrt(k - 1)
    phase = rng.uniform(0.0, 2 * np.pi, k.size)
    radius = 1.0 + (amp[:, None] * np.cos(k[:, None] * theta + phase[:, None])).sum(axis=0)
    poly = Polygon(np.c_[radius * np.cos(theta), radius * np.sin(theta)])
    scale = np.sqrt(area / poly.area)
    return shapely.set_precision(
        shapely.transform(poly, lambda c: c * scale), PRECISION_M
    )


def _dart_throw(rng, n, region, area_at, fixed=None):
    """``n`` points in ``region`` with local mean spacing set by ``area_at(x, y)`` (target cell area).

    Hand-written dart throwing (no library samples a variable-density blue-noise pattern): candidates
    are drawn with density ~ 1/area and kept if they are not closer than ~0.7 local spacing to an
    accepted point, which gives Voronoi cells of fairly even size without slivers. ``fixed`` holds
    points (and their spacings) already placed, which new points must also keep away from.
    """
    fx, fr = fixed if fixed is not None else (np.empty((0, 2)), np.empty(0))
    pts = np.empty((fx.shape[0] + n, 2))
    rad = np.empty(fx.shape[0] + n)
    pts[: len(fx)], rad[: len(fx)] = fx, fr
    k = len(fx)
    minx, miny, maxx, maxy = region.bounds
    factor = 0.7
    amin = float(area_at(np.zeros(1), np.zeros(1))[0])
    misses = 0
    while k < len(fx) + n:
        m = 4 * n
        x, y = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
        a = area_at(x, y)
        keep = shapely.contains_xy(region, x, y) & (rng.random(m) < amin / a)
        for xi, yi, ai in zip(x[keep], y[keep], a[keep]):
            ri = factor * np.sqrt(ai)
            d2 = (pts[:k, 0] - xi) ** 2 + (pts[:k, 1] - yi) ** 2
            if np.all(d2 >= (0.5 * (ri + rad[:k])) ** 2):
                pts[k], rad[k] = (xi, yi), ri
                k += 1
                if k == len(fx) + n:
                    break
            else:
                misses += 1
        if misses > 50 * n:  # region too small for the spacing: loosen it rather than loop forever
            factor *= 0.85
            misses = 0
    return pts[len(fx) :], rad[len(fx) :]


def _tessellate(xy: np.ndarray, boundary: Polygon) -> np.ndarray:
    """Voronoi cells of ``xy`` clipped to ``boundary``: one Polygon per point, a gap-free coverage.

    A cell cut by a bay of the boundary falls apart; each stray piece is merged into the neighbour
    it shares the longest edge with, so every grid stays a single Polygon and nothing is lost.
    """
    vor = shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=boundary, ordered=True)
    cells = shapely.intersection(shapely.get_parts(vor), boundary, grid_size=PRECISION_M)
    seeds = shapely.points(xy)
    out = np.empty(len(cells), dtype=object)
    strays = []
    for i, cell in enumerate(cells):
        parts = shapely.get_parts(cell)
        parts = parts[shapely.get_type_id(parts) == 3]
        home = np.flatnonzero(shapely.intersects(parts, seeds[i]))
        j = home[0] if home.size else int(np.argmax(shapely.area(parts)))
        out[i] = parts[j]
        strays.extend(p for t, p in enumerate(parts) if t != j)
    tries = 0
    while strays:
        piece = strays.pop()
        tries += 1
        shared = shapely.length(shapely.intersection(shapely.boundary(out), piece.boundary))
        j = int(np.argmax(shared))
        merged = shapely.union(out[j], piece, grid_size=PRECISION_M)
        if merged.geom_type != "Polygon" and tries < 10 * len(cells):
            # touches only at a corner: try again after the other strays are merged
            strays.insert(0, piece)
            continue
        out[j] = merged
    return out
