"""Compactness of polygons: Polsby–Popper, measured in metres (a projected CRS).

Polsby–Popper is ``4πA / P²``: 1 for a disc, about 0.91 for a hexagon, 0.785 for a square and near 0
for a long thin strip or a ragged shape. It is scale-free but not CRS-free: in degrees it distorts with
latitude, so every geometry is projected to a local UTM zone (or kept in its own projected CRS) first.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.errors import InputError


def to_metres(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """``gdf`` in a metric CRS: itself when already projected, else its local UTM zone.

    A frame without a CRS is taken as WGS-84 (the store's system).
    """
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    if gdf.crs.is_projected:
        return gdf
    if len(gdf) == 0:
        return gdf.to_crs(3857)
    return gdf.to_crs(gdf.estimate_utm_crs())


def polsby_popper_values(geoms: np.ndarray) -> np.ndarray:
    """``4πA/P²`` of each shapely geometry, already in metres; NaN for empty or zero-perimeter ones."""
    geoms = np.asarray(geoms, dtype=object)
    area = shapely.area(geoms)
    perim = shapely.length(geoms)  # length of a polygon is its perimeter, holes included
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = 4.0 * np.pi * area / perim**2
    return np.where(perim > 0, pp, np.nan)


def polsby_popper(polygons: gpd.GeoDataFrame | gpd.GeoSeries) -> pd.Series:
    """Polsby–Popper compactness of each polygon, computed in a metric CRS.

    Parameters
    ----------
    polygons
        Polygons in any CRS (WGS-84 assumed when none is set).

    Returns
    -------
    Series of values in ``(0, 1]`` indexed like ``polygons``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> s = polsby_popper(gpd.GeoSeries([box(0, 0, 1000, 1000)], crs=3857))
    >>> round(float(s.iloc[0]), 3)
    0.785
    """
    if not isinstance(polygons, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise InputError("polygons must be a GeoDataFrame or GeoSeries; wrap shapely geometries in a GeoSeries")
    geoms = to_metres(polygons).geometry if isinstance(polygons, gpd.GeoDataFrame) else to_metres(polygons)
    return pd.Series(polsby_popper_values(geoms.values), index=polygons.index, name="polsby_popper")
