"""Which grid contains each point: an in-memory STRtree, far faster than a PostGIS join or UPDATE.

Measured (FIELD-NOTES): 1 M points × 1,000 polygons — STRtree under 1 s, PostGIS join 18 s, UPDATE 47 s.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


class GridIndex:
    """Point-in-grid lookups over a set of grids (EPSG:4326).

    A point on a shared edge belongs to the grid listed first (stable, deterministic).
    """

    def __init__(self, grids: gpd.GeoDataFrame, key: str = "id"):
        self.keys = grids[key].to_numpy() if key in grids else grids.index.to_numpy()
        geoms = grids.geometry.to_numpy()
        shapely.prepare(geoms)
        self.geoms = geoms
        self.tree = shapely.STRtree(geoms)
        self.union = shapely.union_all(geoms) if len(geoms) else None

    def __len__(self) -> int:
        return len(self.keys)

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into ``keys`` of the containing grid for each point; -1 where none contains it."""
        n = len(lon)
        out = np.full(n, -1, dtype=np.int64)
        if n == 0 or len(self.keys) == 0:
            return out
        pts = shapely.points(np.asarray(lon, float), np.asarray(lat, float))
        ipt, igrid = self.tree.query(pts, predicate="intersects")
        # reverse so that, for a point on an edge, the first-listed grid is written last and wins
        order = np.lexsort((igrid, ipt))[::-1]
        out[ipt[order]] = igrid[order]
        return out

    def keys_of(self, lon: np.ndarray, lat: np.ndarray, missing=None) -> np.ndarray:
        """The ``key`` value of the containing grid (``missing`` where none)."""
        idx = self.locate(lon, lat)
        res = np.full(len(idx), missing, dtype=object)
        ok = idx >= 0
        res[ok] = self.keys[idx[ok]]
        return res
