"""Candidate search (not part of `make bench`: about 20 minutes) for the learned forecaster on the validation years 2016–2018 (never 2019).

A fast re-implementation of the Chicago protocol for many candidates: the incidents become one dense
cells × days matrix, so a window count is a difference of cumulative sums and a decayed count a
recurrence, instead of a fresh History per period. The features equal those of
:class:`geogrid.forecast.Stacked` (checked: Spearman 1.0 and identical top 5 % on sample cut-offs); the
metrics are :func:`geogrid.forecast.evaluate`. Column ``c`` of the matrix is the day index of a cut-off,
and every feature reads columns ``< c`` only — a training origin ``o`` reads ``< o`` and its target
``[o, o + T)`` ends at or before ``c``.

    /work/main/.venv/bin/python bench/research/forecast_search.py            # every candidate (≈ 20 min)
    /work/main/.venv/bin/python bench/research/forecast_search.py T28n52 g0  # some of them

Prints PAI at 5 % per validation year and horizon, and writes bench/results/forecast_search.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from scipy.stats import rankdata
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the bench's loader
from forecast import load  # noqa: E402  (the bench's loader: same cells and incidents)

from geogrid.forecast import block_periods, evaluate, weekly_periods  # noqa: E402
from geogrid.forecast.kernels import gaussian_kernel, ring_sum  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
YEARS = (2016, 2017, 2018)
T0 = pd.Timestamp("2010-01-01")

CANDIDATES: dict[str, dict] = {
    # Poisson GLM stacks (log link); T = target days, n origins `step` days apart, top = train on top share
    "g0": {}, "T28": {"T": 28, "n": 26}, "T182": {"T": 182, "n": 12}, "top20": {"top": 0.2},
    "top10": {"top": 0.1}, "a1e-1": {"alpha": 0.1}, "seas56": {"seas": 56}, "n52": {"n": 52, "step": 14},
    "T28n52": {"T": 28, "n": 52, "step": 14}, "T28n78": {"T": 28, "n": 78, "step": 14},
    "T14n52": {"T": 14, "n": 52, "step": 14}, "T56n52": {"T": 56, "n": 52, "step": 14}, "T28n52top20": {"T": 28, "n": 52, "step": 14, "top": 0.2},
    "top20T182": {"top": 0.2, "T": 182, "n": 12},
    "lean": {"wins": [364, 1092, 1820], "hls": [730.0], "kdes": [[150.0, 365.0], [150.0, 730.0], [400.0, 365.0]],
             "ringw": [1820]},
    "lin": {"link": "identity"},  # non-negative least squares on the raw baselines
}


class Data:
    def __init__(self):
        incidents, self.cells = load()
        cell = incidents["h3"].to_numpy()
        pos = np.minimum(np.searchsorted(self.cells, cell), len(self.cells) - 1)
        ok = self.cells[pos] == cell
        day = ((incidents["occurred_at"] - T0) // pd.Timedelta(days=1)).to_numpy()
        self.n = len(self.cells)
        self.X = np.zeros((self.n, int(day.max()) + 1))
        np.add.at(self.X, (pos[ok], day[ok]), 1.0)
        self.S = np.concatenate([np.zeros((self.n, 1)), np.cumsum(self.X, 1)], 1)  # S[:, c] = X[:, :c].sum
        self._decay, self._kernels = {}, {}
        self.ring1, self.ring2 = ring_sum(self.cells, 1), ring_sum(self.cells, 2)

    def win(self, c: int, w: int, shift: int = 0) -> np.ndarray:
        c -= shift
        return self.S[:, c] - self.S[:, max(c - w, 0)]

    def decay(self, half_life: float, c: int) -> np.ndarray:
        if half_life not in self._decay:  # D[:, c] = Σ_{d<c} 0.5^((c-1-d)/h) X[:, d], as kde_scores weighs ages
            a, out = 0.5 ** (1 / half_life), np.zeros((self.n, self.X.shape[1] + 1))
            for d in range(self.X.shape[1]):
                out[:, d + 1] = out[:, d] * a + self.X[:, d]
            self._decay[half_life] = out
        return self._decay[half_life][:, c]

    def kde(self, c: int, bw: float = 150.0, hl: float = 365.0) -> np.ndarray:
        k = 2 if bw < 300 else 3
        if (bw, k) not in self._kernels:
            self._kernels[(bw, k)] = gaussian_kernel(self.cells, bw, k)
        return self._kernels[(bw, k)] @ self.decay(hl, c)


def design(d: Data, c: int, spec: dict) -> np.ndarray:
    cols = [d.win(c, w) for w in spec.get("wins", (28, 91, 182, 364, 728, 1092, 1820))]
    cols += [d.decay(h, c) for h in spec.get("hls", (60.0, 365.0, 730.0))]
    cols += [d.kde(c, bw, h) for bw, h in spec.get("kdes", [(150.0, 365.0), (150.0, 730.0), (400.0, 365.0)])]
    for w in spec.get("ringw", (364, 1820)):
        cols += [d.ring1 @ d.win(c, w), d.ring2 @ d.win(c, w)]
    if spec.get("seas"):  # the same calendar window 1–5 years earlier (strictly before c)
        L = spec["seas"]
        v = sum(d.win(c, L, shift=364 * k - L) for k in range(1, 6) if c - 364 * k > L)
        cols += [v, d.ring1 @ v]
    f = np.column_stack(cols)
    return np.log(f / np.maximum(f.mean(0), 1e-12) + spec.get("floor", 0.05))


def stacked(d: Data, spec: dict):
    T, n, step, floor = spec.get("T", 91), spec.get("n", 24), spec.get("step", 28), spec.get("floor", 0.05)

    def score(c: int) -> np.ndarray:
        zs, ys = [], []
        for j in range(n):
            o = c - T - j * step
            if o < 400:
                break
            z, y = design(d, o, spec), d.X[:, o:o + T].sum(1)
            if spec.get("top"):
                base = d.kde(o)
                keep = base >= np.quantile(base, 1 - spec["top"])
                z, y = z[keep], y[keep]
            zs.append(z)
            ys.append(y / y.mean())
        z, y = np.vstack(zs), np.concatenate(ys)
        if spec.get("link") == "identity":
            w, _ = nnls(np.exp(z) - floor, y)
            return (np.exp(design(d, c, spec)) - floor) @ w + 1e-6 * d.kde(c)
        mu, sd = z.mean(0), z.std(0) + 1e-9
        glm = PoissonRegressor(alpha=spec.get("alpha", 1e-4), max_iter=300, solver="newton-cholesky")
        glm.fit((z - mu) / sd, y)
        return glm.predict((design(d, c, spec) - mu) / sd)
    return score


def baselines(d: Data) -> dict:
    return {"long_window": lambda c: d.win(c, 364), "long_window_5y": lambda c: d.win(c, 1820),
            "kde": lambda c: d.kde(c), "kde_730d": lambda c: d.kde(c, 150.0, 730.0),
            "rank_mean_kde_5y": lambda c: rankdata(d.kde(c)) + rankdata(d.win(c, 1820))}


def evaluate_method(d: Data, name: str, fn) -> list[dict]:
    rows = []
    for year in YEARS:
        for horizon, periods in ((7, weekly_periods(year)), (28, block_periods(f"{year}-01-01", 13, 28))):
            for start, end in periods:
                a, b = int((start - T0).days), int((end - T0).days)
                for r in evaluate(fn(a), d.X[:, a:b].sum(1), (0.01, 0.05, 0.10)):
                    rows.append({"method": name, "year": year, "horizon_days": horizon, "start": a, **r})
    return rows


def main(names: list[str]) -> None:
    d = Data()
    rows = []
    with threadpool_limits(1):
        for name, fn in baselines(d).items():
            rows += evaluate_method(d, name, fn)
        for name in names or list(CANDIDATES):
            rows += evaluate_method(d, name, stacked(d, CANDIDATES[name]))
            print(f"{name} done", flush=True)
    res = pd.DataFrame(rows)
    out = []
    for horizon in (7, 28):
        t = res[(res.horizon_days == horizon) & (res.area_share == 0.05)].groupby(["method", "year"])["pai"].mean().unstack()
        best = t.loc[["long_window", "long_window_5y", "kde"]].max()
        t["mean"] = t[list(YEARS)].mean(axis=1)
        t["worst_year_vs_best_baseline"] = (t[list(YEARS)] - best).min(axis=1)
        print(f"PAI at 5 %, horizon {horizon} d\n{t.sort_values('mean', ascending=False).round(3).to_string()}\n")
        out += [{"horizon_days": horizon, "method": m, **{str(k): float(v) for k, v in r.items()}} for m, r in t.iterrows()]
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "forecast_search.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
