"""Small synthetic layers around the Chicago Loop for the map builders."""
from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pytest
import shapely

from geogrid.cells import cell_centroids, cells_to_polygons, str_to_cell

CENTRE = (41.8781, -87.6298)  # lat, lng


@pytest.fixture(scope="session")
def cells() -> gpd.GeoDataFrame:
    """37 res-9 cells (k=3 ring) with one column per map kind: every Gi bin, hot and cold emerging
    patterns, a 'No Pattern Detected' spelling, a tied risk score, and unreachable (NaN) minutes."""
    ids = sorted(str_to_cell(c) for c in h3.grid_disk(h3.latlng_to_cell(*CENTRE, 9), 3))
    n = len(ids)
    gdf = gpd.GeoDataFrame({"cell": np.array(ids, dtype=np.int64)},
                           geometry=cells_to_polygons(ids).to_numpy(), crs="EPSG:4326")
    gdf["gi_bin"] = np.resize(np.arange(-3, 4), n)
    gdf["z"] = gdf["gi_bin"] * 1.1
    gdf["p"] = np.where(gdf["gi_bin"] == 0, 0.5, 0.004)
    gdf["pattern"] = np.resize(["New Hot Spot", "consecutive_hot", "intensifying hot", "persistent cold",
                                "No Pattern Detected"], n)
    gdf["risk"] = np.r_[np.zeros(3), np.linspace(0.1, 0.9, n - 3)]  # ties at the low end
    gdf["flagged"] = gdf["risk"] > 0.75
    gdf["minutes"] = np.r_[np.nan, np.linspace(1, 25, n - 1)]
    return gdf


@pytest.fixture(scope="session")
def grids(cells) -> gpd.GeoDataFrame:
    """Four grids (2 x 2 split of the patch) with Chinese names, every tier, and officers 0, 0.5, 1, 3
    (none, shared, one, 3+)."""
    w, s, e, n = cells.total_bounds
    mx, my = (w + e) / 2, (s + n) / 2
    boxes = [shapely.box(w, s, mx, my), shapely.box(mx, s, e, my), shapely.box(w, my, mx, n),
             shapely.box(mx, my, e, n)]
    return gpd.GeoDataFrame({
        "code": ["G01", "G02", "G03", "G04"],
        "name": ["东风社区", "南湖村", "老城小区", "商业街区"],
        "tier": [1, 2, 3, 4],
        "drivers_zh": ["盗窃多", "纠纷多", "人口密", "无"],
        "drivers_en": ["theft", "disputes", "dense population", "none"],
        "officers": [0, 0.5, 1, 3],
        "auxiliaries": [1, 2, 2, 3],
        "reason": ["农村网格：1 名辅警", "一警多村", "城市网格最低 1 名", "重点区域 +1 辅警"],
    }, geometry=boxes, crs="EPSG:4326")


@pytest.fixture(scope="session")
def beats(grids) -> gpd.GeoDataFrame:
    """Two beats made of two grids each, sharing a border (so they must get different colours)."""
    g = grids.assign(beat=["B1", "B1", "B2", "B2"]).dissolve("beat").reset_index()
    return g.assign(workload=[120.0, 80.0], deviation=[0.2, -0.2], officers=[1, 1])[
        ["beat", "workload", "deviation", "officers", "geometry"]]


@pytest.fixture(scope="session")
def posts(cells) -> gpd.GeoDataFrame:
    """Two police posts (points) with Chinese names."""
    lon, lat = cell_centroids(cells["cell"].iloc[:2])
    return gpd.GeoDataFrame({"code": ["P1", "P2"], "name": ["东风警务室", "南湖警务室"]},
                            geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


@pytest.fixture(scope="session")
def uncovered(cells) -> gpd.GeoDataFrame:
    """The cells farther than 15 minutes, merged into one area."""
    far = cells[cells["minutes"] > 15]
    return gpd.GeoDataFrame(geometry=[far.union_all()], crs="EPSG:4326")
