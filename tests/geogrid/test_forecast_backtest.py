"""The backtest and its leakage guard: nothing at or after a cut-off reaches a forecaster."""
import h3
import numpy as np
import pandas as pd
import pytest

from geogrid.cells import str_to_cell
from geogrid.errors import InputError, LeakageError
from geogrid.forecast import (
    KDE, Forecaster, History, Learned, LongWindow, Stacked, backtest, block_periods, summarise, weekly_periods,
)

CUTOFF = pd.Timestamp("2021-03-01")


@pytest.fixture(scope="module")
def small_city():
    """61 cells (4 rings) and ~2,000 incidents over 400 days, some of them after CUTOFF."""
    rng = np.random.default_rng(7)
    cells = np.array(sorted(str_to_cell(c) for c in h3.grid_disk(h3.latlng_to_cell(41.88, -87.63, 9), 4)))
    n = 2000
    weights = rng.gamma(0.5, size=len(cells))
    start = CUTOFF - pd.Timedelta(days=330)
    incidents = pd.DataFrame({
        "occurred_at": start + pd.to_timedelta(rng.uniform(0, 400, n), unit="D"),
        "h3": rng.choice(cells, size=n, p=weights / weights.sum()),
        "origin": rng.choice(["reported", "discovered"], size=n, p=[0.7, 0.3]),
    })
    return incidents, cells


class Peeker(Forecaster):
    """A deliberately leaky method: it asks for the counts of the very period it forecasts."""

    name = "peeker"

    def _score(self, history, horizon):
        return history.counts(history.cutoff, history.cutoff + pd.Timedelta(days=horizon))


def test_history_holds_nothing_at_or_after_cutoff(small_city):
    incidents, cells = small_city
    h = History(incidents, cells, CUTOFF)
    assert h.incidents["occurred_at"].max() < CUTOFF
    assert h.age_matrix().sum() == (incidents["occurred_at"] < CUTOFF).sum()
    assert h.incidents["age"].min() >= 0


def test_leaky_method_is_caught_by_backtest(small_city):
    incidents, cells = small_city
    periods = block_periods(CUTOFF, 2, 7)
    with pytest.raises(LeakageError, match="after the cut-off"):
        backtest(incidents, cells, periods, {"peeker": Peeker()})


def test_negative_shift_is_refused(small_city):
    incidents, cells = small_city
    with pytest.raises(LeakageError):
        History(incidents, cells, CUTOFF).window(7, shift=-7)


def test_backtest_with_a_slicer_that_sees_the_future_fails(small_city, monkeypatch):
    """A bug in the slicer (keeping every row) must be caught by the guard, not trusted."""
    incidents, cells = small_city
    monkeypatch.setattr(History, "_select", lambda self, frame: frame)
    with pytest.raises(LeakageError, match="holds incidents up to"):
        backtest(incidents, cells, block_periods(CUTOFF, 1, 7), ["kde"])


@pytest.mark.parametrize("method", [KDE(), LongWindow(), Learned(n_origins=8, max_iter=20),
                                    Stacked(target_days=28, n_origins=6, step_days=28, min_past_days=90),
                                    Stacked(target_days=28, n_origins=6, step_days=28, min_past_days=90, top_share=0.3)],
                         ids=["kde", "long_window", "learned", "stacked", "stacked_top"])
def test_forecast_ignores_the_future(small_city, method):
    """Scrambling every incident at or after the cut-off leaves the forecast unchanged."""
    incidents, cells = small_city
    future = incidents["occurred_at"] >= CUTOFF
    scrambled = incidents.copy()
    scrambled.loc[future, "h3"] = cells[0]
    a = method.fit(History(incidents, cells, CUTOFF), 7).scores_
    b = type(method)(**{k: v for k, v in vars(method).items() if not k.endswith("_")}).fit(
        History(scrambled, cells, CUTOFF), 7).scores_
    pd.testing.assert_series_equal(a, b)
    if isinstance(method, Stacked):  # the GLM was really fitted, not the no-history fallback
        assert method.n_train_rows_ > 0 and len(method.coefficients_) == len(method.feature_names_)


def test_backtest_rows_and_summary(small_city):
    incidents, cells = small_city
    periods = block_periods(CUTOFF, 3, 7)
    res = backtest(incidents, cells, periods, ["last_period", "kde"], area_shares=(0.05, 0.1))
    assert len(res) == 3 * 2 * 2
    assert set(res["horizon_days"]) == {7}
    summary = summarise(res)
    assert len(summary) == 4 and (summary["n_periods"] == 3).all()
    assert summary["hit_rate"].between(0, 1).all()


def test_iso_weeks_of_2019():
    weeks = weekly_periods(2019)
    assert len(weeks) == 52
    assert weeks[0][0] == pd.Timestamp("2018-12-31") and weeks[-1][1] == pd.Timestamp("2019-12-30")
    assert len(weekly_periods(2020)) == 53


def test_fractional_period_is_refused(small_city):
    incidents, cells = small_city
    with pytest.raises(InputError, match="whole number of days"):
        backtest(incidents, cells, [(CUTOFF, CUTOFF + pd.Timedelta(hours=36))], ["kde"])


def test_missing_columns_are_named(small_city):
    incidents, cells = small_city
    with pytest.raises(InputError, match="occurred_at"):
        History(incidents.rename(columns={"occurred_at": "t"}), cells, CUTOFF)
    with pytest.raises(InputError, match="'h3'"):
        History(incidents.drop(columns="h3"), cells, CUTOFF)
