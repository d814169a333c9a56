"""Cell counts: zero cells of the study area, windows, categories, h3 reuse, population rates."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geogrid.cells import points_to_cells, study_area_cells
from geogrid.counts import cell_counts
from geogrid.errors import InputError, InvalidResolution

AREA = box(116.30, 39.90, 116.34, 39.93)  # ~3.4 km x 3.3 km in Beijing
TZ = "Asia/Shanghai"
RATE_TOL = 1e-9


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    """400 seeded points: most inside AREA, 20 outside it; two categories; one month."""
    rng = np.random.default_rng(42)
    n = 380
    lon = np.r_[rng.uniform(116.30, 116.34, n), rng.uniform(116.40, 116.41, 20)]
    lat = np.r_[rng.uniform(39.90, 39.93, n), rng.uniform(39.95, 39.96, 20)]
    t0 = pd.Timestamp("2024-05-01", tz=TZ)
    return pd.DataFrame({
        "lon": lon,
        "lat": lat,
        "occurred_at": t0 + pd.to_timedelta(np.arange(400) * 6300, unit="s"),  # ~29 days
        "category": np.where(np.arange(400) % 3 == 0, "dispute", "theft"),
    })


def test_study_area_cells_all_present_with_zeros(incidents):
    out = cell_counts(incidents, 10, AREA)
    assert out["cell"].tolist() == study_area_cells(AREA, 10).tolist()
    assert (out["count"] == 0).any()
    inside = np.isin(points_to_cells(incidents["lon"], incidents["lat"], 10), out["cell"])
    assert out["count"].sum() == inside.sum()  # the 20 outside points are dropped
    assert out["count"].dtype == np.int64


def test_without_area_counts_equal_groupby(incidents):
    out = cell_counts(incidents, 9)
    ref = pd.Series(points_to_cells(incidents["lon"], incidents["lat"], 9)).value_counts().sort_index()
    assert out["cell"].tolist() == ref.index.tolist()
    assert out["count"].tolist() == ref.tolist()


@pytest.mark.parametrize(
    "start, end, categories",
    [
        ("2024-05-10", None, None),
        (None, pd.Timestamp("2024-05-20", tz=TZ), None),
        ("2024-05-05", "2024-05-25", ["dispute"]),
        (None, None, "theft"),
    ],
    ids=["naive-start", "aware-end", "window-and-list", "single-category"],
)
def test_window_and_categories(incidents, start, end, categories):
    out = cell_counts(incidents, 9, start=start, end=end, categories=categories)
    t = incidents["occurred_at"]
    m = np.ones(len(incidents), dtype=bool)
    if start is not None:
        m &= (t >= pd.Timestamp(start).tz_localize(TZ)).to_numpy()
    if end is not None:
        m &= (t < end if isinstance(end, pd.Timestamp) else t < pd.Timestamp(end, tz=TZ)).to_numpy()
    if categories is not None:
        m &= incidents["category"].isin([categories] if isinstance(categories, str) else categories).to_numpy()
    assert out["count"].sum() == m.sum()


def test_h3_column_is_reused_when_resolution_matches(incidents):
    """An `h3` column at the asked resolution wins over lon/lat (it is the ingest's assignment)."""
    df = incidents.copy()
    one = points_to_cells(np.array([116.32]), np.array([39.915]), 9)[0]
    df["h3"] = one
    assert cell_counts(df, 9)["cell"].tolist() == [one]
    assert len(cell_counts(df, 10)) > 1  # other resolution: computed from lon/lat


def test_point_geometry_input(incidents):
    gdf = gpd.GeoDataFrame(
        incidents.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(incidents["lon"], incidents["lat"]),
        crs=4326,
    ).to_crs(3857)
    pd.testing.assert_frame_equal(cell_counts(gdf, 9, AREA), cell_counts(incidents, 9, AREA))


def test_population_from_grids_by_area(incidents):
    """Two grids split AREA; population is spread by area so the total is kept."""
    grids = gpd.GeoDataFrame(
        {"population": [6000.0, 2000.0]},
        geometry=[box(116.30, 39.90, 116.32, 39.93), box(116.32, 39.90, 116.34, 39.93)],
        crs=4326,
    )
    out = cell_counts(incidents, 9, AREA, population=grids)
    assert {"population", "rate_per_1000"} <= set(out.columns)
    known = out["population"].notna()
    # cells cut by the area's outer edge take shares too, but only study-area cells are listed
    assert out.loc[known, "population"].sum() == pytest.approx(8000, rel=0.1)
    rate = 1000 * out.loc[known, "count"] / out.loc[known, "population"]
    np.testing.assert_allclose(out.loc[known, "rate_per_1000"], rate, rtol=RATE_TOL)


def test_population_series_and_unknown_cells(incidents):
    out0 = cell_counts(incidents, 9, AREA)
    pop = pd.Series({int(out0["cell"].iloc[0]): 500.0, int(out0["cell"].iloc[1]): 0.0})
    out = cell_counts(incidents, 9, AREA, population=pop)
    assert out["rate_per_1000"].iloc[0] == pytest.approx(2.0 * out["count"].iloc[0])
    assert np.isnan(out["rate_per_1000"].iloc[1])  # zero residents: no rate
    assert out["rate_per_1000"].iloc[2:].isna().all()


@pytest.mark.parametrize("res", [6, 11, 9.0], ids=["too-coarse", "too-fine", "float"])
def test_resolution_range(incidents, res):
    with pytest.raises(InvalidResolution):
        cell_counts(incidents, res)


def test_naive_timestamps_rejected(incidents):
    df = incidents.assign(occurred_at=incidents["occurred_at"].dt.tz_localize(None))
    with pytest.raises(InputError, match="tz-aware"):
        cell_counts(df, 9, start="2024-05-02")


def test_missing_coordinates_rejected(incidents):
    df = incidents.copy()
    df.loc[3, "lat"] = np.nan
    with pytest.raises(InputError, match="lon/lat"):
        cell_counts(df, 9)
