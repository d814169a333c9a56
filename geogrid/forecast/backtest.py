"""Rolling-origin backtest: each test period is forecast from the incidents before it starts, and only those.

For every period ``[start, end)`` the backtest builds a fresh :class:`History` with cut-off ``start``
(which refuses to hold or answer anything at or after ``start``), fits a fresh copy of every method on
it, and scores the forecast against the incidents that did happen in the period.
"""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from geogrid.errors import InputError, LeakageError
from geogrid.forecast.history import History, cell_column, check_cells, check_incidents
from geogrid.forecast.methods import Forecaster, make_method
from geogrid.forecast.metrics import evaluate

METRICS = ["hit_rate", "pai", "pei", "pei_star", "warning_accuracy", "warning_ceiling"]


def weekly_periods(year: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The ISO weeks of ``year`` as ``[Monday, next Monday)`` pairs (52 or 53 of them)."""
    first = pd.Timestamp(dt.date.fromisocalendar(year, 1, 1))
    n = dt.date(year, 12, 28).isocalendar().week  # 28 December is always in the year's last ISO week
    return [(first + pd.Timedelta(weeks=i), first + pd.Timedelta(weeks=i + 1)) for i in range(n)]


def block_periods(start, n: int, days: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``n`` consecutive blocks of ``days`` days from ``start`` (e.g. 13 × 28 days from 1 January)."""
    start = pd.Timestamp(start)
    return [(start + pd.Timedelta(days=i * days), start + pd.Timedelta(days=(i + 1) * days)) for i in range(n)]


def backtest(
    incidents: pd.DataFrame,
    cells,
    periods: Sequence[tuple],
    methods: Mapping[str, Forecaster] | Sequence[str] = ("last_period", "long_window", "kde", "prospective", "learned"),
    area_shares: Sequence[float] = (0.01, 0.05, 0.10),
    *,
    time_col: str = "occurred_at",
    seed: int = 0,
    on_period: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Score each method on each test period; one row per period × method × area share.

    Parameters
    ----------
    incidents : DataFrame with ``time_col`` and ``h3``/``cell``; optional ``category``, ``origin``.
    cells : the study-area cells (the denominator of every area share).
    periods : ``(start, end)`` pairs; the horizon of a period is its length in whole days.
    methods : names (see :func:`make_method`) or a mapping label → unfitted forecaster.
    area_shares : shares of the cells to flag.
    seed : tie-breaking seed for flagging.
    on_period : called as ``on_period(i, n)`` after each period (progress bars live in the caller).

    Returns
    -------
    DataFrame with ``period_start, period_end, horizon_days, method, area_share, n_flagged`` and the
    metrics of :mod:`geogrid.forecast.metrics`. Average it with :func:`summarise`.
    """
    cells = check_cells(cells)
    incidents = check_incidents(incidents, time_col)
    if isinstance(methods, Mapping):
        protos = dict(methods)
    else:
        protos = {name: make_method(name) for name in methods}
    if not protos:
        raise InputError("methods is empty: name at least one forecast method")
    pos = _positions(incidents, cells)
    times = incidents[time_col]
    rows = []
    for i, (start, end) in enumerate(periods):
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        horizon = _horizon(start, end)
        history = History(incidents, cells, start, time_col=time_col)
        in_period = ((times >= start) & (times < end)).to_numpy() & (pos >= 0)
        actual = np.bincount(pos[in_period], minlength=len(cells)).astype(np.float64)
        for label, proto in protos.items():
            method = copy.deepcopy(proto)
            scores = method.fit(history, horizon).predict()
            _check_forecast(scores, cells, history, label)
            for r in evaluate(scores.to_numpy(), actual, area_shares, seed=seed):
                rows.append({"period_start": start, "period_end": end, "horizon_days": horizon,
                             "method": label, "n_incidents": int(actual.sum()), **r})
        if on_period is not None:
            on_period(i + 1, len(periods))
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Metrics averaged over test periods, per horizon × method × area share."""
    keys = ["horizon_days", "method", "area_share"]
    out = results.groupby(keys, sort=False)[METRICS].mean().reset_index()
    out["n_periods"] = results.groupby(keys, sort=False).size().to_numpy()
    return out


def _horizon(start: pd.Timestamp, end: pd.Timestamp) -> int:
    days = (end - start) / pd.Timedelta(days=1)
    if days < 1 or days != int(days):
        raise InputError(f"test period {start} – {end} must last a positive whole number of days")
    return int(days)


def _positions(incidents: pd.DataFrame, cells: np.ndarray) -> np.ndarray:
    """Row of each incident's cell in ``cells``, -1 if outside the study area."""
    cell = incidents[cell_column(incidents)].to_numpy(dtype=np.int64)
    pos = np.minimum(np.searchsorted(cells, cell), len(cells) - 1)
    return np.where(cells[pos] == cell, pos, -1)


def _check_forecast(scores: pd.Series, cells: np.ndarray, history: History, label: str) -> None:
    if not isinstance(scores, pd.Series) or not np.array_equal(scores.index.to_numpy(), cells):
        raise InputError(f"method {label!r} must score exactly the study-area cells, in order")
    cutoff = getattr(history, "cutoff", None)
    if cutoff is None or history.incidents[history.time_col].max() >= cutoff:
        raise LeakageError(f"method {label!r} was fitted on a history that reaches its own test period")
