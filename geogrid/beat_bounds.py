"""Lower bounds on the worst beat deviation: proofs that no plan gets every beat closer to the mean.

Beside the whole-officers bound (:func:`geogrid.apportion.minimax_apportion`) and the heavy-grid bound
(:func:`geogrid.apportion.heavy_grid_bound`), a *trapped grid*: every beat is a connected set of grids
holding each of its grids, so a grid ``i`` lies in a beat whose deviation is at least

    b_i = min over connected sets S ∋ i (inside i's area) of min_o |W(S) / (o · μ) − 1|,

with ``o`` the beat's officers: 1 .. ``max_team`` for a beat of light grids (one officer per beat, two
with teams). The proof covers plans of that kind: only a beat holding a *heavy* grid (heavier than
``(1 + goal) · μ``) has more officers, and such a beat is taken to be able to absorb any grid near it —
a grid with a heavy grid within reach (a path of light grids weighing at most ``(1 + REACH) ·
max_team · μ``, then one step) proves nothing (b_i = 0). A light grid walled in by heavy-ish light
neighbours (alone it is too light, with any neighbour too heavy) gets a positive b_i; the plan's bound
is ``max_i b_i``, exact up to ``REACH`` (sets heavier than the cap deviate more than that).

Sets are enumerated exactly (:func:`geogrid.resplit.connected_sets`) within a weight cap, grid by grid,
stopping as soon as one set shows ``b_i`` cannot raise the bound found so far; a grid whose enumeration
passes ``max_sets`` proves nothing (b_i = 0). Grids are best visited worst-beat first (``order``), which
raises the bound early and lets the other grids stop after a few sets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geogrid.resplit import connected_sets

MAX_SETS = 5_000  # connected sets one grid may enumerate before it counts as unproven
REACH = 0.6  # largest bound computed exactly: sets up to (1 + REACH) · max_team · μ are enumerated


@dataclass(frozen=True)
class TrappedBound:
    """Largest trapped-grid bound found: its value, the grid (position) proving it, and the best set."""

    value: float
    grid: int | None
    best_set: tuple[int, ...]


def trapped_grid_bound(nbrs: list[list[int]], w: np.ndarray, mu: float, goal: float, max_team: int = 1,
                       floor: float = 0.0, order: list[int] | None = None,
                       max_sets: int = MAX_SETS, plan_dev: np.ndarray | None = None) -> TrappedBound:
    """Largest ``b_i`` (see the module docstring) above ``max(floor, goal)``; ``value = 0`` when none is.

    Parameters
    ----------
    nbrs
        Rook neighbours of each grid, already cut at the areas beats may not cross.
    w
        Workload of each grid; ``mu`` the mean workload per officer.
    goal
        Band of the plan; only bounds above it (and above ``floor``, a bound already proven) matter.
    max_team
        Most officers a beat without a heavy grid may have.
    order
        Grids to try, most promising first (default: all, heaviest first).
    plan_dev
        Optional ``|deviation|`` of each grid's beat in a plan of the kind the bound covers: ``b_i`` is at
        most that, so grids of beats within the level found so far are skipped (on Chicago's 277 beats in
        22 regions, all within the band, this turns ~40 s of enumeration into none).
    """
    w = np.asarray(w, dtype=float)
    heavy = w > (1 + goal) * mu
    best = TrappedBound(0.0, None, ())
    level = max(floor, goal)
    order = list(np.argsort(-w, kind="stable")) if order is None else list(order)
    for i in order:
        i = int(i)
        if heavy[i] or (plan_dev is not None and plan_dev[i] <= level + 1e-12):
            continue
        b, s = _grid_bound(nbrs, w, mu, heavy, i, max_team, level, max_sets)
        if b > level + 1e-12:
            level = b
            best = TrappedBound(b, i, s)
    return best


def trapped_pair_bound(nbrs: list[list[int]], w: np.ndarray, mu: float, goal: float, max_team: int = 1,
                       floor: float = 0.0, order: list[int] | None = None, max_sets: int = MAX_SETS,
                       max_grids: int = 300, plan_dev: np.ndarray | None = None) -> TrappedBound:
    """Largest bound from two grids that compete for the same light neighbours (``value`` 0 if none
    exceeds ``max(floor, goal)``).

    Grids ``i`` and ``j`` two steps apart lie either in one beat (a connected set holding both) or in
    two disjoint beats, so some beat deviates at least
    ``min(min_{S ∋ i, j} dev(S), min_{S_i ∩ S_j = ∅} max(dev(S_i), dev(S_j)))`` — positive when, say, a
    small grid is the only way for both to reach the band. Only the first ``max_grids`` grids of
    ``order`` (the worst beats' grids) are paired with the grids two steps from them; with ``plan_dev``
    (see :func:`trapped_grid_bound`) only grids of beats beyond the level found so far.
    """
    w = np.asarray(w, dtype=float)
    heavy = w > (1 + goal) * mu
    best = TrappedBound(0.0, None, ())
    level = max(floor, goal)
    order = list(np.argsort(-w, kind="stable")) if order is None else list(order)
    seen: set[tuple[int, int]] = set()
    for i in order[:max_grids]:
        i = int(i)
        if heavy[i] or (plan_dev is not None and plan_dev[i] <= level + 1e-12):
            continue
        two = sorted({k for j in nbrs[i] for k in nbrs[j]} | set(nbrs[i]) - {i})
        for j in two:
            if heavy[j] or (min(i, j), max(i, j)) in seen:
                continue
            seen.add((min(i, j), max(i, j)))
            b = _pair_bound(nbrs, w, mu, heavy, i, j, max_team, level, max_sets)
            if b > level + 1e-12:
                level = b
                best = TrappedBound(b, i, (i, j))
    return best


def _ball(nbrs, w, heavy, roots: list[int], cap: float) -> list[int] | None:
    """Grids a set of weight ≤ ``cap`` holding one of ``roots`` can reach; None when a heavy grid can."""
    dist = {r: w[r] for r in roots}
    stack = list(roots)
    while stack:
        u = stack.pop()
        for v in nbrs[u]:
            if heavy[v]:
                return None
            d = dist[u] + w[v]
            if d <= cap and d < dist.get(v, np.inf):
                dist[v] = d
                stack.append(v)
    return sorted(dist)


def _pair_bound(nbrs, w, mu, heavy, i, j, max_team, level, max_sets) -> float:
    cap = (1 + REACH) * max_team * mu
    nodes = _ball(nbrs, w, heavy, [i, j], cap)
    if nodes is None or len(nodes) > 60:
        return 0.0
    pos, nb, ws, full = _bit_graph(nbrs, w, nodes)
    jbit = 1 << pos[j]
    sets = []
    for root in (i, j):
        out = []
        for count, (mask, W) in enumerate(connected_sets(nb, ws, pos[root], full, cap)):
            if count > max_sets:
                return 0.0
            d = _set_dev(W, mu, max_team)
            if root == i and mask & jbit and d <= level:
                return d  # one beat holding both grids is within the level: no proof
            out.append((d, mask))
        out.sort()
        sets.append(out)
    A, B = sets
    best = REACH  # sets past the cap deviate more than REACH
    for d, mask in A:
        if d >= best:
            break
        if mask & jbit:
            best = min(best, d)  # i and j in one beat
            continue
        for d2, m2 in B:
            if max(d, d2) >= best:
                break
            if not m2 & mask:
                best = max(d, d2)
                break
        if best <= level:
            return best
    return float(best)


def _bit_graph(nbrs, w, nodes: list[int]) -> tuple[dict[int, int], list[int], list[float], int]:
    """``nodes`` as a local graph for :func:`connected_sets`: local index of each node, neighbour bit
    masks, weights and the mask of all nodes."""
    pos = {v: k for k, v in enumerate(nodes)}
    nb = [0] * len(nodes)
    for v, k in pos.items():
        for u in nbrs[v]:
            if u in pos:
                nb[k] |= 1 << pos[u]
    return pos, nb, [float(w[v]) for v in nodes], (1 << len(nodes)) - 1


def _set_dev(W: float, mu: float, max_team: int) -> float:
    return min(abs(W / (o * mu) - 1.0) for o in range(1, max_team + 1))


def _grid_bound(nbrs, w, mu, heavy, i, max_team, level, max_sets) -> tuple[float, tuple[int, ...]]:
    """``b_i`` when it exceeds ``level``, else a value ≤ ``level`` (the search stopped early)."""
    cap = (1 + REACH) * max_team * mu
    # local index: grids reachable from i by a path of light grids lighter in all than the cap, plus
    # their neighbours (a heavy neighbour ends the search: a multi-officer beat could take i)
    dist = {i: w[i]}
    stack = [i]
    while stack:
        u = stack.pop()
        for v in nbrs[u]:
            if heavy[v]:
                return 0.0, ()
            d = dist[u] + w[v]
            if d <= cap and d < dist.get(v, np.inf):
                dist[v] = d
                stack.append(v)
    nodes = sorted(dist)
    if len(nodes) > 60:  # a wide ball of light grids: plenty of sets near the mean, nothing to prove
        return 0.0, ()
    pos, nb, ws, full = _bit_graph(nbrs, w, nodes)
    best, best_mask, count = np.inf, 0, 0
    for mask, W in connected_sets(nb, ws, pos[i], full, cap):
        d = _set_dev(W, mu, max_team)
        if d < best:
            best, best_mask = d, mask
            if best <= level:
                return best, ()
        count += 1
        if count > max_sets:
            return 0.0, ()
    # a set past the cap deviates more than REACH: the bound is exact up to REACH, clipped there
    best = min(best, REACH)
    members = tuple(nodes[k] for k in range(len(nodes)) if best_mask >> k & 1)
    return float(best), members


SMALL_AREA = 14  # grids of an area beyond which its beats are not enumerated exactly


def small_area_bound(areas: list[np.ndarray], nbrs: list[list[int]], w: np.ndarray, mu: float, officers: int,
                     goal: float, hint: list[int] | None = None, spread: int = 2,
                     max_sets: int = 200_000) -> tuple[float, list[dict[int, float]]]:
    """Least worst deviation over every way to share ``officers`` among the areas beats may not cross,
    each area's beats cut optimally: a lower bound for plans of one-officer beats.

    An area of at most ``SMALL_AREA`` grids and no heavy grid with ``o`` officers (fewer than its grids)
    is cut into ``o`` connected beats in every possible way (:func:`geogrid.resplit.best_split`): its
    best worst deviation ``d_a(o)`` is exact. Other areas, and ``o`` beyond, get the whole-officers floor
    ``|W_a / (o·μ) − 1|`` (every beat of the area equal). The bound is the least ``τ`` for which each area
    has an ``o_a`` with ``d_a(o_a) ≤ τ`` and the ``o_a`` sum to ``officers`` (bisection over candidate
    values, a bitset subset-sum for the check). It generalises the whole-officers bound, which treats
    every area as the floor. With ``hint`` (officers per area in a plan) only ``o`` within ``spread`` of
    it is enumerated (the floor stands in for the rest: still a valid bound). Returns the bound and,
    per area, the exact ``d_a(o)`` computed.
    """
    from geogrid.resplit import best_split  # noqa: PLC0415  (beat_bounds is imported by resplit's users)

    w = np.asarray(w, dtype=float)
    heavy = w > (1 + goal) * mu
    exact: list[dict[int, float]] = []
    for nodes in areas:
        d: dict[int, float] = {}
        if 1 < len(nodes) <= SMALL_AREA and not heavy[nodes].any():
            pos = {int(v): k for k, v in enumerate(nodes)}
            nb = [sum(1 << pos[u] for u in nbrs[int(v)] if u in pos) for v in nodes]
            ws = w[nodes].tolist()
            near = range(1, len(nodes)) if hint is None else range(
                max(1, hint[len(exact)] - spread), min(len(nodes), hint[len(exact)] + spread + 1))
            for o in near:
                res = best_split(nb, ws, [mu] * o, 0.0, 10.0, max_sets)
                if res is not None:
                    d[o] = max(res[1], abs(sum(ws) / (o * mu) - 1))
        exact.append(d)
    W = [float(w[nodes].sum()) for nodes in areas]

    def dev(a: int, o: int) -> float:
        return exact[a].get(o, abs(W[a] / (o * mu) - 1))

    def feasible(tau: float) -> bool:
        reach = 1  # bit s set: the areas so far can take s officers
        for a in range(len(areas)):
            lo = max(1, math.ceil(W[a] / ((1 + tau) * mu) - 1e-9))
            hi = officers if tau >= 1 else min(officers, math.floor(W[a] / ((1 - tau) * mu) + 1e-9))
            opts = {o for o in range(lo, hi + 1) if o not in exact[a]} | {o for o, v in exact[a].items()
                                                                          if v <= tau + 1e-12}
            new = 0
            for o in opts:
                new |= reach << o
            reach = new & ((1 << (officers + 1)) - 1)
            if not reach:
                return False
        return bool(reach >> officers & 1)

    cands = sorted({dev(a, o) for a in range(len(areas)) for o in range(1, officers + 1)} | {0.0})
    lo, hi = 0, len(cands) - 1
    if not feasible(cands[hi]):
        return float(cands[hi]), exact
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(cands[mid]):
            hi = mid
        else:
            lo = mid + 1
    return float(cands[lo]), exact
