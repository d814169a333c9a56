"""The stacked forecaster: a Poisson GLM whose inputs are the baselines themselves.

Model. For each cell, ``log E[count] = b0 + Σ b_i · log(baseline_i / city mean of baseline_i + floor)``,
where the baselines are counts over 28 days … 5 years, exponentially decayed counts (half-lives 60, 365,
730 days), three time-decayed KDEs (150 m × 365 d, 150 m × 730 d, 400 m × 365 d) and the ring-1 / ring-2
neighbour sums of the 1- and 5-year counts. A product of powers of the baselines is a smooth blend of
them: on Chicago the two strongest single baselines (KDE and 5-year counts) swap places from year to
year, and a learned blend follows whichever mix the recent past favours, without the coarse steps a tree
model cuts the top of the ranking into.

Training rows are (cell, origin) pairs, pooled over ``n_origins`` origins ``step_days`` apart. The
features of an origin are computed from what was known at it, its target is the count in the
``target_days`` after it, and every target window ends at or before the cut-off — the last origin is
``target_days`` before the cut-off. Each origin's targets are divided by their city mean, so the GLM
learns the shape of risk, not the year-to-year level; the forecast is rescaled to expected incidents per
horizon from the last 364 days' city total.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from geogrid.errors import InputError
from geogrid.forecast.history import History
from geogrid.forecast.kernels import gaussian_kernel, ring_sum
from geogrid.forecast.methods import Forecaster

WINDOWS = (28, 91, 182, 364, 728, 1092, 1820)  # count windows, days
HALF_LIVES = (60.0, 365.0, 730.0)  # decayed counts, days
KDES = ((150.0, 365.0, 2), (150.0, 730.0, 2), (400.0, 365.0, 3))  # bandwidth m, half-life d, rings
RING_WINDOWS = (364, 1820)  # windows whose ring-1 / ring-2 sums are inputs


class Stacked(Forecaster):
    """Poisson GLM stack of baselines (log long-window counts, decayed counts, KDEs, neighbour sums).

    The defaults were chosen on the validation years 2016–2018 of the Chicago protocol (docs/forecast.md),
    never on the 2019 test year.

    Parameters
    ----------
    target_days : int
        Length of each training target window: 28 days by default, whatever the horizon (a cell's rank
        next week is its long-run rate, and four-week targets are four times less noisy than weekly ones).
    n_origins, step_days : int
        Training origins: 52, 14 days apart (two years of origins) by default.
    alpha : float
        Ridge penalty of the GLM on standardised inputs (scikit-learn's ``PoissonRegressor``).
    floor : float
        Added to each city-mean-normalised input before the log, so a cell with no incident stays finite.
    min_past_days : int
        An origin needs this many days of incidents before it (365: a year, so the long windows mean
        something); older origins are skipped.
    top_share : float, optional
        Train only on the cells in this top share by the 150 m × 365 d KDE at each origin, so the fit
        spends its capacity on the ordering of the cells that can be flagged. None (default): all cells.
    origin : str, optional
        Train and forecast only on incidents with this ``origin`` (``'reported'``).
    """

    name = "stacked"

    def __init__(self, target_days: int = 28, n_origins: int = 52, step_days: int = 14, alpha: float = 1e-4,
                 floor: float = 0.05, top_share: float | None = None, min_past_days: int = 365,
                 *, origin: str | None = None):
        super().__init__(origin=origin)
        self.target_days, self.n_origins, self.step_days = target_days, n_origins, step_days
        self.min_past_days = min_past_days
        self.alpha, self.floor, self.top_share = alpha, floor, top_share

    def _score(self, history: History, horizon: int) -> np.ndarray:
        self._check()
        # one BLAS thread: the design is small and the machines are shared (threads only contended)
        with threadpool_limits(limits=1):
            return self._fit_predict(history, horizon)

    def _check(self) -> None:
        for name in ("target_days", "n_origins", "step_days", "min_past_days"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive whole number, got {v!r}")
        if not self.alpha >= 0 or not self.floor > 0:
            raise InputError(f"alpha must be >= 0 and floor > 0, got alpha={self.alpha!r}, floor={self.floor!r}")
        if self.top_share is not None and not 0 < self.top_share <= 1:
            raise InputError(f"top_share must be in (0, 1] or None, got {self.top_share!r}")

    def _fit_predict(self, history: History, horizon: int) -> np.ndarray:
        design = _Design(history, self.floor)
        level = history.window(364).sum()
        zs, ys = [], []
        for j in range(self.n_origins):
            shift = self.target_days + j * self.step_days  # target [origin, origin + target) ends by the cut-off
            if shift + self.min_past_days > history.n_ages:
                break
            y = history.window(self.target_days, shift=shift - self.target_days)
            if y.sum() == 0:
                continue
            z, kde = design.at(shift)
            if self.top_share is not None:
                keep = kde >= np.quantile(kde, 1 - self.top_share)
                z, y = z[keep], y[keep]
            zs.append(z)
            ys.append(y / y.mean())
        if not zs:
            need = self.target_days + self.min_past_days
            self.fallback_ = (f"too little history to fit: {history.n_ages} days before the cut-off, "
                              f"{need} needed for one training origin; 52-week counts used")
            return history.window(364)
        z, y = np.vstack(zs), np.concatenate(ys)
        self.mean_, self.scale_ = z.mean(axis=0), z.std(axis=0) + 1e-9
        self.glm_ = PoissonRegressor(alpha=self.alpha, max_iter=300, solver="newton-cholesky").fit(
            (z - self.mean_) / self.scale_, y)
        self.feature_names_ = design.names
        self.n_train_rows_ = len(y)
        shape = self.glm_.predict((design.at(0)[0] - self.mean_) / self.scale_)
        return shape / shape.mean() * level * horizon / 364.0 / history.n_cells

    @property
    def coefficients_(self) -> dict[str, float]:
        """GLM coefficient of each (standardised) log input."""
        return dict(zip(self.feature_names_, self.glm_.coef_.tolist()))


class _Design:
    """Log-normalised baseline inputs of every cell as seen ``shift`` days before the cut-off."""

    def __init__(self, history: History, floor: float = 0.05):
        self.h, self.floor = history, floor
        cells = history.cells
        self.kernels = [gaussian_kernel(cells, bw, k) for bw, _, k in KDES]
        self.ring1, self.ring2 = ring_sum(cells, 1), ring_sum(cells, 2)
        self.names = ([f"log_count_{w}d" for w in WINDOWS] + [f"log_decay_{int(t)}d" for t in HALF_LIVES]
                      + [f"log_kde_{int(bw)}m_{int(t)}d" for bw, t, _ in KDES]
                      + [f"log_ring{r}_{w}d" for w in RING_WINDOWS for r in (1, 2)])

    def at(self, shift: int) -> tuple[np.ndarray, np.ndarray]:
        """(log inputs, the 150 m × 365 d KDE) at the origin ``shift`` days before the cut-off."""
        age = np.arange(self.h.n_ages) - shift  # < 0 is the origin's future: weight 0, never counted
        cols = [(age >= 0) & (age < w) for w in WINDOWS]
        cols += [np.where(age >= 0, 0.5 ** (np.maximum(age, 0) / t), 0.0) for t in HALF_LIVES]
        t = self.h.age_matrix() @ np.column_stack(cols).astype(np.float64)
        counts, decays = t[:, : len(WINDOWS)], t[:, len(WINDOWS):]
        kdes = [g @ decays[:, HALF_LIVES.index(hl)] for g, (_, hl, _) in zip(self.kernels, KDES)]
        rings = []
        for w in RING_WINDOWS:
            c = counts[:, WINDOWS.index(w)]
            rings += [self.ring1 @ c, self.ring2 @ c]
        raw = np.column_stack([counts, decays, *kdes, *rings])
        z = np.log(raw / np.maximum(raw.mean(axis=0), 1e-12) + self.floor)
        return z, kdes[0]
