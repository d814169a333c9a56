"""More inputs and forms for the stacked GLM, on the validation years 2016–2018 only (not part of `make bench`).

Each candidate adds inputs to the stack of :mod:`forecast_search` (same protocol, same fast cells × days
matrix, same GLM: 28-day targets, 52 origins 14 days apart) or changes its functional form:

* ``rep`` — repeat addresses: per cell, the 5-year count of incidents at coordinates (CPD's block-level
  points) that had two or more incidents in the window, and the number of distinct coordinates;
* ``cat`` — location-category mix: the 5-year counts of residence and street assaults separately;
* ``soft60``, ``soft120`` — point kernels: each incident spread over the cells by a Gaussian of 60 or
  120 m around its own coordinates (48 fixed offsets) instead of by cell-centre distance; 5-year and
  730-day-decayed sums;
* ``sdoh`` — tract covariates from ACS 2014 (Chi-SDOH: population density, poverty, unemployment,
  income per head, multi-unit housing, households without a car), by cell centroid. Race and ethnicity
  shares are deliberately not used: a forecast that sends patrols by a place's race is not acceptable;
* ``spline``, ``poly`` — the same inputs through cubic splines (5 knots each) or all pairwise products
  (a level-dependent blend), instead of the log-linear form.

    /work/main/.venv/bin/python bench/research/forecast_signals.py rep cat soft60 sdoh spline

Prints PAI at 5 % per validation year and horizon, next to the plain stack (``base``) and the baselines.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import geopandas as gpd
import h3.api.basic_int as h3
import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor
from sklearn.preprocessing import PolynomialFeatures, SplineTransformer
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import forecast_search as fs  # noqa: E402
from forecast import CHICAGO  # noqa: E402

from geogrid.cells import points_to_cells  # noqa: E402

SDOH = ("PDENS14", "Pov14", "Unemp14", "EP_PCI", "EP_MUNIT", "EP_NOVEH")
CANDIDATES = {"base": {}, "rep": {"rep": True}, "cat": {"cat": True}, "soft60": {"soft": 60.0},
              "soft120": {"soft": 120.0}, "sdoh": {"sdoh": True}, "spline": {"form": "spline"},
              "poly": {"form": "poly"}}


class Data(fs.Data):
    """The search's matrix plus per-coordinate and per-category counts and the raw points."""

    def __init__(self):
        super().__init__()
        raw = pd.read_csv(CHICAGO / "raw" / "crimemappingdata" / "chicago_aggravated_assaults.csv.gz")
        self.lon, self.lat = raw["longitude"].to_numpy(), raw["latitude"].to_numpy()
        self.day = ((pd.to_datetime(raw["date"], format="%Y-%m-%d %H:%M") - fs.T0) // pd.Timedelta(days=1)).to_numpy()
        pos, ok = self._cell_pos(points_to_cells(self.lon, self.lat, 9))
        key = raw["longitude"].round(4).astype(str) + "," + raw["latitude"].round(4).astype(str)
        pid, uniq = pd.factorize(key[ok])
        self.point_cell = np.zeros(len(uniq), dtype=np.int64)
        self.point_cell[pid] = pos[ok]
        self.SP = self._cumsum(pid, self.day[ok], len(uniq), np.int32)
        cats = raw["loc_cat"].to_numpy()[ok]
        self.catS = {c: self._cumsum(pos[ok][cats == c], self.day[ok][cats == c], self.n) for c in ("residence", "street")}
        self._soft, self._sdoh = {}, None

    def _cell_pos(self, cell):
        pos = np.minimum(np.searchsorted(self.cells, cell), self.n - 1)
        return pos, self.cells[pos] == cell

    def _cumsum(self, rows, days, n, dtype=np.float64, weights=None):
        m = np.zeros((n, self.X.shape[1]), dtype=dtype)
        np.add.at(m, (rows, days), 1 if weights is None else weights)
        return np.concatenate([np.zeros((n, 1), dtype), np.cumsum(m, 1, dtype=dtype)], 1)

    def soft(self, sigma: float):
        """(cumulative, 730-day-decayed) point-kernel counts: each incident spread by a Gaussian of sigma m."""
        if sigma not in self._soft:
            off = np.random.default_rng(0).standard_normal((48, 2)) * sigma
            rows, days = [], []
            for dx, dy in off:
                pos, ok = self._cell_pos(points_to_cells(
                    self.lon + dx / (111_320.0 * np.cos(np.radians(self.lat))), self.lat + dy / 111_320.0, 9))
                rows.append(pos[ok])
                days.append(self.day[ok])
            rows, days = np.concatenate(rows), np.concatenate(days)
            S = self._cumsum(rows, days, self.n, weights=np.full(len(rows), 1 / len(off)))
            a, D = 0.5 ** (1 / 730.0), np.zeros_like(S)
            X = np.diff(S, axis=1)
            for d in range(X.shape[1]):
                D[:, d + 1] = D[:, d] * a + X[:, d]
            self._soft[sigma] = (S, D)
        return self._soft[sigma]

    def sdoh(self) -> np.ndarray:
        if self._sdoh is None:
            g = gpd.read_file(f"/vsizip/{CHICAGO / 'raw' / 'geoda' / 'Chi-SDOH.zip'}/Chi-SDOH.shp").to_crs(4326)
            ll = np.array([h3.cell_to_latlng(int(c)) for c in self.cells])
            pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(ll[:, 1], ll[:, 0]), crs=4326)
            j = gpd.sjoin(pts, g, how="left", predicate="within")
            j = j[~j.index.duplicated()]
            cols = []
            for v in SDOH:
                x = j[v].astype(float).to_numpy()
                x = np.where(np.isnan(x), np.nanmedian(x), x)
                cols.append(np.log1p(x * 1000) if v == "PDENS14" else np.log1p(x) if v == "EP_PCI" else x)
            self._sdoh = np.column_stack(cols)
        return self._sdoh


def design(d: Data, c: int, spec: dict) -> np.ndarray:
    parts, extra = [fs.design(d, c, spec)], []
    if spec.get("rep"):
        n = d.SP[:, c] - d.SP[:, max(c - 1820, 0)]
        extra += [np.bincount(d.point_cell, weights=np.where(n >= 2, n, 0).astype(float), minlength=d.n),
                  np.bincount(d.point_cell, weights=(n >= 1).astype(float), minlength=d.n)]
    if spec.get("cat"):
        extra += [S[:, c] - S[:, max(c - 1820, 0)] for S in d.catS.values()]
    if spec.get("soft"):
        S, D = d.soft(spec["soft"])
        extra += [S[:, c] - S[:, max(c - 1820, 0)], D[:, c]]
    if extra:
        e = np.column_stack(extra)
        parts.append(np.log(e / np.maximum(e.mean(0), 1e-12) + 0.05))
    if spec.get("sdoh"):
        parts.append(d.sdoh())
    return np.hstack(parts)


def stacked(d: Data, spec: dict, T: int = 28, n: int = 52, step: int = 14):
    cache: dict[int, np.ndarray] = {}

    def z_at(o: int) -> np.ndarray:
        if o not in cache:
            cache[o] = design(d, o, spec)
        return cache[o]

    def score(c: int) -> np.ndarray:
        zs, ys = [], []
        for j in range(n):
            o = c - T - j * step  # target [o, o + T) ends at or before the cut-off c
            if o < 400:
                break
            zs.append(z_at(o))
            y = d.X[:, o:o + T].sum(1)
            ys.append(y / y.mean())
        z, y = np.vstack(zs), np.concatenate(ys)
        mu, sd = z.mean(0), z.std(0) + 1e-9
        a, b = (z - mu) / sd, (z_at(c) - mu) / sd
        if spec.get("form"):
            tr = (SplineTransformer(n_knots=5, degree=3, extrapolation="linear") if spec["form"] == "spline"
                  else PolynomialFeatures(2, include_bias=False)).fit(a)
            a, b = tr.transform(a), tr.transform(b)
            m2, s2 = a.mean(0), a.std(0) + 1e-9
            a, b = (a - m2) / s2, (b - m2) / s2
        glm = PoissonRegressor(alpha=1e-4, max_iter=500, solver="newton-cholesky").fit(a, y)
        return glm.predict(b)
    return score


def main(names: list[str]) -> None:
    d = Data()
    rows = []
    with threadpool_limits(1):
        for name, fn in fs.baselines(d).items():
            rows += fs.evaluate_method(d, name, fn)
        for name in ["base", *[n for n in names if n != "base"]]:
            t = time.perf_counter()
            rows += fs.evaluate_method(d, name, stacked(d, CANDIDATES[name]))
            print(f"{name} done ({time.perf_counter() - t:.0f} s)", flush=True)
    res = pd.DataFrame(rows)
    for horizon in (7, 28):
        t = res[(res.horizon_days == horizon) & (res.area_share == 0.05)].groupby(["method", "year"])["pai"].mean().unstack()
        best = t.loc[["long_window", "long_window_5y", "kde"]].max()
        t["mean"] = t[list(fs.YEARS)].mean(axis=1)
        t["vs_base"] = t["mean"] - t.loc["base", "mean"]
        t["worst_year_vs_best_baseline"] = (t[list(fs.YEARS)] - best).min(axis=1)
        print(f"PAI at 5 %, horizon {horizon} d\n{t.sort_values('mean', ascending=False).round(3).to_string()}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
