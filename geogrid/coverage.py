"""Coverage: how quickly posts reach each H3 cell, each grid and the whole city.

A cell is reached at the travel time from the quickest post to the cell's centre. Shares of
incidents, population and area within each time standard (default 5 and 15 minutes: the
"minimum emergency unit" response and the urgent-matter deadline of the source plan) are taken
over cells, so a grid's area is the area of its cells (the centroid containment policy of
:mod:`geogrid.cells`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import pandas as pd

from geogrid.cells import cell_centroids, cell_to_str, cells_to_polygons, grids_to_cells
from geogrid.errors import InputError
from geogrid.travel import TravelModel

WEIGHTS = ("incidents", "population")


@dataclass
class Coverage:
    """Result of :func:`coverage`.

    Attributes
    ----------
    cells_ : DataFrame
        One row per cell: ``cell``, ``grid``, ``minutes``, ``nearest_post`` (post code),
        ``within_<t>`` per threshold, ``incidents``, ``population``, ``area_km2``.
    grids_ : DataFrame
        One row per grid code: ``kind``, ``cells``, ``mean_minutes``, ``max_minutes`` and, per
        threshold ``t``, ``incidents_<t>``, ``population_<t>``, ``area_<t>`` (shares in [0, 1]; NaN
        where the grid has none of that weight).
    summary_ : DataFrame
        Citywide shares indexed by threshold, columns ``incidents``, ``population``, ``area``.
    uncovered_ : GeoDataFrame
        Per threshold, the dissolved polygons of cells beyond it (EPSG:4326), with their
        ``area_km2``, ``incidents`` and ``population``.
    thresholds : tuple of float
    polygons_ : GeoSeries
        The cells' polygons (EPSG:4326), row for row with ``cells_``.
    """

    cells_: pd.DataFrame
    grids_: pd.DataFrame
    summary_: pd.DataFrame
    uncovered_: gpd.GeoDataFrame
    thresholds: tuple[float, ...]
    polygons_: gpd.GeoSeries | None = None  # cell polygons (EPSG:4326), in the order of ``cells_``


def _label(t: float) -> str:
    return f"{t:g}"


def _cells_frame(cells, grids):
    """Validated frame with ``cell`` and the weights; grid cells missing from ``cells`` get zero weight."""
    if isinstance(cells, pd.DataFrame):
        df = cells.reset_index() if "cell" not in cells.columns and cells.index.name == "cell" else cells.copy()
        if "cell" not in df:
            raise InputError("cells needs a 'cell' column (or index) of H3 ids as int64")
        df = pd.DataFrame(df.drop(columns=df.geometry.name) if isinstance(df, gpd.GeoDataFrame) else df)
    else:
        df = pd.DataFrame({"cell": np.asarray(list(cells), dtype=np.int64)})
    df["cell"] = df["cell"].astype(np.int64)
    if df["cell"].duplicated().any():
        raise InputError("cells holds duplicate cell ids: aggregate the weights per cell first")
    for w in WEIGHTS:
        df[w] = pd.to_numeric(df[w], errors="coerce").fillna(0.0).astype(float) if w in df else 0.0
        if (df[w] < 0).any():
            raise InputError(f"cells['{w}'] must be non-negative")
    if grids is not None and len(df):
        res = h3.get_resolution(cell_to_str(int(df["cell"].iloc[0])))
        g2c = grids_to_cells(grids, res, by="code")
        if "grid" not in df:
            df = df.merge(g2c, on="cell", how="left")
        extra = g2c[~g2c["cell"].isin(df["cell"])].assign(incidents=0.0, population=0.0)
        df = pd.concat([df, extra], ignore_index=True)
    if "grid" not in df:
        df["grid"] = pd.NA
    if df.empty:
        raise InputError("no cells to measure: pass the study-area cells (zero weights included) or grids")
    return df


def coverage(posts: gpd.GeoDataFrame, cells, grids: gpd.GeoDataFrame | None, travel: TravelModel,
             thresholds: Sequence[float] = (5, 15), *, crs=None) -> Coverage:
    """Travel time from the nearest post, and the shares reached within each time standard.

    Parameters
    ----------
    posts : GeoDataFrame
        Post points with ``code``.
    cells : DataFrame, GeoDataFrame or iterable of int
        H3 cells (``cell`` column or index) with optional ``incidents`` and ``population``
        (missing means 0) and optional ``grid``. Pass every cell of the study area, zero-weight
        ones included, so that area shares are right; the cells of ``grids`` are added anyway.
    grids : GeoDataFrame or None
        Grids with ``code`` and ``kind``; cells are assigned to them by centroid.
    travel : TravelModel
        :class:`~geogrid.travel.StraightLineTravel` or :class:`~geogrid.travel.NetworkTravel`.
    thresholds : sequence of float
        Time standards in minutes.
    crs : optional
        Metric CRS for cell areas; default the cells' UTM zone (estimating a zone costs about
        0.1–0.3 s, so a caller that knows it already passes it).

    Returns
    -------
    Coverage
    """
    if not isinstance(posts, gpd.GeoDataFrame) or "code" not in posts or len(posts) == 0:
        raise InputError("posts must be a non-empty GeoDataFrame of Points with a 'code' column")
    if grids is not None and not {"code", "kind"} <= set(grids.columns):
        raise InputError("grids needs 'code' and 'kind' columns")
    ts = tuple(sorted(float(t) for t in thresholds))
    if not ts or not all(np.isfinite(t) and t > 0 for t in ts):
        raise InputError(f"thresholds must be positive minutes, got {thresholds!r}")
    df = _cells_frame(cells, grids)
    lon, lat = cell_centroids(df["cell"])
    centres = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    idx, minutes = travel.nearest(posts, centres)
    df["minutes"] = minutes
    df["nearest_post"] = np.where(np.isfinite(minutes), posts["code"].to_numpy()[idx], None)
    polys = cells_to_polygons(df["cell"])
    metric = crs if crs is not None else polys.estimate_utm_crs()
    df["area_km2"] = polys.to_crs(metric).area.to_numpy() / 1e6
    for t in ts:
        df[f"within_{_label(t)}"] = df["minutes"] <= t
    cols = ["cell", "grid", "minutes", "nearest_post", *[f"within_{_label(t)}" for t in ts], *WEIGHTS, "area_km2"]
    df = df[cols]
    return Coverage(df, _by_grid(df, grids, ts), _summary(df, ts), _uncovered(df, polys, ts), ts, polys)


def _shares(df: pd.DataFrame, ts) -> dict[str, float]:
    out = {}
    for t in ts:
        inside = df[f"within_{_label(t)}"].to_numpy()
        for w, col in (("incidents", "incidents"), ("population", "population"), ("area", "area_km2")):
            total = df[col].sum()
            out[f"{w}_{_label(t)}"] = df.loc[inside, col].sum() / total if total > 0 else np.nan
    return out


def _by_grid(df, grids, ts) -> pd.DataFrame:
    if grids is None:
        return pd.DataFrame()
    d = df.dropna(subset=["grid"])
    # one grouped pass for every grid (a Python loop over grids cost seconds at 860 grids)
    cols = {"incidents": d["incidents"].to_numpy(float), "population": d["population"].to_numpy(float),
            "area": d["area_km2"].to_numpy(float)}
    frame = pd.DataFrame({f"tot_{w}": v for w, v in cols.items()}, index=d.index)
    for t in ts:
        inside = d[f"within_{_label(t)}"].to_numpy(bool)
        for w, v in cols.items():
            frame[f"{w}_{_label(t)}"] = np.where(inside, v, 0.0)
    g = frame.groupby(d["grid"].to_numpy(), sort=True).sum()
    mins = d["minutes"].groupby(d["grid"].to_numpy(), sort=True)
    out = pd.DataFrame({"cells": mins.size(), "mean_minutes": mins.mean(), "max_minutes": mins.max()})
    for t in ts:
        for w in cols:
            tot = g[f"tot_{w}"]
            out[f"{w}_{_label(t)}"] = (g[f"{w}_{_label(t)}"] / tot).where(tot > 0)
    out.index.name = "code"
    kinds = grids.set_index("code")["kind"]
    out = out.reindex(kinds.index)  # grids too small to hold a cell centre stay, with NaN
    out.insert(0, "kind", kinds)
    out["cells"] = out["cells"].fillna(0).astype(int)
    return out.reset_index()


def _summary(df, ts) -> pd.DataFrame:
    s = _shares(df, ts)
    out = pd.DataFrame({w: [s[f"{w}_{_label(t)}"] for t in ts] for w in ("incidents", "population", "area")},
                       index=pd.Index(ts, name="threshold"))
    return out


def _uncovered(df, polys, ts) -> gpd.GeoDataFrame:
    rows = []
    for t in ts:
        out = ~df[f"within_{_label(t)}"].to_numpy()
        geom = polys[out].union_all() if out.any() else None
        rows.append({"threshold": t, "area_km2": df.loc[out, "area_km2"].sum(),
                     "incidents": df.loc[out, "incidents"].sum(), "population": df.loc[out, "population"].sum(),
                     "geometry": geom})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
