"""Getis-Ord Gi* hot spots on H3 cells, with FDR correction, ArcGIS bins and a scale rule.

Weights are binary k-ring neighbourhoods including the cell itself (Gi*, "star"): a cell's
neighbourhood is every study-area cell within ``k`` grid steps. Zero-count cells of the study area
take part (pass counts from :func:`geogrid.counts.cell_counts` with a study area).

z-scores are the analytical ones of Getis & Ord (1992) / Ord & Getis (1995), identical to
``esda.G_Local(y, w, transform='B', star=True).Zs``. p-values are two-sided from z.

False Discovery Rate, as ArcGIS applies it: for each confidence level (90, 95, 99 %) the
Benjamini–Hochberg step-up rule picks the largest rank ``i`` with ``p_(i) <= alpha * i / n`` and
marks the cells with p at or below it significant at that level. This equals comparing BH-adjusted
p-values (``p_fdr``) with ``alpha``. ``gi_bin`` is then +/-3, 2, 1 for 99/95/90 % (the sign of z) and
0 otherwise — the seven classes of ArcGIS's ``Gi_Bin``.

Scale (:func:`choose_scale`), in the spirit of Optimized Hot Spot Analysis: the resolution is the
finest candidate at which incident-holding cells hold on average at least ``min_mean`` incidents
(so counts are not mostly 0/1); then ``k`` is the first peak of the global Moran's I z-score
(binary k-ring weights) over the candidate ks — the scale at which spatial clustering is most
pronounced, as Incremental Spatial Autocorrelation does with distance bands. With no peak, the
k with the largest z is taken.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from geogrid.cells import ring_pairs
from geogrid.errors import InputError, NotEnoughData

MIN_INCIDENTS = 30
LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))  # (bin, alpha): 99, 95, 90 % confidence
LABELS = {
    3: ("Hot Spot - 99% Confidence", "热点（99% 置信）"),
    2: ("Hot Spot - 95% Confidence", "热点（95% 置信）"),
    1: ("Hot Spot - 90% Confidence", "热点（90% 置信）"),
    0: ("Not Significant", "不显著"),
    -1: ("Cold Spot - 90% Confidence", "冷点（90% 置信）"),
    -2: ("Cold Spot - 95% Confidence", "冷点（95% 置信）"),
    -3: ("Cold Spot - 99% Confidence", "冷点（99% 置信）"),
}


def kring_weights(cells: np.ndarray, k: int = 1, self_weight: bool = True) -> sp.csr_matrix:
    """Binary sparse weights: ``W[i, j] = 1`` when cell j is within ``k`` rings of cell i.

    Only cells in ``cells`` count as neighbours (the study area's edge). Same neighbours as
    :func:`geogrid.cells.k_ring_neighbours`, from the vectorised :func:`geogrid.cells.ring_pairs`.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k!r}")
    cells = np.asarray(cells, dtype=np.int64)
    n = cells.size
    rows, cols, _ = ring_pairs(cells, int(k))
    if not self_weight:
        off = rows != cols
        rows, cols = rows[off], cols[off]
    w = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    w.sum_duplicates()
    w.data[:] = 1.0
    return w


def gi_star(y: np.ndarray, w: sp.spmatrix) -> np.ndarray:
    """Analytical Gi* z-scores of ``y`` (n,) or each column of ``y`` (n, t) under binary ``w``.

    ``w`` must hold the self weight on its diagonal. Written out (not esda) because esda needs a
    libpysal W per call, which costs more than the statistic; a test pins equality with esda.
    Columns with no variation give NaN.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    total = y.sum(axis=0)
    mean = total / n
    var = (y**2).sum(axis=0) / n - mean**2
    card = np.asarray(w.sum(axis=1)).ravel()
    if y.ndim == 2:
        card = card[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (w @ y) / total
        eg = card / n
        vg = card * (n - card) / (n - 1) / n**2 * var / mean**2
        z = (g - eg) / np.sqrt(vg)
    bad = ~(var > 1e-12 * np.maximum(mean**2, 1e-300))
    if np.any(bad):
        z = np.where(bad, np.nan, z)
    return z


def fdr_bins(z: np.ndarray, fdr: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Two-sided p, BH-adjusted p (or None) and the -3..3 bin of each z (NaN z gives bin 0)."""
    z = np.asarray(z, dtype=np.float64)
    p = 2.0 * stats.norm.sf(np.abs(z))
    p = np.where(np.isfinite(p), p, 1.0)
    p_test = stats.false_discovery_control(p, method="bh") if fdr and p.size else p
    bins = np.zeros(z.shape, dtype=np.int8)
    for level, alpha in reversed(LEVELS):  # weakest first, stronger levels overwrite
        bins[p_test <= alpha] = level
    bins = (bins * np.sign(np.nan_to_num(z))).astype(np.int8)
    return p, (p_test if fdr else None), bins


def hotspots(
    counts: pd.DataFrame,
    k: int = 1,
    fdr: bool = True,
    value: str = "count",
    min_incidents: int = MIN_INCIDENTS,
) -> pd.DataFrame:
    """Gi* hot and cold spots of cell counts.

    Parameters
    ----------
    counts : DataFrame
        ``cell`` and ``value`` columns, one row per study-area cell (zeros included).
    k : int
        k-ring radius of the neighbourhood (self included).
    fdr : bool
        Benjamini–Hochberg correction per confidence level (on by default).
    value : str
        Column analysed; ``count`` by default (``rate_per_1000`` also works).

    Returns
    -------
    DataFrame
        The input columns plus ``z``, ``p`` (two-sided), ``p_fdr`` (when ``fdr``), ``gi_bin``
        (-3..3), ``label`` and ``label_zh``.

    Raises
    ------
    NotEnoughData
        Fewer than ``min_incidents`` incidents (sum of ``count``), or no variation.
    """
    _check_counts(counts, value, min_incidents)
    cells = counts["cell"].to_numpy(dtype=np.int64)
    y = counts[value].to_numpy(dtype=np.float64)
    z = gi_star(y, kring_weights(cells, k))
    if np.isnan(z).all():
        raise NotEnoughData(f"`{value}` has no variation across cells: no hot spot can stand out")
    p, p_fdr, bins = fdr_bins(z, fdr)
    out = counts.copy()
    out["z"] = z
    out["p"] = p
    if fdr:
        out["p_fdr"] = p_fdr
    out["gi_bin"] = bins
    out["label"] = [LABELS[b][0] for b in bins.tolist()]
    out["label_zh"] = [LABELS[b][1] for b in bins.tolist()]
    return out


@dataclass(frozen=True)
class Scale:
    """Result of :func:`choose_scale`: the chosen resolution and k, and the evidence."""

    res: int
    k: int
    mean_per_cell: dict[int, float]
    moran_z: dict[int, float]


def choose_scale(
    incidents: pd.DataFrame,
    study_area,
    resolutions=(7, 8, 9, 10),
    ks=(1, 2, 3, 4),
    min_mean: float = 3.0,
    min_incidents: int = MIN_INCIDENTS,
) -> Scale:
    """Pick the H3 resolution and k-ring radius for :func:`hotspots` (rule in the module doc)."""
    from esda.moran import Moran
    from libpysal.weights import WSP

    from geogrid.counts import cell_counts

    if len(incidents) < min_incidents:
        raise NotEnoughData(
            f"{len(incidents)} incidents; hot spot analysis needs at least {min_incidents}"
        )
    means = {}
    for r in sorted(resolutions):
        c = cell_counts(incidents, r, study_area)["count"]
        means[r] = float(c[c > 0].mean()) if (c > 0).any() else 0.0
    ok = [r for r in means if means[r] >= min_mean]
    res = max(ok) if ok else min(means)
    counts = cell_counts(incidents, res, study_area)
    y = counts["count"].to_numpy(dtype=float)
    zs = {}
    for k in sorted(ks):
        w = WSP(kring_weights(counts["cell"].to_numpy(), k, self_weight=False)).to_W(silence_warnings=True)
        w.transform = "B"
        zs[k] = float(Moran(y, w, transformation="B", permutations=0).z_norm)
    order = sorted(zs)
    peaks = [
        k for i, k in enumerate(order)
        if (i == 0 or zs[k] > zs[order[i - 1]]) and i + 1 < len(order) and zs[k] >= zs[order[i + 1]]
    ]
    best = peaks[0] if peaks else max(zs, key=lambda k: zs[k])
    return Scale(res=res, k=best, mean_per_cell=means, moran_z=zs)


def _check_counts(counts: pd.DataFrame, value: str, min_incidents: int) -> None:
    for col in ("cell", value):
        if col not in counts.columns:
            raise InputError(f"counts need a `{col}` column (see geogrid.counts.cell_counts)")
    if counts["cell"].duplicated().any():
        raise InputError("counts have duplicate cells; aggregate to one row per cell first")
    total = counts["count"].sum() if "count" in counts.columns else np.inf
    if total < min_incidents:
        raise NotEnoughData(
            f"{int(total)} incidents; Gi* hot spots need at least {min_incidents} "
            "(widen the time window, add categories or use a coarser area)"
        )
