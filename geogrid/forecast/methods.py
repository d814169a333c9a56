"""Forecasters of next-period risk per cell: baselines, kernel density and prospective hotspotting.

Every forecaster has the same shape: parameters in ``__init__``; ``fit(history, horizon_days)`` reads only
the :class:`~geogrid.forecast.history.History` it is given (incidents before the cut-off) and stores
``scores_``, a Series indexed by cell where a higher score means more expected incidents in the
``horizon_days`` after the cut-off. Scores rank cells; only ``last_period``, ``long_window`` and
``learned`` are on the scale of incident counts. A learned forecaster that has too little history to
fit says so in ``fallback_`` (None when it fitted) and scores by the 52-week counts instead.

``origin='reported'`` makes a forecaster learn only from incidents the public reported, not from those
patrols discovered: patrols find incidents where patrols are sent, so feeding them back would make a
forecast confirm itself (the runaway feedback loop of Ensign et al., 2018).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from geogrid.errors import InputError, NotFound
from geogrid.forecast.history import History, check_cells
from geogrid.forecast.kernels import gaussian_kernel, inverse_ring_kernel


class Forecaster:
    """Base class: validates, applies the ``origin`` filter, and wraps :meth:`_score` into ``scores_``."""

    name = "forecaster"

    def __init__(self, *, origin: str | None = None):
        self.origin = origin

    def fit(self, history: History, horizon_days: int) -> Forecaster:
        """Score every cell of ``history`` for the ``horizon_days`` days after its cut-off."""
        if not isinstance(history, History):
            raise InputError("fit() takes a geogrid.forecast.History; build one with History(incidents, cells, cutoff)")
        horizon = check_horizon(horizon_days)
        if self.origin is not None:
            history = history.where("origin", self.origin)
        self.fallback_ = None  # set by _score when it could not fit and used a simpler method instead
        scores = np.asarray(self._score(history, horizon), dtype=np.float64)
        self.scores_ = pd.Series(scores, index=pd.Index(history.cells, name="cell"), name=self.name)
        self.cutoff_ = history.cutoff
        self.horizon_days_ = horizon
        return self

    def predict(self) -> pd.Series:
        """The fitted scores (a Series indexed by cell)."""
        if not hasattr(self, "scores_"):
            raise InputError(f"{type(self).__name__} is not fitted: call fit(history, horizon_days) first")
        return self.scores_

    def _score(self, history: History, horizon: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


class LastPeriod(Forecaster):
    """Counts of the last period of the same length as the horizon (or ``window_days``)."""

    name = "last_period"

    def __init__(self, window_days: int | None = None, *, origin: str | None = None):
        super().__init__(origin=origin)
        self.window_days = window_days

    def _score(self, history, horizon):
        return history.window(self.window_days or horizon)


class LongWindow(LastPeriod):
    """Counts of a long past window, by default the last 52 weeks."""

    name = "long_window"

    def __init__(self, window_days: int = 364, *, origin: str | None = None):
        super().__init__(window_days, origin=origin)


class KDE(Forecaster):
    """Time-decayed kernel density on cells.

    Each past incident weighs ``0.5 ** (age / half_life_days)`` and is spread over cells within ``k``
    rings by a Gaussian of ``bandwidth_m`` metres between cell centres.
    """

    name = "kde"

    def __init__(self, bandwidth_m: float = 150.0, half_life_days: float = 365.0, k: int = 2,
                 *, origin: str | None = None):
        super().__init__(origin=origin)
        self.bandwidth_m, self.half_life_days, self.k = bandwidth_m, half_life_days, k

    def _score(self, history, horizon):
        return kde_scores(history, self.bandwidth_m, self.half_life_days, self.k)


def kde_scores(history: History, bandwidth_m: float, half_life_days: float, k: int, *, shift: int = 0) -> np.ndarray:
    """KDE score per cell as seen ``shift`` days before the cut-off (used as a feature by ``learned``)."""
    if bandwidth_m <= 0 or half_life_days <= 0:
        raise InputError("bandwidth_m and half_life_days must be positive")
    age = np.arange(history.n_ages) - shift
    w = np.where(age >= 0, 0.5 ** (np.maximum(age, 0) / half_life_days), 0.0)
    temporal = history.age_matrix() @ w
    return gaussian_kernel(history.cells, bandwidth_m, k) @ temporal


class Prospective(Forecaster):
    """Prospective hotspotting (Bowers, Johnson & Pease 2004): near-repeat space-time weights.

    An incident ``r`` rings and ``w`` whole weeks old adds ``1/(1+r) · 1/(1+w)`` to a cell, within
    ``bandwidth_rings`` rings (res 9: one ring ≈ 300 m) and ``bandwidth_days`` days.
    """

    name = "prospective"

    def __init__(self, bandwidth_rings: int = 1, bandwidth_days: int = 112, *, origin: str | None = None):
        super().__init__(origin=origin)
        self.bandwidth_rings, self.bandwidth_days = bandwidth_rings, bandwidth_days

    def _score(self, history, horizon):
        return prospective_scores(history, self.bandwidth_rings, self.bandwidth_days)


def prospective_scores(history: History, rings: int, days: int, *, shift: int = 0) -> np.ndarray:
    """Prospective score per cell as seen ``shift`` days before the cut-off."""
    age = np.arange(history.n_ages) - shift
    w = np.where((age >= 0) & (age < days), 1.0 / (1.0 + np.maximum(age, 0) // 7), 0.0)
    return inverse_ring_kernel(history.cells, rings) @ (history.age_matrix() @ w)


def check_horizon(horizon_days) -> int:
    if not isinstance(horizon_days, (int, np.integer)) or isinstance(horizon_days, bool) or horizon_days < 1:
        raise InputError(f"horizon_days must be a positive whole number of days, got {horizon_days!r}")
    return int(horizon_days)


def make_method(name: str, **params) -> Forecaster:
    """A forecaster by name: ``last_period``, ``long_window``, ``kde``, ``prospective``, ``learned`` or ``stacked``."""
    from geogrid.forecast.learned import Learned  # learned and stacked import this module
    from geogrid.forecast.stacked import Stacked

    registry = {"last_period": LastPeriod, "long_window": LongWindow, "kde": KDE,
                "prospective": Prospective, "learned": Learned, "stacked": Stacked}
    if name not in registry:
        raise NotFound(f"unknown forecast method {name!r}; choose one of {sorted(registry)}")
    return registry[name](**params)


def forecast(incidents: pd.DataFrame, cells, cutoff, horizon_days: int, method: str = "kde", *,
             time_col: str = "occurred_at", **params) -> pd.Series:
    """Risk score per cell for ``[cutoff, cutoff + horizon_days)`` from incidents before ``cutoff``.

    Examples
    --------
    >>> scores = forecast(incidents, cells, "2019-06-03", 7, method="kde")  # doctest: +SKIP
    >>> scores.nlargest(50)  # the 50 cells to watch next week             # doctest: +SKIP
    """
    history = History(incidents, cells, cutoff, time_col=time_col)
    return make_method(method, **params).fit(history, horizon_days).predict()


def scores_to_grids(scores: pd.Series, cell_grid: pd.DataFrame) -> pd.Series:
    """Sum cell scores per grid; ``cell_grid`` has columns ``cell`` and ``grid`` (from ``grids_to_cells``).

    Summing suits count-scaled scores (expected incidents per grid); for KDE-type scores it gives a grid
    ranking, not a count. Cells outside every grid are left out.
    """
    missing = {"cell", "grid"} - set(cell_grid.columns)
    if missing:
        raise InputError(f"cell_grid lacks {sorted(missing)}; build it with geogrid.cells.grids_to_cells")
    check_cells(scores.index)
    joined = cell_grid.assign(score=scores.reindex(cell_grid["cell"].to_numpy()).fillna(0.0).to_numpy())
    return joined.groupby("grid")["score"].sum().rename("score")
