"""Emerging hot spots: Gi* per time slice, a Mann–Kendall trend per cell, ArcGIS pattern classes.

Method
------
1. Incidents are counted per study-area cell (zeros included) and per slice: calendar weeks
   (Mon–Sun, ``period='W'``) or months (``'M'``) in the incidents' local time, every period from the
   first to the last one in the window (partial end periods included: trim with ``start``/``end``).
2. Each slice gets Gi* z-scores with binary k-ring weights (:mod:`geogrid.hotspots`) and, when
   ``fdr``, a Benjamini–Hochberg correction within the slice. A slice is *hot* for a cell when its
   (adjusted) p <= ``alpha`` and z > 0, *cold* when p <= ``alpha`` and z < 0. Unlike ArcGIS's
   space-time cube, the neighbourhood is spatial only (no earlier slices in it).
3. The Mann–Kendall test runs on each cell's series of Gi* z-scores (as ArcGIS does for the
   categories): ``mk_z`` > 0 with ``mk_p`` <= ``alpha`` is a significant rise in hot clustering.

Pattern rules (ArcGIS's definitions; "hot" shown, cold mirrors them with hot<->cold; n = slices,
"90 %" = at least 90 % of the n slices). Checked in this order, first match wins:

- *new*: the final slice is hot and no earlier slice was.
- *consecutive*: one uninterrupted run of >= 2 hot slices ends at the final slice, no hot slice
  before the run, and fewer than 90 % of slices are hot.
- *intensifying*: >= 90 % hot, the final one included, and the trend rises significantly.
- *diminishing*: >= 90 % hot, the final one included, and the trend falls significantly.
- *persistent*: >= 90 % hot, the final one included, with no significant trend.
- *oscillating*: the final slice is hot, some earlier slice was cold, fewer than 90 % hot.
- *sporadic*: the final slice is hot, earlier hot slices come and go, none was cold, < 90 % hot.
- *historical*: the final slice is not hot but >= 90 % of slices were.
- otherwise *no pattern*.

A cell whose final slice is hot is classed with the hot rules, cold with the cold rules; when
the final slice is neither, a cell can only be historical (hot first, then cold) or no pattern.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from geogrid.cells import check_resolution, study_area_cells
from geogrid.counts import incident_times, filter_incidents, incident_cells
from geogrid.errors import InputError, NotEnoughData
from geogrid.hotspots import MIN_INCIDENTS, gi_star, kring_weights

PERIODS = {"W": "W-SUN", "M": "M"}
SHARE_90 = 0.9
# The one table of pattern names, used by the analysis (``label``/``label_zh``) and by the map legends
# (maps.palettes). English: ArcGIS Pro's pattern names. Chinese: the adjectives of ArcGIS Pro zh-CN's
# Emerging Hot Spot Analysis (新增的、连续的、加强的、持续的、逐渐减少的、分散的、振荡的、历史的) + 热点/冷点.
PATTERNS = ("new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic", "oscillating",
            "historical")
PATTERN_WORDS: dict[str, tuple[str, str]] = {
    "new": ("New", "新"),
    "consecutive": ("Consecutive", "连续"),
    "intensifying": ("Intensifying", "加强"),
    "persistent": ("Persistent", "持续"),
    "diminishing": ("Diminishing", "逐渐减少"),
    "sporadic": ("Sporadic", "分散"),
    "oscillating": ("Oscillating", "振荡"),
    "historical": ("Historical", "历史"),
}
NO_PATTERN = "no_pattern"
NO_PATTERN_LABEL = ("No Pattern Detected", "未检测到模式")


def pattern_label(pattern: str, side: str | None) -> tuple[str, str]:
    """English and Chinese label of a pattern, e.g. ``('intensifying', 'hot')`` → ('Intensifying Hot Spot', '加强热点')."""
    if pattern == NO_PATTERN or side is None:
        return NO_PATTERN_LABEL
    if pattern not in PATTERN_WORDS or side not in ("hot", "cold"):
        raise InputError(f"unknown emerging pattern {pattern!r} / {side!r}; patterns are {list(PATTERNS)}, "
                         "sides 'hot' or 'cold'")
    en, zh = PATTERN_WORDS[pattern]
    return f"{en} {side.capitalize()} Spot", f"{zh}{'热点' if side == 'hot' else '冷点'}"


def pattern_labels() -> dict[str, tuple[str, str]]:
    """Every label the analysis can emit, keyed ``'new hot'`` … ``'historical cold'``, ``'no pattern'``."""
    out = {f"{p} {side}": pattern_label(p, side) for side in ("hot", "cold") for p in PATTERNS}
    out["no pattern"] = NO_PATTERN_LABEL
    return out


def mann_kendall(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mann–Kendall z and two-sided p for each row of ``y`` (cells x slices), tie-corrected.

    Same numbers as ``pymannkendall.original_test`` (a test pins it); written vectorised because
    that package runs one Python call per series, too slow for tens of thousands of cells.
    """
    y = np.asarray(y, dtype=np.float64)
    m, n = y.shape
    s = np.zeros(m)
    for i in range(n - 1):
        s += np.sign(y[:, i + 1:] - y[:, i:i + 1]).sum(axis=1)
    ys = np.sort(y, axis=1)
    ties = np.zeros(m)
    run = np.ones(m)
    for j in range(1, n + 1):
        same = ys[:, j] == ys[:, j - 1] if j < n else np.zeros(m, dtype=bool)
        ended = ~same
        ties += np.where(ended, run * (run - 1) * (2 * run + 5), 0.0)
        run = np.where(same, run + 1, 1.0)
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(var), np.where(s < 0, (s + 1) / np.sqrt(var), 0.0))
    z = np.nan_to_num(z)
    return z, 2 * stats.norm.sf(np.abs(z))


def classify_series(state: np.ndarray, mk_z: float, mk_p: float, alpha: float = 0.05) -> tuple[str, str | None]:
    """Pattern of one cell from its per-slice states (+1 hot, -1 cold, 0 neither) and trend.

    Returns ``(pattern, hot_or_cold)``, e.g. ``('intensifying', 'hot')`` or ``('no_pattern', None)``.
    """
    state = np.asarray(state, dtype=np.int8)
    n = state.size
    final = int(state[-1])
    if final == 0:
        for side, sign in (("hot", 1), ("cold", -1)):
            if (state == sign).sum() >= SHARE_90 * n:
                return "historical", side
        return "no_pattern", None
    side = "hot" if final > 0 else "cold"
    on = state == final
    other = state == -final
    n_on = int(on.sum())
    mostly = n_on >= SHARE_90 * n
    trend = mk_z * final  # positive = clustering of this side getting stronger
    run = n - (np.flatnonzero(~on)[-1] + 1) if (~on).any() else n
    before = on[: n - run].any()
    if n_on == 1:
        return "new", side
    if run >= 2 and not before and not mostly:
        return "consecutive", side
    if mostly:
        if mk_p <= alpha and trend > 0:
            return "intensifying", side
        if mk_p <= alpha and trend < 0:
            return "diminishing", side
        return "persistent", side
    if other[:-1].any():
        return "oscillating", side
    return "sporadic", side


class EmergingHotspots:
    """Emerging hot spot analysis on H3 cells.

    Parameters
    ----------
    period : {'W', 'M'}
        Slice length: calendar week or month.
    k : int
        k-ring radius of the Gi* neighbourhood.
    res : int
        H3 resolution (7–10).
    alpha : float
        Significance level for hot/cold slices and for the trend.
    fdr : bool
        Benjamini–Hochberg within each slice.
    min_slices : int
        Fewer slices raise :class:`NotEnoughData` (ArcGIS asks for 10).

    Attributes
    ----------
    patterns_ : DataFrame
        ``cell``, ``pattern``, ``hot_or_cold``, ``label``, ``label_zh``, ``mk_z``, ``mk_p``,
        ``n_slices_hot``, ``n_slices_cold``, ``n_slices``, ``final_z``, ``count``.
    z_ : DataFrame
        Gi* z-score per cell (rows) and slice (columns, ``pandas.Period``).
    counts_ : DataFrame
        Incidents per cell and slice.
    """

    def __init__(self, period: str = "W", k: int = 1, res: int = 9, alpha: float = 0.05,
                 fdr: bool = True, min_slices: int = 10):
        self.period = period
        self.k = k
        self.res = res
        self.alpha = alpha
        self.fdr = fdr
        self.min_slices = min_slices

    def fit(self, incidents: pd.DataFrame, study_area, start=None, end=None, categories=None) -> "EmergingHotspots":
        """Count, test and classify; see the module docstring for the rules."""
        if self.period not in PERIODS:
            raise InputError(f"period must be 'W' (weeks) or 'M' (months), got {self.period!r}")
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha!r}")
        res = check_resolution(self.res, 7, 10)
        sel = filter_incidents(incidents, start, end, categories)
        if len(sel) < MIN_INCIDENTS:
            raise NotEnoughData(f"{len(sel)} incidents; emerging hot spots need at least {MIN_INCIDENTS}")
        counts, slices, cells = self._cube(sel, res, study_area)
        z = gi_star(counts, kring_weights(cells, self.k))
        state = self._states(z)
        mk_z, mk_p = mann_kendall(np.nan_to_num(z))
        rows = [classify_series(state[i], mk_z[i], mk_p[i], self.alpha) for i in range(len(cells))]
        pattern = [r[0] for r in rows]
        side = [r[1] for r in rows]
        labels = [pattern_label(p, s) for p, s in rows]
        self.patterns_ = pd.DataFrame({
            "cell": cells,
            "pattern": pattern,
            "hot_or_cold": side,
            "label": [en for en, _ in labels],
            "label_zh": [zh for _, zh in labels],
            "mk_z": mk_z,
            "mk_p": mk_p,
            "n_slices_hot": (state > 0).sum(axis=1),
            "n_slices_cold": (state < 0).sum(axis=1),
            "n_slices": len(slices),
            "final_z": z[:, -1],
            "count": counts.sum(axis=1).astype(np.int64),
        })
        self.z_ = pd.DataFrame(z, index=pd.Index(cells, name="cell"), columns=slices)
        self.counts_ = pd.DataFrame(counts.astype(np.int64), index=self.z_.index, columns=slices)
        return self

    def _cube(self, sel: pd.DataFrame, res: int, study_area):
        t = incident_times(sel)
        per = t.dt.tz_localize(None).dt.to_period(PERIODS[self.period])
        slices = pd.period_range(per.min(), per.max(), freq=PERIODS[self.period])
        if len(slices) < self.min_slices:
            raise NotEnoughData(
                f"{len(slices)} {self.period} slices; emerging hot spots need at least {self.min_slices}"
            )
        cells = study_area_cells(study_area, res)
        if cells.size == 0:
            raise InputError(f"the study area holds no H3 cell centre at resolution {res}")
        inc = incident_cells(sel, res)
        pos = np.minimum(np.searchsorted(cells, inc), cells.size - 1)
        inside = cells[pos] == inc
        tpos = per.array.asi8 - slices[0].ordinal
        flat = pos[inside] * len(slices) + tpos[inside]
        counts = np.bincount(flat, minlength=cells.size * len(slices)).reshape(cells.size, len(slices))
        return counts.astype(np.float64), slices, cells

    def _states(self, z: np.ndarray) -> np.ndarray:
        p = 2 * stats.norm.sf(np.abs(np.nan_to_num(z)))
        if self.fdr:
            p = stats.false_discovery_control(p, axis=0, method="bh")
        sig = p <= self.alpha
        return (np.sign(np.nan_to_num(z)) * sig).astype(np.int8)

