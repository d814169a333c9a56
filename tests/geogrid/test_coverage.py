"""Coverage shares against a brute-force loop over cells, posts and grids."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod
from shapely.geometry import Point, box

from geogrid.cells import cell_centroids, cells_to_polygons, study_area_cells
from geogrid.coverage import coverage
from geogrid.errors import InputError
from geogrid.travel import StraightLineTravel

# UTM (the model) against geodesic (the brute force): scale factor differences stay under 0.1 %.
REL_MINUTES = 1e-3
SHARE_TOL = 2e-3
LON0, LAT0 = 104.06, 30.66
DLON, DLAT = 1 / (111.32 * np.cos(np.radians(LAT0))), 1 / 110.57
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def city():
    """3 × 3 km of 1 km grids, res-8 cells with random incidents and population, 2 posts in one corner.

    The posts sit off-centre so that both thresholds cut through the city (some grids fully, some
    partly, some not covered), and the cells include zero-weight ones.
    """
    grids = gpd.GeoDataFrame(
        [{"code": f"G{i}{j}", "kind": "urban" if (i, j) == (0, 0) else "rural",
          "geometry": box(LON0 + i * DLON, LAT0 + j * DLAT, LON0 + (i + 1) * DLON, LAT0 + (j + 1) * DLAT)}
         for i in range(3) for j in range(3)], crs=4326)
    ids = study_area_cells(grids, 8)
    rng = np.random.default_rng(4)
    cells = pd.DataFrame({"cell": ids, "incidents": rng.poisson(3, len(ids)).astype(float),
                          "population": rng.integers(0, 500, len(ids)).astype(float)})
    posts = gpd.GeoDataFrame({"code": ["P1", "P2"]},
                             geometry=[Point(LON0 + 0.2 * DLON, LAT0 + 0.3 * DLAT),
                                       Point(LON0 + 1.1 * DLON, LAT0 + 0.2 * DLAT)], crs=4326)
    return grids, cells, posts


def _brute(grids, cells, posts, travel, ts):
    """Loops: geodesic distance to every post, cell area on the ellipsoid, grid by centroid containment."""
    lon, lat = cell_centroids(cells["cell"])
    polys = cells_to_polygons(cells["cell"])
    rows = []
    for c, x, y, poly, inc, pop in zip(cells["cell"], lon, lat, polys, cells["incidents"], cells["population"]):
        best = min(GEOD.inv(p.x, p.y, x, y)[2] * travel.circuity / (travel.urban_kmh * 1000 / 60)
                   for p in posts.geometry)
        grid = next((g for g, geom in zip(grids["code"], grids.geometry) if geom.contains(Point(x, y))), None)
        rows.append({"cell": c, "minutes": best, "grid": grid, "incidents": inc, "population": pop,
                     "area": abs(GEOD.geometry_area_perimeter(poly)[0])})
    df = pd.DataFrame(rows)

    def shares(part):
        return {f"{w}_{t:g}": part.loc[part["minutes"] <= t, w].sum() / part[w].sum() if part[w].sum() else np.nan
                for t in ts for w in ("incidents", "population", "area")}

    return df, shares(df), {g: shares(part) for g, part in df.groupby("grid")}


def test_shares_equal_brute_force(city):
    grids, cells, posts = city
    travel = StraightLineTravel(circuity=1.3, urban_kmh=30)
    cov = coverage(posts, cells, grids, travel, thresholds=(3, 5))
    df, total, per_grid = _brute(grids, cells, posts, travel, (3, 5))

    got = cov.cells_.set_index("cell").loc[df["cell"]]
    np.testing.assert_allclose(got["minutes"], df["minutes"], rtol=REL_MINUTES)
    assert 0 < got["within_3"].mean() < got["within_5"].mean() < 1  # thresholds cut through the city
    for t in (3, 5):
        for w in ("incidents", "population", "area"):
            assert cov.summary_.loc[float(t), w] == pytest.approx(total[f"{w}_{t}"], abs=SHARE_TOL)
    grid_rows = cov.grids_.set_index("code")
    for g, expected in per_grid.items():
        for key, value in expected.items():
            assert grid_rows.loc[g, key] == pytest.approx(value, abs=SHARE_TOL, nan_ok=True), (g, key)


def test_uncovered_polygons_hold_exactly_the_cells_beyond_each_threshold(city):
    grids, cells, posts = city
    cov = coverage(posts, cells, grids, StraightLineTravel(), thresholds=(5,))
    row = cov.uncovered_.iloc[0]
    beyond = cov.cells_[~cov.cells_["within_5"]]
    assert row["area_km2"] == pytest.approx(beyond["area_km2"].sum())
    lon, lat = cell_centroids(cov.cells_["cell"])
    inside = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).within(row.geometry).to_numpy()
    np.testing.assert_array_equal(inside, ~cov.cells_["within_5"].to_numpy())


def test_grid_cells_missing_from_the_input_count_with_zero_weight(city):
    """Only cells with incidents are passed; the area shares must still count the whole city."""
    grids, cells, posts = city
    full = coverage(posts, cells, grids, StraightLineTravel())
    sparse_input = coverage(posts, cells[cells["incidents"] > 0][["cell", "incidents"]], grids, StraightLineTravel())
    assert len(sparse_input.cells_) == len(full.cells_)
    assert sparse_input.summary_["area"].to_numpy() == pytest.approx(full.summary_["area"].to_numpy())
    assert sparse_input.summary_["incidents"].to_numpy() == pytest.approx(full.summary_["incidents"].to_numpy())
    assert sparse_input.summary_["population"].isna().all()  # no population given at all


def test_nearest_post_is_reported_by_code(city):
    grids, cells, posts = city
    cov = coverage(posts, cells, grids, StraightLineTravel())
    assert set(cov.cells_["nearest_post"]) == {"P1", "P2"}


@pytest.mark.parametrize(("change", "match"), [
    (lambda g, c, p: (g, c, p.drop(columns="code")), "code"),
    (lambda g, c, p: (g, c, p.iloc[:0]), "non-empty"),
    (lambda g, c, p: (g.drop(columns="kind"), c, p), "kind"),
    (lambda g, c, p: (g, c.assign(incidents=-1.0), p), "incidents"),
], ids=["posts-without-code", "no-posts", "grids-without-kind", "negative-incidents"])
def test_bad_inputs_name_the_problem(city, change, match):
    grids, cells, posts = change(*city)
    with pytest.raises(InputError, match=match):
        coverage(posts, cells, grids, StraightLineTravel())
