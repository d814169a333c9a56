"""GridIndex: which grid holds each point, and the tie rule on shared edges."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geogrid.assign import GridIndex


def test_point_on_a_shared_edge_goes_to_the_first_listed_grid():
    left, right = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    for order in ([left, right], [right, left]):
        grids = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=order, crs=4326)
        idx = GridIndex(grids, key="code")
        got = idx.keys_of(np.array([1.0, 0.5, 1.5, 5.0]), np.array([0.5, 0.5, 0.5, 5.0]))
        assert list(got) == ["A", "A" if order[0] is left else "B", "B" if order[0] is left else "A", None]
