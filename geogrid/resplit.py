"""Exact re-partition of a few adjacent beats, and the repair loop that uses it.

Boundary moves and swaps change one or two grids at a time; with 2–4 grids a beat the workloads are
coarse subset sums and a beat out of the band often needs its neighbours re-cut *jointly*. A union of
two or three adjacent beats holds ~6–14 grids, few enough to enumerate every split into connected parts
and keep the best one. Hand-written because no library enumerates connected partitions with weight
windows (networkx enumerates connected subgraphs, but without pruning by weight, and a mask-based
enumeration here is ~50× faster on such small graphs).

Objective of a split, in order: the deviations of its parts sorted from worst to best, each clipped
at the band (a deviation inside the band counts as the band, so plans differ by what lies outside it),
compared lexicographically; then the local-search cost (d², compactness). Replacing some beats by a
split that is lexicographically better lowers the plan's sorted deviation vector lexicographically,
so the worst deviation never rises and the repair loop cannot cycle. When no union of a few beats
helps, a ball of beats around the worst one is dissolved and rebuilt (:func:`regrow`, a
large-neighbourhood move) under the same acceptance rule.
"""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from geogrid.regions import Graph, Partition, solve

KEY_ROUND = 9  # digits deviations are rounded to in keys: float noise must not count as a gain
LNS_SECONDS = 0.2  # budget of one rebuild of a ball of beats
MAX_SETS = 20_000  # connected sets one re-split may enumerate before it gives up (deterministic cap)


def connected_sets(nbr: list[int], w: list[float], root: int, within: int, cap: float,
                   ) -> Iterator[tuple[int, float]]:
    """Every connected set (bitmask) of nodes in ``within`` that contains ``root`` and weighs at most
    ``cap``, with its weight, each exactly once (``nbr[i]`` is the neighbour bitmask of node ``i``).

    Extension with banned siblings: a set is produced in the branch of the first candidate (in bit
    order) it contains, all earlier candidates being banned there, so no set comes twice.
    """
    if w[root] > cap:
        return
    stack = [(1 << root, w[root], nbr[root] & within & ~(1 << root), 0)]
    while stack:
        s, ws, cand, banned = stack.pop()
        yield s, ws
        c = cand
        while c:
            v = c & -c
            c ^= v
            banned |= v
            i = v.bit_length() - 1
            nw = ws + w[i]
            if nw <= cap:
                stack.append((s | v, nw, (c | nbr[i]) & within & ~s & ~v & ~banned, banned))


def is_connected(nbr: list[int], mask: int) -> bool:
    """True when the nodes of ``mask`` form one connected piece (an empty mask is not)."""
    if not mask:
        return False
    seen = front = mask & -mask
    while front:
        v = front & -front
        front ^= v
        new = nbr[v.bit_length() - 1] & mask & ~seen
        seen |= new
        front |= new
    return seen == mask


def best_split(nbr: list[int], w: list[float], targets: list[float], band: float, bound: float,
               max_sets: int = MAX_SETS) -> tuple[list[list[int]], list[float]] | None:
    """All splits of nodes ``0..n-1`` into ``len(targets)`` connected parts, part ``p`` for target
    ``targets[p]``, whose every part deviates at most ``bound`` from its target; returns
    ``(splits, worst)`` where ``splits`` lists each split as a part index per node, restricted to the
    splits whose worst clipped deviation is least, or ``None`` when no split is within ``bound`` or the
    enumeration passed ``max_sets``. Parts with equal targets are interchangeable and tried once.
    """
    n, k = len(w), len(targets)
    full = (1 << n) - 1
    best: list = [bound + 1e-12, []]  # worst clipped deviation allowed, splits reaching it
    count = [0]

    def dev(W: float, t: float) -> float:
        return abs(W / t - 1.0) if t > 0 else (0.0 if W == 0 else np.inf)

    def rec(mask: int, left: list[int], parts: list[tuple[int, int]], worst: float) -> bool:
        # left: indices of targets not yet used; returns False when the enumeration cap was hit
        T = sum(targets[p] for p in left)
        Wm = sum(w[i] for i in range(n) if mask >> i & 1)
        # every part within d of its target puts the whole remainder within d of the targets' sum
        if max(dev(Wm, T), band) > best[0] + 1e-12:
            return True
        if len(left) == 1:
            p = left[0]
            d = max(dev(Wm, targets[p]), band, worst)
            if d <= best[0] + 1e-12 and is_connected(nbr, mask):
                if d < best[0] - 1e-12:
                    best[0], best[1] = d, []
                best[1].append(parts + [(mask, p)])
            return True
        root = (mask & -mask).bit_length() - 1
        cap = max(targets[p] for p in left) * (1 + best[0]) + 1e-9
        for s, ws in connected_sets(nbr, w, root, mask, cap):
            count[0] += 1
            if count[0] > max_sets:
                return False
            if s == mask:
                continue
            tried: set[float] = set()
            for p in left:
                if targets[p] in tried:
                    continue
                tried.add(targets[p])
                d = max(dev(ws, targets[p]), band)
                if d > best[0] + 1e-12:
                    continue
                if not rec(mask & ~s, [q for q in left if q != p], parts + [(s, p)], max(worst, d)):
                    return False
        return True

    if not rec(full, list(range(k)), [], 0.0) or not best[1]:
        return None
    out = []
    for parts in best[1]:
        lab = [0] * n
        for mask, p in parts:
            for i in range(n):
                if mask >> i & 1:
                    lab[i] = p
        out.append(lab)
    return out, best[0]


def resplit(part: Partition, regions: list[int], max_sets: int = MAX_SETS) -> bool:
    """Re-cut the union of ``regions`` (adjacent regions of ``part``) exactly; apply the best split when
    it is lexicographically better (see the module docstring) than the current one. Returns whether
    the partition changed."""
    nodes = sorted(i for r in regions for i in part.mem[r])
    pos = {v: j for j, v in enumerate(nodes)}
    g = part.g
    nbr = [0] * len(nodes)
    for j, v in enumerate(nodes):
        for u in g.nbrs[v]:
            if u in pos:
                nbr[j] |= 1 << pos[u]
    w = [g.weight[v] for v in nodes]
    targets = [part.t[r] for r in regions]
    cur_dev = [abs(part.W[r] / part.t[r] - 1.0) if part.t[r] > 0 else 0.0 for r in regions]
    cur_key = _key(cur_dev, part.band)
    cur_cost = sum(part.C[r] for r in regions)
    found = best_split(nbr, w, targets, part.band, max(cur_key[0], part.band), max_sets)
    if found is None:
        return False
    splits, _ = found
    best, best_key, best_lab = cur_cost, cur_key, None
    for lab in splits:
        devs, cost = _evaluate(part, nodes, lab, regions)
        key = _key(devs, part.band)
        if key < best_key or (key == best_key and cost < best - 1e-12):
            best, best_key, best_lab = cost, key, lab
    if best_lab is None:
        return False
    for j, v in enumerate(nodes):
        r = regions[best_lab[j]]
        if part.lab[v] != r:
            part.apply(v, r)
    return True


def _key(devs: list[float], band: float) -> tuple[float, ...]:
    return tuple(sorted((round(max(d, band), KEY_ROUND) for d in devs), reverse=True))


def _evaluate(part: Partition, nodes: list[int], lab: list[int], regions: list[int]):
    g = part.g
    k = len(regions)
    W, A, P = [0.0] * k, [0.0] * k, [0.0] * k
    where = dict(zip(nodes, lab))
    for v, p in where.items():
        W[p] += g.weight[v]
        A[p] += g.area[v]
        P[p] += g.perimeter[v]
        for u, L in g.shared[v].items():
            if where.get(u, -1) == p:
                P[p] -= L  # seen from both sides: twice in all, as in Partition
    devs, cost = [], 0.0
    for p, r in enumerate(regions):
        t = part.t[r]
        devs.append(abs(W[p] / t - 1.0) if t > 0 else 0.0)
        cost += part.cost(W[p], A[p], P[p], r)
    return devs, cost


def _unions(part: Partition, a: int, max_nodes: int, max_beats: int, max_path: int = 7,
            max_path_nodes: int = 20) -> list[list[int]]:
    """Connected sets of 2..``max_beats`` regions holding ``a`` and at most ``max_nodes`` grids, fewest
    regions first, then fewest grids (small unions are cheap to enumerate and disturb the plan least);
    then paths of up to ``max_path`` beats (``max_path_nodes`` grids) from ``a`` to a beat leaning the
    other way."""
    size = lambda rs: sum(len(part.mem[r]) for r in rs)  # noqa: E731
    nb: dict[int, set[int]] = {}

    def nbrs(r: int) -> set[int]:
        if r not in nb:
            nb[r] = part._region_neighbours(r)
        return nb[r]

    out: list[list[int]] = []
    level = {frozenset([a])}
    for _ in range(max_beats - 1):
        level = {s | {c} for s in level for r in s for c in nbrs(r) if c not in s}
        level = {s for s in level if size(s) <= max_nodes}
        out += sorted((sorted(s) for s in level), key=lambda rs: (size(rs), rs))
        if not level:
            break
    # ejection chains: when the beats around ``a`` all lean the same way, its surplus (or shortfall) must
    # travel along a path of beats to one with room; the path's union is re-cut exactly
    dev = part.deviations()
    sign = 1.0 if dev[a] > 0 else -1.0
    prev, frontier = {a: -1}, [a]
    for _ in range(max(0, max_path - 1)):
        nxt = []
        for r in frontier:
            for b in sorted(nbrs(r)):
                if b in prev:
                    continue
                prev[b] = r
                nxt.append(b)
                if sign * dev[b] < 0:
                    path, x = [], b
                    while x >= 0:
                        path.append(x)
                        x = prev[x]
                    if len(path) > max_beats and size(path) <= max_path_nodes:
                        out.append(sorted(path))
        frontier = nxt
    return out


def repair(part: Partition, deadline: float, max_nodes: int = 14, max_beats: int = 4,
           max_sets: int = MAX_SETS, lns_tries: int = 3, lns_radii: tuple[int, ...] = (2, 3, 4)) -> int:
    """Fix the regions outside the band, worst first, by exact re-cuts of unions of two to ``max_beats``
    regions, then ejection-chain paths, then rebuilds of balls of regions (``lns_radii`` steps wide,
    ``lns_tries`` seeds each), while that helps or until ``deadline``. Cheap stages run first over
    every region (a few beats out of many are fixed by pairs and triples); an expensive stage that
    succeeds sends the loop back to the cheap ones. Returns the number of changes applied. Regions in
    ``part.fixed`` are left alone; ``part.active`` (when set) limits which regions may change."""
    stages = [(min(3, max_beats), False, ()), (max_beats, True, ())]
    if lns_radii and lns_tries:
        stages.append((max_beats, True, tuple(lns_radii)))
    done, s, tries = 0, 0, {}
    while s < len(stages) and time.perf_counter() < deadline:
        n = _repair_stage(part, deadline, max_nodes, max_sets, *stages[s], lns_tries, tries)
        done += n
        s = 0 if n and s > 0 else s + 1
    return done


def _repair_stage(part: Partition, deadline: float, max_nodes: int, max_sets: int, max_beats: int,
                  paths: bool, radii: tuple[int, ...], lns_tries: int, tries: dict[int, int]) -> int:
    done = 0
    stuck: set[int] = set()  # regions nothing around them improves (until a neighbour changes)
    while time.perf_counter() < deadline:
        dev = np.abs(part.deviations())
        order = [int(a) for a in np.argsort(-dev, kind="stable")
                 if dev[a] > part.band + 1e-9 and int(a) not in stuck and int(a) not in part.fixed
                 and part.t[a] > 0 and (part.active is None or int(a) in part.active)]
        if not order:
            break
        a = order[0]
        changed = False
        for rs in _unions(part, a, max_nodes, max_beats, max_path=7 if paths else 0):
            if any(r in part.fixed or part.t[r] <= 0 or (part.active is not None and r not in part.active)
                   for r in rs):
                continue
            if time.perf_counter() > deadline:
                return done
            if resplit(part, rs, max_sets):
                changed, touched = True, rs
                break
        # rebuild balls of regions around it, wider each time (2 steps hold ~10 beats, 3 ~25)
        for radius in (radii if not changed else ()):
            rs = _ball(part, a, radius)
            n_grids = sum(len(part.mem[r]) for r in rs)
            for t in range(lns_tries):
                if time.perf_counter() > deadline:
                    return done
                seed = a * 7919 + radius * 101 + t + tries.get(a, 0)
                tries[a] = tries.get(a, 0) + 1  # a later rebuild around a takes new seeds
                if regrow(part, rs, seed, min(deadline, time.perf_counter() + LNS_SECONDS * max(1.0, n_grids / 40))):
                    changed, touched = True, rs
                    break
            if changed:
                break
        if changed:
            done += 1
            # regions near the change may have new options
            stuck -= set(touched) | {c for r in touched for c in part._region_neighbours(r)}
        else:
            stuck.add(a)
    return done


def _ball(part: Partition, a: int, radius: int) -> list[int]:
    """Regions within ``radius`` steps of ``a`` in the region graph (movable ones only)."""
    seen, frontier = {a}, [a]
    for _ in range(radius):
        frontier = [b for r in frontier for b in sorted(part._region_neighbours(r))
                    if b not in seen and part.t[b] > 0 and (part.active is None or b in part.active)]
        frontier = list(dict.fromkeys(frontier))
        seen.update(frontier)
    return sorted(seen)


def regrow(part: Partition, regions: list[int], seed: int, deadline: float) -> bool:
    """Large-neighbourhood move: dissolve ``regions`` (a connected ball of regions) and rebuild them from
    new seeds (growing, local search, exact re-cuts inside); keep the rebuild when it is
    lexicographically better (module docstring). Escapes plans where a whole area leans one way, which
    re-cuts of a few beats cannot fix."""
    nodes = sorted(i for r in regions for i in part.mem[r])
    pos = {v: j for j, v in enumerate(nodes)}
    g = part.g
    shared = [{pos[u]: L for u, L in g.shared[v].items() if u in pos} for v in nodes]
    sub = Graph([list(s) for s in shared], shared, [g.weight[v] for v in nodes],
                [g.area[v] for v in nodes], [g.perimeter[v] for v in nodes])
    # multi-officer regions first: each is seeded at its heaviest grid, as in the first construction
    order = sorted(regions, key=lambda r: -part.t[r])
    multi = [r for r in order if part.t[r] > 1.5 * min(part.t[q] for q in regions)]
    forced = [pos[max(part.mem[r], key=lambda v: g.weight[v])] for r in multi]
    try:
        new = solve(sub, [part.t[r] for r in order], forced, part.band, part.gamma, seed, deadline, 1,
                    patience=50)
    except ValueError:  # a ball split by fixed regions: nothing to rebuild
        return False
    repair(new, deadline, lns_radii=())
    cur = _key([abs(part.W[r] / part.t[r] - 1.0) for r in regions], part.band)
    key = _key([abs(d) for d in new.deviations()], part.band)
    if not (key < cur or (key == cur and sum(new.C) < sum(part.C[r] for r in regions) - 1e-12)):
        return False
    for j, v in enumerate(nodes):
        r = order[new.lab[j]]
        if part.lab[v] != r:
            part.apply(v, r)
    return True
