"""Grid redesign: k contiguous, balanced grids from H3 cells, never crossing a hard line."""
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geogrid.errors import InputError
from geogrid.redesign import GridRedesign, cells_with_workload

CHICAGO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "chicago" / "converted"
BAND = 0.05  # the goal for redesigned grids
K = 8


@pytest.fixture(scope="module")
def district12_cells():
    """Res-9 cells of Chicago district 12 with 2019 sample incidents (many cells near zero)."""
    beats = gpd.read_file(CHICAGO / "police_beats.geojson")
    area = beats[beats["district"] == "12"].union_all()
    crimes = pd.read_csv(CHICAGO / "crimes_2019_sample50k.csv", usecols=["latitude", "longitude"]).dropna()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(crimes.longitude, crimes.latitude), crs=4326)
    cells = cells_with_workload(area, pts, res=9)
    cells["workload"] += 0.5  # every cell carries some patrol time, so empty cells still weigh
    return cells, area


def _single_polygons(cells, labels):
    metric = cells.to_crs(cells.estimate_utm_crs())
    return all(shapely.union_all(g.to_numpy()).geom_type == "Polygon"
               for _, g in metric.geometry.groupby(labels.to_numpy()))


def test_redesign_is_contiguous_and_balanced(district12_cells):
    cells, _ = district12_cells
    rd = GridRedesign(K, tolerance=BAND, seed=0, max_seconds=10).fit(cells)
    assert rd.labels_.nunique() == K
    assert _single_polygons(cells, rd.labels_)
    assert rd.report_["max_abs_dev"] <= max(BAND, rd.report_["lower_bound_dev"]) + 1e-6
    assert rd.grids_["workload"].sum() == pytest.approx(cells["workload"].sum())


def test_redesign_respects_a_river(district12_cells):
    """A line across the district: no proposed grid has cell centres on both sides of it."""
    cells, area = district12_cells
    c = area.centroid
    river = gpd.GeoSeries([shapely.LineString([(c.x - 0.2, c.y), (c.x + 0.2, c.y + 0.002)])], crs=4326)
    rd = GridRedesign(K, tolerance=BAND, seed=0, max_seconds=10).fit(cells, hard_boundaries=river)
    assert rd.report_["cut_links"] > 0
    assert _single_polygons(cells, rd.labels_)
    ctr = shapely.centroid(cells.geometry.to_numpy())  # degrees on purpose: the line is straight in them
    x, y = shapely.get_x(ctr), shapely.get_y(ctr)
    side = pd.Series(np.sign(y - (c.y + 0.002 * (x - (c.x - 0.2)) / 0.4)), index=cells.index)
    assert (side.groupby(rd.labels_).nunique() == 1).all()
    assert rd.report_["max_abs_dev"] <= max(BAND, rd.report_["lower_bound_dev"]) + 1e-6


def test_k_out_of_range(district12_cells):
    cells, _ = district12_cells
    with pytest.raises(InputError, match="k must be"):
        GridRedesign(len(cells) + 1).fit(cells)
