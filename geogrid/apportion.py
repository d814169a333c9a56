"""Officers to areas, and the least maximum deviation any beat plan can reach.

Officers are apportioned to areas that beats may not cross (station areas, and the separate pieces of a
station) so that the largest deviation of an area's workload per officer from the city mean is as small
as possible. Plain largest-remainder can leave a small area far below the mean when a larger one
is only slightly above it; the minimax rule cannot, and its optimum is at the same time a **proof**: no
plan with these areas and officers does better, because a beat plan's worst beat in an area deviates at
least as much as the area's own average.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from geogrid.errors import InputError


def _bounds(W: np.ndarray, mu: float, D: float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.maximum(1, np.ceil(W / (mu * (1 + D)) - 1e-9)).astype(np.int64)
    if D >= 1:
        hi = np.full(len(W), np.iinfo(np.int64).max // 4)
    else:
        hi = np.floor(W / (mu * (1 - D)) + 1e-9).astype(np.int64)
    return lo, hi


def minimax_apportion(workloads: np.ndarray, officers: int) -> tuple[np.ndarray, float]:
    """Whole officers per area (each at least 1) minimising the worst ``|W_a/(o_a·μ) − 1|``.

    Parameters
    ----------
    workloads
        Workload of each area (non-negative).
    officers
        Officers to share out; at least one per area.

    Returns
    -------
    (officers per area, the least achievable maximum deviation)

    Examples
    --------
    >>> o, d = minimax_apportion(np.array([10.0, 10.0, 1.0]), 4)
    >>> o.tolist(), round(d, 3)
    ([2, 1, 1], 0.905)
    """
    W = np.asarray(workloads, dtype=float)
    if len(W) == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    if officers < len(W):
        raise InputError(
            f"{officers} officers cannot cover {len(W)} areas that beats may not cross "
            "(station areas and their separate pieces); add officers or merge station areas"
        )
    mu = W.sum() / officers if W.sum() > 0 else 1.0
    if W.sum() <= 0:
        W = np.ones_like(W)
        mu = len(W) / officers

    def feasible(D: float) -> bool:
        lo, hi = _bounds(W, mu, D)
        return bool((lo <= hi).all() and lo.sum() <= officers <= hi.sum())

    lo_D, hi_D = 0.0, float(W.max() / mu) + 1.0
    if not feasible(lo_D):
        for _ in range(60):
            mid = 0.5 * (lo_D + hi_D)
            lo_D, hi_D = (lo_D, mid) if feasible(mid) else (mid, hi_D)
        D = hi_D
    else:
        D = 0.0
    lo, hi = _bounds(W, mu, D)
    o = lo.copy()
    # the remaining officers go where the workload per officer is highest, within each area's range
    heap = [(-W[a] / o[a], a) for a in range(len(W)) if o[a] < hi[a]]
    heapq.heapify(heap)
    for _ in range(officers - int(o.sum())):
        _, a = heapq.heappop(heap)
        o[a] += 1
        if o[a] < hi[a]:
            heapq.heappush(heap, (-W[a] / o[a], a))
    dev = float(np.abs(W / (o * mu) - 1).max())
    return o, dev


def heavy_grid_bound(grid_workload: np.ndarray, area_workload: np.ndarray, mu: float, officers: int) -> float:
    """Least worst deviation forced by single grids: a beat holding grid ``i`` with ``o`` officers has a
    workload between ``w_i`` and its area's total, so it deviates at least
    ``min_o max(w_i/(o·μ) − 1, 1 − W_area/(o·μ), 0)``.
    """
    w = np.asarray(grid_workload, dtype=float)
    Wa = np.asarray(area_workload, dtype=float)
    best = 0.0
    for wi, wa in zip(w, Wa):
        if wi <= mu:
            continue  # o = 1 already puts w_i under the mean; the area floor covers the rest
        o = np.arange(1, min(officers, math.ceil(wi / mu) + 2) + 1)
        dev = np.maximum(np.maximum(wi / (o * mu) - 1, 1 - wa / (o * mu)), 0).min()
        best = max(best, float(dev))
    return best
