"""Grid redesign proposals: group H3 cells of an area into k new contiguous, compact, balanced grids.

The beats engine does the work on the cell graph (each new grid is a "beat" of one share of the
workload); hard boundaries shape the graph first: station areas (polygons) become areas grids may not
cross, and rivers or rail lines (lines) cut the adjacency between two cells whose centres lie on
either side. The result is a GeoDataFrame the lead's store saves as a draft plan.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.adjacency import rook_adjacency
from geogrid.beats import BalancedBeats
from geogrid.cells import cells_to_polygons, check_resolution, points_to_cells, study_area_cells
from geogrid.compactness import to_metres
from geogrid.errors import InputError


def cells_with_workload(area, incidents: gpd.GeoDataFrame, res: int = 9) -> gpd.GeoDataFrame:
    """H3 cells of ``area`` (centroid policy) with ``workload`` = incidents per cell, zeros included."""
    res = check_resolution(res, 7, 11)
    cells = study_area_cells(area, res)
    if len(cells) == 0:
        raise InputError("area holds no H3 cell centre at this resolution; use a finer res")
    pts = incidents.to_crs(4326) if incidents.crs is not None else incidents
    counts = pd.Series(points_to_cells(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy(), res)).value_counts()
    poly = cells_to_polygons(cells)
    return gpd.GeoDataFrame({"workload": counts.reindex(cells, fill_value=0).to_numpy(dtype=float)},
                            geometry=poly.values, index=poly.index, crs=4326)


class GridRedesign:
    """Propose ``k`` new grids from workload-weighted H3 cells.

    Parameters
    ----------
    k
        Number of new grids.
    tolerance
        Goal band of workload deviation from the mean grid (±5 % by default, the best published designs).
    workload_col
        Column of the cells with workload.
    compactness_weight, seed, max_seconds
        As in :class:`geogrid.beats.BalancedBeats` (compactness weighs more here: these are new borders).

    Attributes
    ----------
    grids_ : GeoDataFrame of the proposed grids (geometry, workload, deviation, polsby_popper, n_grids = cells)
    labels_ : Series, proposed grid of each cell
    report_ : dict, as ``BalancedBeats.report_`` plus ``cut_links`` (links cut by hard lines)
    """

    def __init__(self, k: int, tolerance: float = 0.05, workload_col: str = "workload",
                 compactness_weight: float = 0.01, seed: int = 0, max_seconds: float = 60.0):
        self.k, self.tolerance, self.workload_col = k, tolerance, workload_col
        self.compactness_weight, self.seed, self.max_seconds = compactness_weight, seed, max_seconds

    def fit(self, cells: gpd.GeoDataFrame, hard_boundaries: gpd.GeoDataFrame | gpd.GeoSeries | None = None
            ) -> GridRedesign:
        """Group ``cells`` (H3 cell polygons with a workload column) into ``k`` grids.

        ``hard_boundaries``: polygons (station areas; a cell belongs to the one holding its centre) and/or
        lines (rivers, rail) that new grids may not cross.
        """
        if not isinstance(cells, gpd.GeoDataFrame) or self.workload_col not in cells.columns:
            raise InputError(f"cells must be a GeoDataFrame with a {self.workload_col!r} column "
                             "(see cells_with_workload)")
        if not isinstance(self.k, (int, np.integer)) or not 1 <= self.k <= len(cells):
            raise InputError(f"k must be an integer from 1 to the number of cells ({len(cells)})")
        cells = cells.copy()
        adj = rook_adjacency(cells)
        cut = np.zeros(len(adj.pairs), dtype=bool)
        station_col = None
        if hard_boundaries is not None and len(hard_boundaries):
            hb = hard_boundaries if hard_boundaries.crs is not None else hard_boundaries.set_crs(4326)
            if hb.crs.is_geographic:  # a line straight in degrees is curved in metres: densify first
                hb = hb.segmentize(0.0002)
            hb = hb.to_crs(to_metres(cells).crs)
            geoms = np.asarray(hb.geometry.values if isinstance(hb, gpd.GeoDataFrame) else hb.values)
            centres = shapely.centroid(np.asarray(to_metres(cells).geometry.values))
            kinds = shapely.get_type_id(geoms)
            lines = geoms[np.isin(kinds, [1, 2, 5])]
            areas = geoms[np.isin(kinds, [3, 6])]
            if len(lines) and len(adj.pairs):
                seg = shapely.linestrings(np.stack([shapely.get_coordinates(centres[adj.pairs[:, 0]]),
                                                    shapely.get_coordinates(centres[adj.pairs[:, 1]])], axis=1))
                cut = shapely.intersects(seg, shapely.union_all(lines))
            if len(areas):
                tree = shapely.STRtree(areas)
                cell_i, area_i = tree.query(centres, predicate="within")
                station = np.full(len(cells), -1)
                station[cell_i] = area_i
                cells["_hard_area"] = station  # cells outside every area form their own area (-1)
                station_col = "_hard_area"
        n_cut = int(cut.sum())
        beats = BalancedBeats(int(self.k), workload_col=self.workload_col, station_col=station_col,
                              tolerance=self.tolerance, compactness_weight=self.compactness_weight,
                              seed=self.seed, max_seconds=self.max_seconds)
        beats.fit(cells, adjacency=adj.without(cut))
        self.labels_ = beats.labels_.rename("grid")
        self.grids_ = beats.beats_.rename(columns={"n_grids": "n_cells", "officers": "shares"}).rename_axis("grid")
        self.report_ = {**beats.report_, "cut_links": n_cut}
        return self
