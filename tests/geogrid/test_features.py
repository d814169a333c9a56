"""Tests of geogrid.features: counts, weights, areas, rates, trend and the optional extras."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geogrid.errors import InputError
from geogrid.features import grid_features

AREA_RTOL = 2e-3  # equal-area projection against the spherical-excess area of a 0.01° square


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    """Three 0.01° squares at 39° N: a busy urban key-area grid, a quiet urban one, an empty rural one."""
    return gpd.GeoDataFrame(
        {"code": ["A", "B", "C"], "kind": ["urban", "urban", "rural"], "population": [2000, 1000, 0],
         "key_areas": [["old_compound", "urban_village"], [], None]},
        geometry=[box(116.00, 39.0, 116.01, 39.01), box(116.01, 39.0, 116.02, 39.01),
                  box(116.02, 39.0, 116.03, 39.01)], crs="EPSG:4326")


@pytest.fixture
def incidents() -> pd.DataFrame:
    """Grid A: 1 theft in the first half of the year, 3 thefts + 1 robbery in the second; grid B: 1 dispute."""
    t = pd.to_datetime(["2024-01-10", "2024-10-01", "2024-11-01", "2024-12-01", "2024-12-20", "2024-03-01"],
                       utc=True)
    return pd.DataFrame({"grid_code": ["A", "A", "A", "A", "A", "B"],
                         "category": ["theft", "theft", "theft", "theft", "robbery", "neighbour_dispute"],
                         "occurred_at": t})


def test_counts_and_weights(grids, incidents):
    f = grid_features(grids, incidents, severity={"theft": 2.0, "robbery": 6.0}, period_days=365)
    assert f.loc["A", ["n_theft", "n_robbery", "incidents"]].tolist() == [4, 1, 5]
    assert f.loc["A", "weighted_incidents"] == pytest.approx(4 * 2.0 + 6.0)
    assert f.loc["B", "weighted_incidents"] == pytest.approx(1.0)  # codes missing from the dict weigh 1
    assert f.loc["C", "incidents"] == 0


def test_area_and_rates(grids, incidents):
    f = grid_features(grids, incidents, severity={"theft": 2.0, "robbery": 6.0}, period_days=730)
    # spherical-excess area of a 0.01° x 0.01° cell at 39° N (R = 6371.0088 km, authalic-ish)
    lat0, lat1 = np.radians(39.0), np.radians(39.01)
    expected = 6371.0088**2 * np.radians(0.01) * (np.sin(lat1) - np.sin(lat0))
    assert f["area_km2"].to_numpy() == pytest.approx(np.full(3, expected), rel=AREA_RTOL)
    years = 2.0
    assert f.loc["A", "density_per_km2"] == pytest.approx(14.0 / f.loc["A", "area_km2"] / years)
    assert f.loc["A", "per_1000_residents"] == pytest.approx(14.0 / 2000 * 1000 / years)
    assert np.isnan(f.loc["C", "per_1000_residents"])  # no residents: rate undefined, not infinite


def test_trend_and_flags(grids, incidents):
    f = grid_features(grids, incidents, severity={"theft": 2.0, "robbery": 6.0})
    assert f.loc["A", "trend"] == pytest.approx(np.log((3 * 2 + 6 + 1) / (2 + 1)))
    assert f.loc["C", "trend"] == 0.0
    assert f.loc["A", ["key_old_compound", "key_urban_village", "key_commercial_street"]].tolist() == [True, True, False]
    assert f["n_key_areas"].tolist() == [2, 0, 0]
    assert f["period_days"].iloc[0] == pytest.approx((incidents.occurred_at.max() - incidents.occurred_at.min()).days)


def test_extras_fill_missing_grids(grids, incidents):
    hot = pd.DataFrame({"code": ["A"], "hotspot_share": [0.4]})
    fc = pd.Series({"A": 3.0, "B": 1.0})
    f = grid_features(grids, incidents, hotspot_share=hot, forecast=fc, period_days=365)
    assert f["hotspot_share"].tolist() == [0.4, 0.0, 0.0]
    assert f["forecast_risk"].tolist() == [3.0, 1.0, 0.0]
    g = grid_features(grids, incidents, period_days=365)
    assert g["hotspot_share"].isna().all() and g["forecast_risk"].isna().all()


def test_spatial_join_when_no_grid_code(grids, incidents):
    pts = incidents.drop(columns="grid_code").assign(lon=[116.005] * 5 + [116.015], lat=39.005)
    f = grid_features(grids, pts, severity={}, period_days=365)
    assert f["incidents"].tolist() == [5, 1, 0]


@pytest.mark.parametrize(
    ("change", "match"),
    [(lambda g, i: (g.drop(columns="kind"), i), "kind"),
     (lambda g, i: (g.assign(kind="town"), i), "kind"),
     (lambda g, i: (g.assign(population=-1), i), "population"),
     (lambda g, i: (g.assign(code="A"), i), "duplicates"),
     (lambda g, i: (g, i.drop(columns="category")), "category"),
     (lambda g, i: (g, i.assign(occurred_at="not a time")), "occurred_at")],
    ids=["no-kind", "bad-kind", "negative-population", "duplicate-code", "no-category", "bad-time"])
def test_bad_input_names_the_column(grids, incidents, change, match):
    g, i = change(grids, incidents)
    with pytest.raises(InputError, match=match):
        grid_features(g, i, period_days=365)


def test_hotspot_share_out_of_range(grids, incidents):
    with pytest.raises(InputError, match="hotspot_share"):
        grid_features(grids, incidents, hotspot_share=pd.Series({"A": 1.5}), period_days=365)
