"""Emerging hot spots: pattern rules on hand-made series, Mann–Kendall vs pymannkendall, a full fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pymannkendall
import pytest
from shapely.geometry import box

from geogrid.cells import points_to_cells
from geogrid.emerging import EmergingHotspots, classify_series, mann_kendall
from geogrid.errors import InputError, NotEnoughData

MK_TOL = 1e-9
SIG, FLAT, UP, DOWN = 0.001, 0.5, 3.0, -3.0

# (states, mk_z, mk_p, expected) — 10 slices, +1 hot, -1 cold, 0 neither
SERIES = {
    "new-hot": ([0] * 9 + [1], 0.5, FLAT, ("new", "hot")),
    "new-after-cold-is-new": ([-1] + [0] * 8 + [1], 0.5, FLAT, ("new", "hot")),
    "consecutive-hot": ([0] * 7 + [1] * 3, UP, SIG, ("consecutive", "hot")),
    "intensifying-hot": ([1] * 10, UP, SIG, ("intensifying", "hot")),
    "diminishing-hot": ([1] * 10, DOWN, SIG, ("diminishing", "hot")),
    "persistent-hot-90pct": ([1] * 4 + [0] + [1] * 5, UP, FLAT, ("persistent", "hot")),
    "run-of-9-is-persistent": ([0] + [1] * 9, 0.0, FLAT, ("persistent", "hot")),
    "sporadic-hot": ([0, 1, 0, 0, 1, 0, 0, 1, 0, 1], 0.0, FLAT, ("sporadic", "hot")),
    "sporadic-run-after-gap": ([1, 0, 0, 0, 0, 0, 0, 0, 1, 1], 0.0, FLAT, ("sporadic", "hot")),
    "oscillating-hot": ([-1, 0, 1, 0, -1, 0, 0, 0, 1, 1], 0.0, FLAT, ("oscillating", "hot")),
    "historical-hot": ([1] * 9 + [0], DOWN, SIG, ("historical", "hot")),
    "new-cold": ([0] * 9 + [-1], 0.0, FLAT, ("new", "cold")),
    "intensifying-cold": ([-1] * 10, DOWN, SIG, ("intensifying", "cold")),
    "diminishing-cold": ([-1] * 10, UP, SIG, ("diminishing", "cold")),
    "oscillating-cold": ([0, 1, 0, -1, 0, 0, 0, 0, 0, -1], 0.0, FLAT, ("oscillating", "cold")),
    "historical-cold": ([-1] * 9 + [0], 0.0, FLAT, ("historical", "cold")),
    "no-pattern-quiet": ([0] * 10, 0.0, FLAT, ("no_pattern", None)),
    "no-pattern-old-blip": ([1, 1] + [0] * 8, DOWN, SIG, ("no_pattern", None)),
}


@pytest.mark.parametrize("states, mk_z, mk_p, expected", SERIES.values(), ids=SERIES.keys())
def test_pattern_rules_on_hand_made_series(states, mk_z, mk_p, expected):
    assert classify_series(np.array(states), mk_z, mk_p, alpha=0.05) == expected


def test_mann_kendall_equals_pymannkendall():
    """Random series, some with ties (rounded) and one constant, against the reference package."""
    rng = np.random.default_rng(3)
    y = np.vstack([
        rng.normal(size=(5, 15)) + np.linspace(0, 2, 15),
        np.round(rng.normal(size=(5, 15)), 0),
        np.zeros((1, 15)),
    ])
    z, p = mann_kendall(y)
    for i, row in enumerate(y):
        ref = pymannkendall.original_test(row)
        assert z[i] == pytest.approx(ref.z, abs=MK_TOL)
        assert p[i] == pytest.approx(ref.p, abs=MK_TOL)


AREA = box(-87.70, 41.80, -87.64, 41.845)
CENTRES = {"steady": (-87.688, 41.812), "late": (-87.655, 41.835), "last": (-87.660, 41.808)}
WEEKS = 12


@pytest.fixture(scope="module")
def weekly_incidents() -> pd.DataFrame:
    """12 weeks: uniform background, a steady blob every week, a blob in the last 3 weeks only,
    and a blob in the last week only (sigma 200 m, ~120 incidents a week each)."""
    rng = np.random.default_rng(11)
    x0, y0, x1, y1 = AREA.bounds
    t0 = pd.Timestamp("2024-01-01", tz="Asia/Shanghai")  # a Monday
    frames = []
    for w in range(WEEKS):
        lon, lat = [rng.uniform(x0, x1, 250)], [rng.uniform(y0, y1, 250)]
        for name, (bx, by) in CENTRES.items():
            if name == "steady" or (name == "late" and w >= WEEKS - 3) or (name == "last" and w == WEEKS - 1):
                lon.append(rng.normal(bx, 0.0024, 120))
                lat.append(rng.normal(by, 0.0018, 120))
        lon, lat = np.concatenate(lon), np.concatenate(lat)
        frames.append(pd.DataFrame({
            "lon": lon, "lat": lat, "category": "theft",
            "occurred_at": t0 + pd.Timedelta(weeks=w) + pd.to_timedelta(rng.uniform(0, 7 * 86400, lon.size), unit="s"),
        }))
    return pd.concat(frames, ignore_index=True)


def test_fit_finds_steady_late_and_last_blobs(weekly_incidents):
    model = EmergingHotspots(period="W", k=1, res=9).fit(weekly_incidents, AREA)
    pat = model.patterns_.set_index("cell")
    assert model.z_.shape[1] == WEEKS and (pat["n_slices"] == WEEKS).all()
    assert pat["count"].sum() == model.counts_.to_numpy().sum()
    expect = {"steady": {"persistent", "intensifying", "diminishing"}, "late": {"consecutive"}, "last": {"new"}}
    for name, (x, y) in CENTRES.items():
        cell = int(points_to_cells(np.array([x]), np.array([y]), 9)[0])
        assert pat.loc[cell, "pattern"] in expect[name], name
        assert pat.loc[cell, "hot_or_cold"] == "hot"
    quiet = pat["pattern"] == "no_pattern"
    assert quiet.mean() > 0.7  # the background is quiet
    assert pat.loc[~quiet, "label"].str.endswith("Spot").all()


def test_monthly_needs_enough_slices(weekly_incidents):
    with pytest.raises(NotEnoughData, match="M slices"):
        EmergingHotspots(period="M").fit(weekly_incidents, AREA)


def test_bad_period(weekly_incidents):
    with pytest.raises(InputError, match="period"):
        EmergingHotspots(period="D").fit(weekly_incidents, AREA)
