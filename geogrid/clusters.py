"""Density clusters of incident points (DBSCAN / HDBSCAN) returned as polygons.

Points are projected to the local UTM zone chosen from the data (``estimate_utm_crs``) so that
``eps_m`` is in metres and Euclidean distance is true distance (within 0.1 % over a city; the
field notes measured it 3x faster than haversine with the same clusters). Each cluster becomes a
polygon drawn around its *core* members (DBSCAN core samples; HDBSCAN members with membership
probability >= 0.5), so that a few stray border points do not stretch it: the convex hull buffered
by ``buffer_m`` (``shape='hull'``), or the union of the H3 cells holding them (``shape='cells'``,
at ``res``). Counts, categories and hours use every member.
"""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.cells import cells_to_polygons
from geogrid.counts import incident_cells, incident_lonlat
from geogrid.errors import InputError, NotEnoughData

METHODS = ("hdbscan", "dbscan")
PEAK_WINDOW_H = 4
CORE_PROBABILITY = 0.5  # HDBSCAN membership strength that counts as core for the outline


class DensityClusters:
    """Density clusters of incidents.

    Parameters
    ----------
    method : {'hdbscan', 'dbscan'}
    eps_m : float
        DBSCAN neighbourhood radius in metres (ignored by HDBSCAN unless ``cluster_selection_eps``).
    min_samples : int
        Core-point neighbourhood size (both methods).
    min_cluster_size : int
        HDBSCAN's smallest cluster.
    shape : {'hull', 'cells'}
        Polygon of a cluster: buffered convex hull, or union of member H3 cells at ``res``.
    buffer_m, res, top_n : float, int, int
        Hull buffer in metres, H3 resolution for ``shape='cells'``, categories listed per cluster.
    seed : int
        Kept for the common estimator shape; both algorithms are deterministic.

    Attributes
    ----------
    labels_ : ndarray
        Cluster id of each incident, -1 for noise.
    clusters_ : GeoDataFrame (EPSG:4326)
        ``cluster``, ``count``, ``dominant_category``, ``dominant_share``, ``top_categories``
        (JSON list of ``[category, share]``), ``peak_hour``, ``peak_window`` ("19:00–23:00", the
        densest 4-hour window), ``peak_window_share``, ``area_km2``, ``geometry``.
    crs_ : pyproj.CRS
        The UTM zone used.
    """

    def __init__(
        self,
        method: str = "hdbscan",
        eps_m: float = 150.0,
        min_samples: int = 10,
        min_cluster_size: int = 25,
        shape: str = "hull",
        buffer_m: float = 25.0,
        res: int = 10,
        top_n: int = 3,
        seed: int = 0,
    ):
        self.method = method
        self.eps_m = eps_m
        self.min_samples = min_samples
        self.min_cluster_size = min_cluster_size
        self.shape = shape
        self.buffer_m = buffer_m
        self.res = res
        self.top_n = top_n
        self.seed = seed

    def fit(self, incidents: pd.DataFrame) -> "DensityClusters":
        """Cluster the incidents; results in ``labels_`` and ``clusters_``."""
        self._check_params()
        lon, lat = incident_lonlat(incidents)
        if lon.size < self.min_samples:
            raise NotEnoughData(
                f"{lon.size} incidents; density clusters need at least min_samples={self.min_samples}"
            )
        pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
        self.crs_ = pts.estimate_utm_crs()
        proj = pts.to_crs(self.crs_)
        xy = np.column_stack([proj.x.to_numpy(), proj.y.to_numpy()])
        self.labels_, core = self._cluster(xy)
        self.clusters_ = self._describe(incidents, xy, self.labels_, core)
        return self

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.shape not in ("hull", "cells"):
            raise InputError(f"shape must be 'hull' or 'cells', got {self.shape!r}")
        if not self.eps_m > 0 or self.min_samples < 1:
            raise InputError("eps_m must be > 0 metres and min_samples >= 1")

    def _cluster(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.method == "dbscan":
            from sklearn.cluster import DBSCAN

            model = DBSCAN(eps=self.eps_m, min_samples=self.min_samples, algorithm="kd_tree")
            labels = model.fit_predict(xy).astype(np.int64)
            core = np.zeros(labels.size, dtype=bool)
            core[model.core_sample_indices_] = True
            return labels, core
        from sklearn.cluster import HDBSCAN

        model = HDBSCAN(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples, copy=True)
        labels = model.fit_predict(xy).astype(np.int64)
        return labels, model.probabilities_ >= CORE_PROBABILITY

    def _describe(self, incidents: pd.DataFrame, xy: np.ndarray, labels: np.ndarray,
                  core: np.ndarray) -> gpd.GeoDataFrame:
        ids = np.unique(labels[labels >= 0])
        cats = incidents["category"].astype(str).to_numpy() if "category" in incidents else None
        hours = _hours(incidents)
        cells = incident_cells(incidents, self.res) if self.shape == "cells" else None
        rows, geoms = [], []
        for cid in ids:
            m = labels == cid
            row = {"cluster": int(cid), "count": int(m.sum())}
            row.update(_category_summary(cats[m] if cats is not None else None, self.top_n))
            row.update(_hour_summary(hours[m] if hours is not None else None))
            rows.append(row)
            # the outline follows core members: one stray border point would stretch a hull far
            mc = m & core if (m & core).any() else m
            geoms.append(self._polygon(xy[mc], cells[mc] if cells is not None else None))
        cols = ["cluster", "count", "dominant_category", "dominant_share", "top_categories",
                "peak_hour", "peak_window", "peak_window_share"]
        frame = pd.DataFrame(rows, columns=cols)
        gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=self.crs_))
        gdf["area_km2"] = gdf.geometry.area.to_numpy() / 1e6
        gdf = gdf.to_crs(4326)
        return gdf.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)

    def _polygon(self, xy: np.ndarray, cells: np.ndarray | None):
        if cells is not None:
            poly = cells_to_polygons(np.unique(cells)).to_crs(self.crs_).union_all()
            return poly
        hull = shapely.convex_hull(shapely.multipoints(xy))
        return hull.buffer(self.buffer_m)


def _hours(incidents: pd.DataFrame) -> np.ndarray | None:
    if "occurred_at" not in incidents.columns:
        return None
    return pd.DatetimeIndex(incidents["occurred_at"]).hour.to_numpy()


def _category_summary(cats: np.ndarray | None, top_n: int) -> dict:
    if cats is None:
        return {"dominant_category": None, "dominant_share": np.nan, "top_categories": "[]"}
    vc = pd.Series(cats).value_counts(normalize=True, sort=True)
    top = [[str(c), round(float(s), 4)] for c, s in vc.head(top_n).items()]
    return {
        "dominant_category": top[0][0],
        "dominant_share": top[0][1],
        "top_categories": json.dumps(top, ensure_ascii=False),
    }


def _hour_summary(hours: np.ndarray | None) -> dict:
    if hours is None:
        return {"peak_hour": -1, "peak_window": None, "peak_window_share": np.nan}
    hist = np.bincount(hours, minlength=24).astype(float)
    # densest circular window: night windows (22:00–02:00) wrap over midnight
    win = np.array([hist[(s + np.arange(PEAK_WINDOW_H)) % 24].sum() for s in range(24)])
    s = int(np.argmax(win))
    return {
        "peak_hour": int(np.argmax(hist)),
        "peak_window": f"{s:02d}:00–{(s + PEAK_WINDOW_H) % 24:02d}:00",
        "peak_window_share": float(win[s] / hist.sum()),
    }
