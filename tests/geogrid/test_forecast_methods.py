"""Forecast methods: they beat last-period counts where a trend was planted, honour origin=, and aggregate to grids."""
import h3
import numpy as np
import pandas as pd
import pytest

from geogrid.cells import points_to_cells, str_to_cell, study_area_cells
from geogrid.errors import InputError, NotFound
from geogrid.forecast import (
    History, LastPeriod, LongWindow, backtest, forecast, make_method, scores_to_grids, summarise, weekly_periods,
)

START = pd.Timestamp("2019-01-01")
DAYS = 3 * 364
MARGIN = 1.10  # a method "beats" last_period when its mean PAI@5% is at least 10 % higher


def trend_city(seed: int = 3):
    """127 cells (6 rings), three years of daily Poisson incidents.

    Stable hotspots (gamma-distributed rates) plus 8 trend cells whose rate grows linearly from ~0 to
    0.25 a day: a one-week count is noisy, the trend and the hotspots are not.
    """
    rng = np.random.default_rng(seed)
    cells = np.array(sorted(str_to_cell(c) for c in h3.grid_disk(h3.latlng_to_cell(41.88, -87.63, 9), 6)))
    base = 0.02 * rng.gamma(0.6, size=len(cells)) / 0.6
    trend = np.zeros(len(cells))
    trend[rng.choice(len(cells), 8, replace=False)] = 0.25
    t = np.arange(DAYS) / DAYS
    rate = base[:, None] + trend[:, None] * t[None, :]
    counts = rng.poisson(rate)
    cell_idx, day = np.nonzero(counts)
    reps = counts[cell_idx, day]
    cell_idx, day = np.repeat(cell_idx, reps), np.repeat(day, reps)
    incidents = pd.DataFrame({
        "occurred_at": START + pd.to_timedelta(day + rng.uniform(0, 1, len(day)), unit="D"),
        "h3": cells[cell_idx],
        "category": rng.choice(["dispute", "theft"], len(day)),
    })
    return incidents, cells


@pytest.fixture(scope="module")
def city_results():
    incidents, cells = trend_city()
    periods = weekly_periods(2021)[-12:]
    res = backtest(incidents, cells, periods, ["last_period", "kde", "learned", "stacked"], area_shares=(0.05,))
    return summarise(res).set_index("method")["pai"]


@pytest.mark.parametrize("method", ["kde", "learned", "stacked"], ids=["kde", "learned", "stacked"])
def test_method_beats_last_period_on_planted_trend(city_results, method):
    assert city_results[method] >= MARGIN * city_results["last_period"]


def test_reported_only_drops_discovered_incidents():
    """A cell full of patrol-discovered incidents ranks first with all incidents and not with origin='reported'."""
    incidents, cells = trend_city()
    rng = np.random.default_rng(0)
    incidents["origin"] = "reported"
    patrolled = cells[0]
    extra = pd.DataFrame({"occurred_at": START + pd.to_timedelta(rng.uniform(0, DAYS, 400), unit="D"),
                          "h3": patrolled, "category": "theft", "origin": "discovered"})
    both = pd.concat([incidents, extra], ignore_index=True)
    cutoff = START + pd.Timedelta(days=DAYS)
    history = History(both, cells, cutoff)
    everything = LongWindow().fit(history, 7).scores_
    reported = LongWindow(origin="reported").fit(history, 7).scores_
    assert everything.idxmax() == patrolled
    reference = LongWindow().fit(History(incidents, cells, cutoff), 7).scores_
    pd.testing.assert_series_equal(reported, reference)
    learned = make_method("learned", origin="reported", n_origins=12, max_iter=30).fit(history, 7).scores_
    assert learned.rank(ascending=False)[patrolled] > 10


def test_origin_option_needs_the_column():
    incidents, cells = trend_city()
    with pytest.raises(InputError, match="'origin'"):
        LastPeriod(origin="reported").fit(History(incidents, cells, "2021-06-01"), 7)


def test_forecast_function_and_grid_totals():
    """Grid scores are the sums of their cells' scores; cells outside every grid are left out."""
    incidents, cells = trend_city()
    scores = forecast(incidents, cells, "2021-06-01", 28, method="last_period")
    cell_grid = pd.DataFrame({"cell": cells[:20], "grid": ["A"] * 10 + ["B"] * 10})
    grids = scores_to_grids(scores, cell_grid)
    assert grids["A"] == pytest.approx(scores.loc[cells[:10]].sum())
    assert grids["B"] == pytest.approx(scores.loc[cells[10:20]].sum())


def test_scores_cover_every_cell_including_empty_ones():
    incidents, cells = trend_city()
    scores = forecast(incidents, cells, "2019-02-01", 7, method="kde")
    assert scores.index.equals(pd.Index(cells, name="cell")) and (scores >= 0).all()


def test_unknown_method_and_bad_horizon():
    incidents, cells = trend_city()
    with pytest.raises(NotFound, match="unknown forecast method"):
        make_method("oracle")
    with pytest.raises(InputError, match="horizon_days"):
        forecast(incidents, cells, "2021-06-01", 0)


def test_generated_city_kde_beats_last_period():
    """The demo city (geogrid.generate) plants growing, fading and stable hotspots over a year."""
    from geogrid.generate import generate_city

    city = generate_city(seed=5, n_incidents=40_000, n_grids=120, n_posts=8, n_officers=40, n_auxiliaries=60)
    inc = city.incidents
    incidents = pd.DataFrame({
        "occurred_at": inc["occurred_at"],
        "h3": points_to_cells(inc.geometry.x.to_numpy(), inc.geometry.y.to_numpy(), 9),
    })
    cells = study_area_cells(city.boundary, 9)
    t0 = incidents["occurred_at"].min().normalize()
    periods = [(t0 + pd.Timedelta(days=d), t0 + pd.Timedelta(days=d + 7)) for d in range(300, 356, 7)]
    res = summarise(backtest(incidents, cells, periods, ["last_period", "kde"], area_shares=(0.05,)))
    pai = res.set_index("method")["pai"]
    assert pai["kde"] >= MARGIN * pai["last_period"]


def test_learned_is_a_correction_of_its_baseline():
    """With (almost) no boosting the learned model ranks cells exactly as its exposure does — the KDE
    by default, the stacked blend with offset="blend"; with boosting it departs from it. A plain model
    (offset=False) is still available."""
    from scipy import stats

    from geogrid.forecast import KDE, Learned

    incidents, cells = trend_city()
    history = History(incidents, cells, "2021-10-04")
    kde = KDE().fit(history, 7).scores_
    frozen_kde = Learned(n_origins=8, max_iter=1, learning_rate=1e-9).fit(history, 7).scores_
    assert stats.spearmanr(frozen_kde, kde).statistic == pytest.approx(1.0, abs=1e-9)
    frozen = Learned(offset="blend", n_origins=8, max_iter=1, learning_rate=1e-9).fit(history, 7)
    assert stats.spearmanr(frozen.scores_, frozen.base_).statistic == pytest.approx(1.0, abs=1e-9)
    # the blend is learnt, not the fixed KDE / 5-year mix: it ranks cells differently from the KDE
    assert stats.spearmanr(frozen.base_, kde).statistic < 0.999
    learned = Learned(n_origins=12, max_iter=40).fit(history, 7)
    assert stats.spearmanr(learned.scores_, kde).statistic < 0.999
    assert learned.feature_names_[-1] == "log_base" and learned.n_train_rows_ > 0
    blend = Learned(offset="blend", n_origins=12, max_iter=40).fit(history, 7)
    assert stats.spearmanr(blend.scores_, blend.base_).statistic < 0.999
    assert "log_count_1820d" in blend.feature_names_ and blend.n_train_rows_ > 0
    plain = Learned(n_origins=12, max_iter=40, offset=False, target_days=7).fit(history, 7).scores_
    assert plain.notna().all() and (plain > 0).all()


def test_learned_offset_must_be_known():
    from geogrid.forecast import Learned

    incidents, cells = trend_city()
    with pytest.raises(InputError, match="offset"):
        Learned(offset="median").fit(History(incidents, cells, "2021-10-04"), 7)


def test_learned_target_days_must_be_positive():
    from geogrid.forecast import Learned

    incidents, cells = trend_city()
    with pytest.raises(InputError, match="target_days"):
        Learned(target_days=0).fit(History(incidents, cells, "2021-10-04"), 7)


def test_stacked_fits_on_the_top_cells_and_rescales_to_counts():
    """top_share trains on fewer rows; the forecast is in expected incidents per horizon (sums to the
    city's recent level), and the stack weighs its inputs (it is not one fixed baseline)."""
    from geogrid.forecast import Stacked

    incidents, cells = trend_city()
    history = History(incidents, cells, "2021-10-04")
    full = Stacked().fit(history, 7)
    top = Stacked(top_share=0.2).fit(history, 7)
    assert 0 < top.n_train_rows_ < full.n_train_rows_
    assert full.scores_.sum() == pytest.approx(history.window(364).sum() * 7 / 364)
    assert (full.scores_ > 0).all()
    assert sum(abs(v) > 1e-3 for v in full.coefficients_.values()) >= 2


@pytest.mark.parametrize("params, match", [({"target_days": 0}, "target_days"), ({"n_origins": 2.5}, "n_origins"),
                                           ({"top_share": 1.5}, "top_share"), ({"floor": 0}, "floor")])
def test_stacked_refuses_bad_parameters(params, match):
    from geogrid.forecast import Stacked

    incidents, cells = trend_city()
    with pytest.raises(InputError, match=match):
        Stacked(**params).fit(History(incidents, cells, "2021-10-04"), 7)


@pytest.mark.parametrize("method", ["stacked", "learned"])
def test_learned_methods_say_when_history_is_too_short_to_fit(method):
    """With under a year of history there is no training origin: the 52-week counts are used, and said."""
    incidents, cells = trend_city()
    short = History(incidents, cells, START + pd.Timedelta(days=20))
    fitted = make_method(method).fit(short, 7)
    assert fitted.fallback_ is not None and "52-week counts used" in fitted.fallback_
    np.testing.assert_array_equal(fitted.scores_.to_numpy(), short.window(364))
    assert make_method(method).fit(History(incidents, cells, "2021-10-04"), 7).fallback_ is None
    assert LongWindow().fit(short, 7).fallback_ is None
