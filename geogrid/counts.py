"""Incident counts on H3 cells, with population rates.

Incidents are a (Geo)DataFrame with ``lon``, ``lat`` (WGS-84) or a Point geometry, ``occurred_at``
(tz-aware) and ``category``; an optional ``h3`` column (int64) is reused when its resolution matches.

Cells follow the one containment policy of :mod:`geogrid.cells`: a study area is turned into the
cells whose centroid lies inside it, and population held by grids is spread over cells by
intersected area. With a study area every one of its cells is returned, zero-count ones included
(Gi* needs them), and incidents in cells outside it are dropped.
"""
from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd

from geogrid.cells import apportion_to_cells, check_resolution, points_to_cells, study_area_cells
from geogrid.errors import InputError

COUNT_RES_RANGE = (7, 10)


def incident_lonlat(incidents: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) arrays in WGS-84 from ``lon``/``lat`` columns or a Point geometry."""
    if "lon" in incidents.columns and "lat" in incidents.columns:
        lon = incidents["lon"].to_numpy(dtype=np.float64)
        lat = incidents["lat"].to_numpy(dtype=np.float64)
    elif isinstance(incidents, gpd.GeoDataFrame) and incidents.geometry is not None:
        geo = incidents.geometry
        if geo.crs is not None and geo.crs.to_epsg() != 4326:
            geo = geo.to_crs(4326)
        lon, lat = geo.x.to_numpy(), geo.y.to_numpy()
    else:
        raise InputError("incidents need `lon` and `lat` columns (WGS-84) or a Point geometry")
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} incidents have missing or out-of-range lon/lat; drop or fix them first"
        )
    return lon, lat


def incident_cells(incidents: pd.DataFrame, res: int) -> np.ndarray:
    """H3 cell (int64) of each incident; reuses an ``h3`` column when it is at ``res``."""
    res = check_resolution(res)
    if "h3" in incidents.columns and len(incidents):
        cells = incidents["h3"].to_numpy(dtype=np.int64)
        if h3.get_resolution(h3.int_to_str(int(cells[0]) & 0xFFFFFFFFFFFFFFFF)) == res:
            return cells
    lon, lat = incident_lonlat(incidents)
    return points_to_cells(lon, lat, res)


def filter_incidents(
    incidents: pd.DataFrame,
    start=None,
    end=None,
    categories=None,
) -> pd.DataFrame:
    """Incidents with ``start <= occurred_at < end`` and ``category`` in ``categories``.

    Naive ``start``/``end`` are read in the time zone of ``occurred_at``.
    """
    mask = np.ones(len(incidents), dtype=bool)
    if start is not None or end is not None:
        t = incident_times(incidents)
        for bound, keep in ((start, lambda b: t >= b), (end, lambda b: t < b)):
            if bound is not None:
                b = pd.Timestamp(bound)
                if b.tzinfo is None:
                    b = b.tz_localize(t.dt.tz)
                mask &= keep(b).to_numpy()
    if categories is not None:
        if "category" not in incidents.columns:
            raise InputError("filtering by categories needs a `category` column")
        cats = [categories] if isinstance(categories, str) else list(categories)
        mask &= incidents["category"].isin(cats).to_numpy()
    return incidents if mask.all() else incidents.loc[mask]


def cell_counts(
    incidents: pd.DataFrame,
    res: int,
    study_area=None,
    start=None,
    end=None,
    categories=None,
    population: pd.Series | gpd.GeoDataFrame | None = None,
    population_col: str = "population",
) -> pd.DataFrame:
    """Incidents per H3 cell for a resolution, a time window and a set of categories.

    Parameters
    ----------
    incidents : DataFrame
        ``lon``/``lat`` or geometry, ``occurred_at`` (tz-aware), ``category``, optional ``h3``.
    res : int
        H3 resolution, 7 to 10.
    study_area : (Multi)Polygon, GeoSeries or GeoDataFrame, optional
        When given, every cell whose centroid lies inside is returned (zeros included) and
        incidents outside these cells are dropped. Without it only cells with incidents appear.
    start, end : timestamp-like, optional
        Window ``start <= occurred_at < end``.
    categories : str or list of str, optional
        Category codes to keep.
    population : Series indexed by cell, or GeoDataFrame of grids, optional
        Residents per cell, or grids whose ``population_col`` is spread over cells by area.

    Returns
    -------
    DataFrame
        ``cell`` (int64), ``count`` (int64), and with population ``population`` and
        ``rate_per_1000`` (NaN where the population is unknown or zero); sorted by cell.
    """
    res = check_resolution(res, *COUNT_RES_RANGE)
    sel = filter_incidents(incidents, start, end, categories)
    cells = incident_cells(sel, res)
    if study_area is not None:
        area_cells = study_area_cells(study_area, res)
        if area_cells.size == 0:
            raise InputError(f"the study area holds no H3 cell centre at resolution {res}")
        # np.unique sorts, so bincount over positions gives counts aligned with area_cells
        pos = np.searchsorted(area_cells, cells)
        pos_c = np.minimum(pos, area_cells.size - 1)
        inside = area_cells[pos_c] == cells
        count = np.bincount(pos_c[inside], minlength=area_cells.size)
        out = pd.DataFrame({"cell": area_cells, "count": count.astype(np.int64)})
    else:
        uniq, count = np.unique(cells, return_counts=True)
        out = pd.DataFrame({"cell": uniq.astype(np.int64), "count": count.astype(np.int64)})
    if population is not None:
        out = _add_population(out, population, population_col, res)
    return out


def _add_population(out: pd.DataFrame, population, col: str, res: int) -> pd.DataFrame:
    if isinstance(population, gpd.GeoDataFrame):
        if col not in population.columns:
            raise InputError(f"population grids have no `{col}` column; pass population_col=")
        pop = apportion_to_cells(population, col, res)
    elif isinstance(population, pd.Series):
        pop = population
    else:
        raise InputError("population must be a Series indexed by cell or a GeoDataFrame of grids")
    out = out.copy()
    out["population"] = out["cell"].map(pop).astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = 1000.0 * out["count"].to_numpy() / out["population"].to_numpy()
    out["rate_per_1000"] = np.where(out["population"].to_numpy() > 0, rate, np.nan)
    return out


def incident_times(incidents: pd.DataFrame) -> pd.Series:
    """The ``occurred_at`` column, checked to be tz-aware."""
    if "occurred_at" not in incidents.columns:
        raise InputError("incidents need an `occurred_at` column (tz-aware timestamps)")
    t = incidents["occurred_at"]
    if not isinstance(t.dtype, pd.DatetimeTZDtype):
        raise InputError("`occurred_at` must be tz-aware; use .dt.tz_localize('Asia/Shanghai') or similar")
    return t
