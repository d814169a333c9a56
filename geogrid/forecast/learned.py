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
from sklearn.linear_model import PoissonRegressor
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
BLEND_WINDOWS = (28, 91, 182, 364, 728, 1092, 1820)  # count windows the stacked blend weighs, days
BLEND_HALF_LIVES = (60.0, 365.0, 730.0)  # decayed-count windows of the blend, days
LOG_FLOOR = 0.05  # added to city-level-normalised features before the log (a cell with no incident stays finite)


class Learned(Forecaster):
    """Histogram gradient boosting on per-cell features, as a correction of the KDE baseline.

    Parameters
    ----------
    n_origins : int, optional
        Training origins (one row per cell each) before the cut-off; default 24 with ``offset="blend"``
        (two years), 52 otherwise.
    step_days : int, optional
        Spacing of the training origins; default 28 days with ``offset="blend"``, 7 otherwise.
    target_days : int, optional
        Length of the training target window; default ``max(horizon, 91)`` with ``offset="blend"`` (with
        13-week targets, the blend learns long-run rates, not last month's noise) and ``max(horizon, 28)``
        otherwise.
    offset : {"kde", "blend"} or bool
        The exposure the trees correct. ``"kde"`` or True (default): the KDE baseline. ``"blend"``: a
        stacked baseline, a Poisson GLM on the log of long-window counts (28 days … 5 years), decayed
        counts, three KDEs and ring-1/ring-2 neighbour sums, fitted over the training origins on top of an
        even mix of the KDE and the 5-year counts (:class:`_Blend`); tried on 2017–2018, not better than
        the KDE offset there (docs/forecast.md), so not the default. False: none (a plain model).
    base_bandwidth_m, base_half_life_days : float
        The baseline KDE (the ``kde`` method's defaults).
    zero_fraction : float, optional
        Share of zero-target rows kept for training (re-weighted by its inverse); default 0.2 with
        ``offset="blend"``, 0.1 otherwise.
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

    def __init__(self, n_origins: int | None = None, step_days: int | None = None, target_days: int | None = None,
                 offset: str | bool = True, base_bandwidth_m: float = 150.0, base_half_life_days: float = 365.0,
                 zero_fraction: float | None = None, max_iter: int = 150, learning_rate: float = 0.05,
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
        if self.offset not in (True, False, "kde", "blend"):
            raise InputError(f"offset must be 'blend', 'kde', True or False, got {self.offset!r}")
        blend = self.offset == "blend"
        target = self.target_days if self.target_days is not None else max(horizon, 91 if blend else 28)
        if not isinstance(target, (int, np.integer)) or target < 1:
            raise InputError(f"target_days must be a positive whole number of days, got {self.target_days!r}")
        n_origins = self.n_origins if self.n_origins is not None else (24 if blend else 52)
        step = self.step_days if self.step_days is not None else (28 if blend else 7)
        zero_fraction = self.zero_fraction if self.zero_fraction is not None else (0.2 if blend else 0.1)
        builder = _FeatureBuilder(history, horizon)
        stack = _Blend(history, horizon) if blend else None
        rng = np.random.default_rng(self.seed)
        xs, ys, ws, zs = [], [], [], []
        for j in range(n_origins):
            shift = target + j * step  # the target window [origin, origin + target) ends by the cut-off
            if shift >= history.n_ages:
                break
            y = history.window(target, shift=shift - target) * (horizon / target)
            keep = (y > 0) | (rng.random(len(y)) < zero_fraction)
            w = np.where(y[keep] > 0, 1.0, 1.0 / zero_fraction)
            if stack is not None:
                z, base = stack.design(shift)
                zs.append(z[keep])
                extra = z[keep]  # the trees also see the blend's inputs
            else:
                base = self._base(history, shift, horizon)
                extra = np.empty((int(keep.sum()), 0))
            xs.append(np.column_stack([builder.features(shift)[keep], extra, np.log(base[keep])]))
            ys.append(y[keep] / base[keep])
            ws.append(w * base[keep])
        if not xs or np.concatenate(ys).sum() == 0:
            self.fallback_ = (f"nothing to learn from: no training target with an incident in the "
                              f"{history.n_ages} days before the cut-off; 52-week counts used")
            return history.window(364)
        x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
        if stack is not None:
            z0, base = stack.design(0)
            # stacking: the GLM's blend becomes the exposure of the trees (fitted on the same rows)
            z = np.vstack(zs)
            stack.fit(z, y, w)
            fitted = stack.predict(z)
            y, w = y / fitted, w * fitted
            base = base * stack.predict(z0)
            x[:, -1] += np.log(fitted)
            extra0, extra_names = z0, stack.names
        else:
            base = self._base(history, 0, horizon)
            extra0, extra_names = np.empty((history.n_cells, 0)), []
        self.model_ = HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf, max_bins=self.max_bins,
            l2_regularization=1.0, early_stopping=False, random_state=self.seed,
        ).fit(x, y, sample_weight=w)
        self.feature_names_ = [*builder.names, *extra_names, "log_base"]
        self.n_train_rows_ = len(y)
        self.base_ = base
        return base * self.model_.predict(np.column_stack([builder.features(0), extra0, np.log(base)]))

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


class _Blend:
    """The stacked baseline: a Poisson GLM on log multi-window features, offset by an even KDE / 5-year mix.

    Why a GLM below the trees: the two strongest baselines (time-decayed KDE and 5-year counts) swap
    places from year to year on Chicago, and a blend of smooth long-run rates is what ranks the top cells;
    a linear model in log space learns that blend (a product of powers of the windows) smoothly, where
    trees would cut it into steps. The trees then correct the blend.
    """

    def __init__(self, history: History, horizon: int):
        self.h, self.horizon = history, horizon
        cells = history.cells
        self.g150, self.g400 = gaussian_kernel(cells, 150.0, 2), gaussian_kernel(cells, 400.0, 3)
        self.ring1, self.ring2 = ring_sum(cells, 1), ring_sum(cells, 2)
        self.names = ([f"log_count_{w}d" for w in BLEND_WINDOWS] + [f"log_decay_{int(t)}d" for t in BLEND_HALF_LIVES]
                      + ["log_kde_150m_365d", "log_kde_150m_730d", "log_kde_400m_365d"]
                      + [f"log_ring{r}_{w}d" for r in (1, 2) for w in (364, 1820)])

    def design(self, shift: int) -> tuple[np.ndarray, np.ndarray]:
        """(log features, even-mix exposure in incidents per horizon) as seen ``shift`` days early."""
        age = np.arange(self.h.n_ages) - shift  # < 0 is the origin's future, never counted
        cols = [(age >= 0) & (age < w) for w in BLEND_WINDOWS]
        cols += [np.where(age >= 0, 0.5 ** (np.maximum(age, 0) / t), 0.0) for t in BLEND_HALF_LIVES]
        t = self.h.age_matrix() @ np.column_stack(cols).astype(np.float64)
        counts, decays = t[:, : len(BLEND_WINDOWS)], t[:, len(BLEND_WINDOWS):]
        kde = self.g150 @ decays[:, 1]  # the `kde` method's defaults: 150 m, half-life 365 d
        one_five = counts[:, [BLEND_WINDOWS.index(364), BLEND_WINDOWS.index(1820)]]
        raw = np.column_stack([counts, decays, kde, self.g150 @ decays[:, 2], self.g400 @ decays[:, 1],
                               self.ring1 @ one_five, self.ring2 @ one_five])
        level = self.h.window(364, shift=shift).sum()  # the city's level at the origin
        rate = level * self.horizon / 364.0
        base = 0.5 * _share(kde) * rate + 0.5 * _share(counts[:, -1]) * rate
        base = base + BASE_FLOOR * max(base.mean(), 1e-9)
        return np.log(raw / max(level / self.h.n_cells, 1e-9) + LOG_FLOOR), base

    def fit(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> _Blend:
        self.mean_, self.scale_ = z.mean(axis=0), z.std(axis=0) + 1e-9
        self.glm_ = PoissonRegressor(alpha=1e-4, max_iter=500).fit((z - self.mean_) / self.scale_, y, sample_weight=w)
        return self

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.glm_.predict((z - self.mean_) / self.scale_)


def _share(x: np.ndarray) -> np.ndarray:
    total = x.sum()
    return x / total if total > 0 else np.full(len(x), 1.0 / len(x))
