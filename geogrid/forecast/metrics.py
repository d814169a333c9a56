"""Scores of a hotspot forecast against what happened: hit rate, PAI, PEI, PEI*, warning accuracy.

A forecast *flags* the top ``k = round(share × n)`` of the ``n`` study-area cells by score (at least one);
cells of equal score are ordered by a seeded random draw, so ties neither favour nor penalise a method.
With ``N`` incidents in the test period, ``n_hit`` of them in flagged cells, and area measured as a
share of cells (H3 cells of one resolution have near-equal areas):

* **hit rate** = n_hit / N — the share of incidents captured;
* **PAI** (Chainey et al. 2008) = hit rate / (k / n);
* **PEI** (Hunt 2016) = n_hit / n_max, with n_max the incidents in the k cells that had most;
* **PEI*** (White, Hunt & Green 2023) = PAI / PAI*, where the perfect map flags only
  ``a* = min(k, cells with ≥1 incident)`` cells: it is PEI × a*/k and does not reward flagging more
  cells than there were cells with crime;
* **warning accuracy** = share of flagged cells that have at least one incident in the period (the
  precision of the warnings); its ceiling is min(1, cells with ≥1 incident / k).
"""
from __future__ import annotations

import numpy as np

from geogrid.errors import InputError


def n_flagged(n_cells: int, share: float) -> int:
    """Number of cells flagged at an area share."""
    if not 0 < share <= 1:
        raise InputError(f"area share must be in (0, 1], got {share!r}")
    return max(1, int(round(share * n_cells)))


def flag_top(scores: np.ndarray, share: float, *, seed: int = 0) -> np.ndarray:
    """Boolean mask of the top ``share`` of cells by score, ties broken by a seeded random order."""
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise InputError("forecast scores contain NaN; every study-area cell needs a score")
    k = n_flagged(len(scores), share)
    tie = np.random.default_rng(seed).random(len(scores))
    order = np.lexsort((tie, -scores))
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:k]] = True
    return mask


def hit_rate(flagged: np.ndarray, actual: np.ndarray) -> float:
    """Share of the period's incidents that fell in flagged cells (NaN if there were none)."""
    total = actual.sum()
    return float(actual[flagged].sum() / total) if total > 0 else np.nan


def pai(flagged: np.ndarray, actual: np.ndarray) -> float:
    """Predictive accuracy index: hit rate over the flagged share of the area."""
    return hit_rate(flagged, actual) / (flagged.sum() / len(flagged))


def pei(flagged: np.ndarray, actual: np.ndarray) -> float:
    """Captured incidents over the most any map of the same size could capture."""
    best = np.sort(actual)[::-1][: flagged.sum()].sum()
    return float(actual[flagged].sum() / best) if best > 0 else np.nan


def pei_star(flagged: np.ndarray, actual: np.ndarray) -> float:
    """PAI over the PAI of a perfect map that flags no cell without crime (PEI × a*/k)."""
    k = flagged.sum()
    a_star = min(k, int((actual > 0).sum()))
    return pei(flagged, actual) * a_star / k if a_star > 0 else np.nan


def warning_accuracy(flagged: np.ndarray, actual: np.ndarray) -> float:
    """Share of flagged cells with at least one incident in the period (precision of the warnings)."""
    return float((actual[flagged] > 0).mean())


def evaluate(scores: np.ndarray, actual: np.ndarray, area_shares=(0.01, 0.05, 0.10), *, seed: int = 0) -> list[dict]:
    """All metrics of one forecast at each area share; one dict per share."""
    scores, actual = np.asarray(scores, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if scores.shape != actual.shape:
        raise InputError(f"scores ({scores.shape}) and actual counts ({actual.shape}) must align cell by cell")
    rows = []
    for share in area_shares:
        f = flag_top(scores, share, seed=seed)
        rows.append({
            "area_share": float(share),
            "n_flagged": int(f.sum()),
            "hit_rate": hit_rate(f, actual),
            "pai": pai(f, actual),
            "pei": pei(f, actual),
            "pei_star": pei_star(f, actual),
            "warning_accuracy": warning_accuracy(f, actual),
            "warning_ceiling": min(1.0, float((actual > 0).sum()) / f.sum()),
        })
    return rows
