"""Which grid contains each point, answered per H3 cell wherever the cell settles it.

``GridIndex.locate`` builds a shapely Point per incident and queries the STRtree: the slowest step
of a load. Incidents come with their H3 cell anyway. A cell whose bounding box lies well inside one
grid and touches no other answers for all its points at once, and one that touches no grid rejects
them; only points of cells on a grid edge are tested (``intersects_xy``, no Point objects) against
the few grids their cell touches. A point inside two grids at once (on a shared edge) goes to
``GridIndex.locate`` itself, so the answer is always the one it gives.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely
from h3ronpy.vector import cells_bounds_arrays

from geogrid.assign import GridIndex

# a cell's outline is straight in H3's gnomonic projection and bulges < 1 mm in lon/lat at res 9:
# its bounding box grown by ~10 cm surely holds every point H3 puts in the cell
MARGIN_DEG = 1e-6
_EDGE, _NONE = -2, -1


class CellGrids:
    """``GridIndex.locate`` through H3 cells, remembering across chunks which cells it settles."""

    def __init__(self, index: GridIndex):
        self.index = index
        self._cells = np.empty(0, np.int64)  # sorted
        self._grid = np.empty(0, np.int64)  # the cell's grid, _NONE, or _EDGE (ask per point)
        # the grids each edge cell's box touches, as (cell, grid) pairs sorted by cell: kept so that
        # later chunks do not rebuild the boxes and query the tree again for cells already seen
        self._pair_cell = np.empty(0, np.int64)
        self._pair_grid = np.empty(0, np.int64)

    def locate(self, lon: np.ndarray, lat: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Index into ``index.keys`` of the grid containing each point (-1: none), as ``GridIndex.locate``."""
        n = len(lon)
        out = np.full(n, -1, np.int64)
        if n == 0 or len(self.index) == 0:
            return out
        uniq, inv = np.unique(cells, return_inverse=True)
        grid = self._settled(uniq)
        at = grid[inv]
        out[at >= 0] = at[at >= 0]
        edge = np.flatnonzero(grid == _EDGE)
        if len(edge):
            self._edge_points(lon, lat, uniq, inv, edge, out)
        return out

    def _settled(self, uniq: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self._cells, uniq), max(len(self._cells) - 1, 0))
        known = (self._cells[pos] == uniq) if len(self._cells) else np.zeros(len(uniq), bool)
        grid = np.where(known, self._grid[pos] if len(self._cells) else 0, _EDGE)
        new = np.flatnonzero(~known)
        if len(new):
            boxes = _boxes(uniq[new])
            icell, igrid = self.index.tree.query(boxes, predicate="intersects")
            count = np.bincount(icell, minlength=len(new))
            g = np.where(count == 0, _NONE, _EDGE)
            one = count[icell] == 1
            inside = np.zeros(len(icell), bool)
            inside[one] = shapely.contains_properly(self.index.geoms[igrid[one]], boxes[icell[one]])
            g[icell[inside]] = igrid[inside]
            grid[new] = g
            edge = g[icell] == _EDGE
            pc = np.concatenate([self._pair_cell, uniq[new][icell[edge]]])
            order = np.argsort(pc, kind="stable")
            self._pair_cell, self._pair_grid = pc[order], np.concatenate([self._pair_grid, igrid[edge]])[order]
            cells = np.concatenate([self._cells, uniq[new]])
            order = np.argsort(cells, kind="stable")
            self._cells, self._grid = cells[order], np.concatenate([self._grid, g])[order]
        return grid

    def _edge_points(self, lon, lat, uniq, inv, edge, out) -> None:
        """Test the points of edge cells against every grid their cell's box touches."""
        which = np.full(len(uniq), -1, np.int64)
        which[edge] = np.arange(len(edge))
        pts = np.flatnonzero(which[inv] >= 0)
        ecell = which[inv[pts]]  # each point's edge cell, 0..len(edge)-1
        start = np.searchsorted(self._pair_cell, uniq[edge], side="left")
        count = np.searchsorted(self._pair_cell, uniq[edge], side="right") - start
        k = count[ecell]
        pair_pt = np.repeat(pts, k)
        offset = np.arange(len(pair_pt)) - np.repeat(np.cumsum(k) - k, k)
        pair_grid = self._pair_grid[np.repeat(start[ecell], k) + offset]
        hit = shapely.intersects_xy(self.index.geoms[pair_grid], lon[pair_pt], lat[pair_pt])
        hits = np.bincount(pair_pt[hit], minlength=len(out))
        single = hit & (hits[pair_pt] == 1)
        out[pair_pt[single]] = pair_grid[single]
        multi = np.flatnonzero(hits > 1)
        if len(multi):  # on a shared edge: GridIndex applies its own tie rule
            out[multi] = self.index.locate(lon[multi], lat[multi])


def _boxes(cells: np.ndarray) -> np.ndarray:
    """Bounding boxes of H3 cells, grown by MARGIN_DEG, as shapely polygons."""
    b = pa.record_batch(cells_bounds_arrays(pa.array(cells.astype(np.uint64))))
    x0, y0, x1, y1 = (b.column(c).to_numpy() for c in ("minx", "miny", "maxx", "maxy"))
    return shapely.box(x0 - MARGIN_DEG, y0 - MARGIN_DEG, x1 + MARGIN_DEG, y1 + MARGIN_DEG)
