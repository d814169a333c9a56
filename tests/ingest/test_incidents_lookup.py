"""Grid look-up through H3 cells gives exactly ``GridIndex.locate``'s answer, edges and corners included."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from geogrid.assign import GridIndex
from geogrid.cells import points_to_cells
from geogrid.ingest.cell_lookup import CellGrids


@pytest.mark.parametrize("res", [7, 9, 11])
def test_cell_lookup_equals_grid_index(grid_frame, res):
    index = GridIndex(grid_frame.reset_index(), key="index")
    x0, y0, x1, y1 = grid_frame.total_bounds
    rng = np.random.default_rng(5)
    corners = shapely.get_coordinates(grid_frame.geometry.to_numpy())  # on edges shared by 2-4 grids
    mids = (corners[:-1] + corners[1:]) / 2
    inside = np.column_stack([rng.uniform(x0, x1, 20_000), rng.uniform(y0, y1, 20_000)])
    around = np.column_stack([rng.uniform(x0 - .01, x1 + .01, 5_000), rng.uniform(y0 - .01, y1 + .01, 5_000)])
    pts = np.concatenate([corners, mids, inside, around])
    lookup = CellGrids(index)
    for part in np.array_split(rng.permutation(len(pts)), 4):  # in chunks: the per-cell cache is reused
        lon, lat = pts[part, 0], pts[part, 1]
        got = lookup.locate(lon, lat, points_to_cells(lon, lat, res))
        assert (got == index.locate(lon, lat)).all()
    assert (lookup._grid >= 0).any() or res == 7  # fine cells are settled per cell, not per point
