"""The learned forecaster: gradient boosting (Poisson loss) that corrects a kernel-density baseline.

Model. For each cell, ``E[count] = base · f(features)``: ``base`` is the time-decayed KDE of the
incidents (the strongest single baseline), scaled to expected incidents per horizon, and ``f`` is a
histogram gradient-boosting model with Poisson loss on lagged counts at several windows (7 days to 5
years), decayed counts, ring-1/ring-2 neighbour sums, KDE and prospective (near-repeat) scores, the
same calendar window in earlier years, category shares and season. It is fitted as a Poisson
regression of ``count / base`` with sample weights ``base`` — the exposure form of a log offset, same
deviance — so the trees learn only departures from the baseline, and the baseline's continuous ranking
survives the trees' piecewise-constant fit (a plain boosted model ranks the top cells in a few coarse
steps, which is why it only matched KDE).

Training rows are (cell, origin) pairs for ``n_origins`` origins spaced ``step_days`` apart. Features are
computed from what was known at the origin; the target is the count in the ``target_days`` after it
(default ``max(horizon, 28)``: a 7-day rank is learnt from 28-day windows, four times less noisy),
scaled to the horizon. Every target window ends at or before the cut-off. Cells with no incident in the
target window are subsampled (``zero_fraction``) and re-weighted, which keeps the Poisson mean
unbiased while making a fit take seconds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from geogrid.errors import InputError
from geogrid.forecast.history import History
from geogrid.forecast.kernels import gaussian_kernel, inverse_ring_kernel, ring_sum
from geogrid.forecast.methods import Forecaster, kde_scores

WINDOWS = (7, 28, 91, 182, 364, 728, 1820)  # lagged-count windows, days
SPATIAL_WINDOWS = (28, 364, 1820)  # windows whose ring-1 / ring-2 neighbour sums are features
HALF_LIVES = (14.0, 60.0, 365.0)  # exponential-decay features, days
N_CATEGORIES = 3
BASE_FLOOR = 0.05  # share of the mean baseline added to every cell, so empty cells keep a positive base


class Learned(Forecaster):
    """Histogram gradient boosting on per-cell features, as a correction of the KDE baseline.

    Parameters
    ----------
    n_origins : int
        Training origins (one row per cell each) before the cut-off.
    step_days : int
        Spacing of the training origins.
    target_days : int, optional
        Length of the training target window; default ``max(horizon, 28)``.
    offset : bool
        Learn a correction of the KDE baseline (True) or the counts directly (False, a plain model).
    base_bandwidth_m, base_half_life_days : float
        The baseline KDE (the ``kde`` method's defaults).
    zero_fraction : float
        Share of zero-target rows kept for training (re-weighted by its inverse).
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, max_bins : boosting size (scikit-learn names).
    n_threads : int, optional
        OpenMP threads for the booster (None = scikit-learn's default, all cores). One by default: the
        model is small, and on a busy 2-core machine OpenMP threads spinning against other work made a
        fit over ten times slower.
    origin : str, optional
        Train only on incidents with this ``origin`` (``'reported'``).
    seed : int
        Seeds the subsampling and the booster.
    """

    name = "learned"

    def __init__(self, n_origins: int = 52, step_days: int = 7, target_days: int | None = None,
                 offset: bool = True, base_bandwidth_m: float = 150.0, base_half_life_days: float = 365.0,
                 zero_fraction: float = 0.1, max_iter: int = 150, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 200, max_bins: int = 63,
                 n_threads: int | None = 1, *, origin: str | None = None, seed: int = 0):
        super().__init__(origin=origin)
        self.n_origins, self.step_days, self.target_days = n_origins, step_days, target_days
        self.offset, self.base_bandwidth_m, self.base_half_life_days = offset, base_bandwidth_m, base_half_life_days
        self.zero_fraction = zero_fraction
        self.max_iter, self.learning_rate = max_iter, learning_rate
        self.max_leaf_nodes, self.min_samples_leaf, self.max_bins = max_leaf_nodes, min_samples_leaf, max_bins
        self.n_threads, self.seed = n_threads, seed

    def _score(self, history: History, horizon: int) -> np.ndarray:
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return self._fit_predict(history, horizon)

    def _fit_predict(self, history: History, horizon: int) -> np.ndarray:
        target = self.target_days if self.target_days is not None else max(horizon, 28)
        if not isinstance(target, (int, np.integer)) or target < 1:
            raise InputError(f"target_days must be a positive whole number of days, got {self.target_days!r}")
        builder = _FeatureBuilder(history, horizon)
        rng = np.random.default_rng(self.seed)
        xs, ys, ws = [], [], []
        for j in range(self.n_origins):
            shift = target + j * self.step_days  # the target window [origin, origin + target) ends by the cut-off
            if shift >= history.n_ages:
                break
            base = self._base(history, shift, horizon)
            y = history.window(target, shift=shift - target) * (horizon / target)
            keep = (y > 0) | (rng.random(len(y)) < self.zero_fraction)
            w = np.where(y[keep] > 0, 1.0, 1.0 / self.zero_fraction)
            xs.append(np.column_stack([builder.features(shift)[keep], np.log(base[keep])]))
            ys.append(y[keep] / base[keep])
            ws.append(w * base[keep])
        if not xs or np.concatenate(ys).sum() == 0:
            # nothing to learn from: fall back to the long-window counts
            return history.window(364)
        self.model_ = HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf, max_bins=self.max_bins,
            l2_regularization=1.0, early_stopping=False, random_state=self.seed,
        ).fit(np.vstack(xs), np.concatenate(ys), sample_weight=np.concatenate(ws))
        self.feature_names_ = [*builder.names, "log_base"]
        self.n_train_rows_ = int(sum(len(y) for y in ys))
        base = self._base(history, 0, horizon)
        return base * self.model_.predict(np.column_stack([builder.features(0), np.log(base)]))

    def _base(self, history: History, shift: int, horizon: int) -> np.ndarray:
        """Expected incidents per cell in ``horizon`` days as the KDE baseline sees them ``shift`` days early."""
        if not self.offset:
            return np.ones(history.n_cells)
        k = kde_scores(history, self.base_bandwidth_m, self.base_half_life_days, 2, shift=shift)
        recent = history.window(364, shift=shift).sum() * horizon / 364.0  # the city's current level
        base = k / k.sum() * recent if k.sum() > 0 else np.zeros(history.n_cells)
        return base + BASE_FLOOR * max(base.mean(), 1e-9)


class _FeatureBuilder:
    """Per-cell feature matrix as seen ``shift`` days before the cut-off."""

    def __init__(self, history: History, horizon: int):
        self.h, self.horizon = history, horizon
        cells = history.cells
        self.ring1, self.ring2 = ring_sum(cells, 1), ring_sum(cells, 2)
        self.kde = gaussian_kernel(cells, 150.0, 2)
        self.kde_wide = gaussian_kernel(cells, 400.0, 3)
        self.near = inverse_ring_kernel(cells, 2)
        self.categories = history.top_categories(N_CATEGORIES)
        self.names = (
            [f"count_{w}d" for w in WINDOWS]
            + [f"decay_{int(t)}d" for t in HALF_LIVES]
            + ["same_period_prev_years"]
            + [f"ring{r}_{w}d" for r in (1, 2) for w in SPATIAL_WINDOWS]
            + ["ring1_same_period", "kde_150m_365d", "kde_150m_60d", "kde_400m_365d", "prospective_56d"]
            + [f"share_{c}" for c in self.categories]
            + ["season_sin", "season_cos"]
        )

    def _temporal_weights(self, shift: int) -> np.ndarray:
        age = np.arange(self.h.n_ages) - shift  # age as seen from the origin; < 0 is its future
        cols = [((age >= 0) & (age < w)) for w in WINDOWS]
        cols += [np.where(age >= 0, 0.5 ** (np.maximum(age, 0) / t), 0.0) for t in HALF_LIVES]
        same = np.zeros(len(age), dtype=bool)
        for year in (1, 2, 3):  # the target window's calendar days one to three years earlier
            same |= (age >= 364 * year - self.horizon) & (age < 364 * year)
        cols.append(same)
        cols.append(np.where((age >= 0) & (age < 56), 1.0 / (1.0 + np.maximum(age, 0) // 7), 0.0))
        return np.column_stack(cols).astype(np.float64)

    def features(self, shift: int) -> np.ndarray:
        t = self.h.age_matrix() @ self._temporal_weights(shift)
        counts = t[:, : len(WINDOWS)]
        decays = t[:, len(WINDOWS) : len(WINDOWS) + len(HALF_LIVES)]
        same, near_t = t[:, -2], t[:, -1]
        spatial = counts[:, [WINDOWS.index(w) for w in SPATIAL_WINDOWS]]
        long_total = counts[:, -1]
        shares = []
        for c in self.categories:
            ind = (np.arange(self.h.n_ages) - shift >= 0) & (np.arange(self.h.n_ages) - shift < WINDOWS[-1])
            shares.append((self.h.age_matrix(c) @ ind.astype(np.float64)) / (long_total + 1.0))
        day = (self.h.cutoff - pd.Timedelta(days=shift)).day_of_year
        season = np.full((len(counts), 2), [np.sin(2 * np.pi * day / 365.25), np.cos(2 * np.pi * day / 365.25)])
        return np.column_stack([
            counts, decays, same,
            self.ring1 @ spatial, self.ring2 @ spatial,
            self.ring1 @ same, self.kde @ decays[:, 2], self.kde @ decays[:, 1],
            self.kde_wide @ decays[:, 2], self.near @ near_t,
            *shares, season,
        ])
