"""Tests of geogrid.tiers: planted tiers, drivers, parameters, and stability under resampling."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geogrid.categories import CategoryMap
from geogrid.errors import InputError, NotEnoughData
from geogrid.features import grid_features
from geogrid.generate import generate_city
from geogrid.tiers import DEFAULT_WEIGHTS, Tiering

MAX_TIER_CHANGE = 0.10  # the bound: a 95 % resample changes at most 10 % of tiers
N_GRIDS = 200


def _features(seed: int = 0) -> pd.DataFrame:
    """Synthetic features of 200 grids: log-normal incident volumes, 1 in 5 with a key area."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(0.3, 3.0, N_GRIDS)
    w = rng.lognormal(3.0, 1.0, N_GRIDS)
    pop = rng.integers(500, 8000, N_GRIDS).astype(float)
    return pd.DataFrame({
        "weighted_incidents": w, "density_per_km2": w / area, "per_1000_residents": w / pop * 1000,
        "hotspot_share": np.clip(rng.normal(0.1, 0.1, N_GRIDS), 0, 1), "forecast_risk": w * rng.uniform(0.8, 1.2, N_GRIDS),
        "n_key_areas": (rng.random(N_GRIDS) < 0.2).astype(int), "trend": rng.normal(0, 0.2, N_GRIDS),
        "kind": "urban", "population": pop}, index=pd.Index([f"G{i:03d}" for i in range(N_GRIDS)], name="code"))


@pytest.fixture
def planted() -> pd.DataFrame:
    """Synthetic features plus two planted grids: X with extreme weighted density, E an empty rural grid."""
    f = _features()
    f.loc["X"] = f.iloc[0]
    f.loc["X", ["weighted_incidents", "density_per_km2", "per_1000_residents", "forecast_risk"]] = [5000, 20000, 900, 5000]
    f.loc["X", ["hotspot_share", "n_key_areas"]] = [0.9, 2]
    f.loc["E"] = f.iloc[0]
    f.loc["E", ["weighted_incidents", "density_per_km2", "per_1000_residents", "forecast_risk",
                "hotspot_share", "n_key_areas", "trend", "kind"]] = [0, 0, 0, 0, 0, 0, 0, "rural"]
    return f


@pytest.mark.parametrize("method", ["jenks", "quantiles"], ids=["jenks", "quantiles"])
def test_planted_grids_get_the_expected_tiers(planted, method):
    t = Tiering(method=method, seed=0).fit(planted)
    assert t.tiers_["X"] == 1
    assert t.tiers_["E"] == 4
    assert sorted(t.tiers_.unique()) == [1, 2, 3, 4]
    assert len(t.breaks_) == 3 and np.all(np.diff(t.breaks_) > 0)


def test_score_is_monotone_in_each_feature(planted):
    t = Tiering(seed=0).fit(planted)
    busier = planted.copy()
    busier.loc["G005", "density_per_km2"] *= 10
    assert t._score(busier, store=False)["G005"] > t.scores_["G005"]
    assert (t.contributions_.sum(axis=1) - t.scores_).abs().max() < 1e-12


def test_drivers_in_both_languages(planted):
    t = Tiering(seed=0).fit(planted)
    d = t.drivers_.loc["X"]
    assert d["drivers_en"].split("; ")[0].startswith("high") or "key areas" in d["drivers_en"]
    assert len(d["drivers_en"].split("; ")) == 3 and len(d["drivers_zh"].split("；")) == 3
    assert "高" in d["drivers_zh"]
    assert "low weighted incident density" in t.drivers_.loc["E", "drivers_en"]


def test_missing_extras_are_dropped_and_weights_renormalised(planted):
    t = Tiering(seed=0).fit(planted.assign(forecast_risk=np.nan, hotspot_share=np.nan))
    assert set(t.weights_) == set(DEFAULT_WEIGHTS) - {"forecast_risk", "hotspot_share"}
    assert sum(t.weights_.values()) == pytest.approx(1.0)
    assert t.tiers_["X"] == 1


def test_predict_holds_the_fit(planted):
    t = Tiering(seed=0).fit(planted)
    assert t.predict(planted).equals(t.tiers_)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"method": "kmeans"}, "method"), ({"n_tiers": 1}, "n_tiers"), ({"weights": {"foo": 1.0}}, "foo"),
     ({"weights": {"trend": -1.0}}, "weights"), ({"n_boot": 0}, "n_boot")],
    ids=["method", "n_tiers", "unknown-feature", "negative-weight", "n_boot"])
def test_bad_parameters(planted, kwargs, match):
    with pytest.raises(InputError, match=match):
        Tiering(**kwargs).fit(planted)


def test_too_few_grids():
    with pytest.raises(NotEnoughData):
        Tiering().fit(_features().iloc[:5])


@pytest.fixture(scope="module")
def demo_city():
    """generate_city(seed=42) with 60k incidents (860 grids), categories mapped to canonical codes."""
    city = generate_city(seed=42, n_incidents=60_000)
    codes, _ = CategoryMap.default().map(city.incidents["category"])
    return city.grids, city.incidents.assign(category=codes)


def test_stable_under_95_percent_resamples(demo_city):
    """Re-running on 95 % resamples of the demo city's incidents changes at most 10 % of tiers."""
    grids, incidents = demo_city
    full = grid_features(grids, incidents)
    days = float(full["period_days"].iloc[0])
    base = Tiering(seed=0).fit(full).tiers_
    assert base.value_counts().min() >= 20  # four real classes, not a degenerate cut
    for seed in range(4):
        sub = incidents.sample(frac=0.95, random_state=seed)
        tiers = Tiering(seed=0).fit(grid_features(grids, sub, period_days=days)).tiers_
        assert (tiers != base).mean() <= MAX_TIER_CHANGE, f"resample {seed}"


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_fisher_jenks_bins_equal_mapclassify(k):
    """The vectorised Fisher–Jenks gives mapclassify's bins exactly, ties and bootstrap-like summaries included."""
    import warnings

    import mapclassify

    from geogrid.tiers import _fisher_jenks_rows, fisher_jenks_bins

    rng = np.random.default_rng(k)
    samples = [rng.normal(size=int(rng.integers(k + 3, 120))) for _ in range(10)]
    samples += [np.round(rng.normal(size=60), 1) for _ in range(5)]  # many ties
    samples += [np.quantile(rng.lognormal(size=400), np.linspace(0, 1, 101)) for _ in range(5)]  # as in fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mapclassify warns that numba is absent
        for x in samples:
            np.testing.assert_array_equal(fisher_jenks_bins(x, k), mapclassify.FisherJenks(x, k=k).bins)
        rows = np.vstack(samples[-5:])
        want = np.vstack([mapclassify.FisherJenks(r, k=k).bins for r in rows])
    np.testing.assert_array_equal(_fisher_jenks_rows(rows, k), want)
    assert fisher_jenks_bins(np.array([1.0, 1.0, 2.0] * 5), 3) is None  # fewer distinct values than classes
