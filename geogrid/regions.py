"""Balanced contiguous regions on a weighted graph: the engine under beats and grid redesign.

Hand-written because spopt's regionalisers do not fit the problem: max-p takes a floor, not a band;
Region-KMeans and SKATER balance attribute similarity, not workload, and are one to two orders of
magnitude slower (see bench/beats.py). The method is the classic one of districting practice:

1. seeds spread like k-means++ but by hop distance on the rook graph (heavy grids seed their own
   multi-officer region);
2. region growing: the least-filled region takes the frontier grid that shares the most border with it;
3. local search: boundary moves, then pairwise swaps, that keep every region connected (a removed grid
   must not cut its region: a breadth-first check) and lower
   ``sum(d² + penalty·max(0, |d| − band)² + γ·(1 − Polsby–Popper))`` where ``d`` is a region's
   deviation from its target; perimeters are updated from the shared border lengths, so
   compactness is exact, not a centroid proxy;
4. several seeded starts within a time budget; the best by (excess over the band, cost) is kept.

Positions are local (0..n-1) and everything is plain Python lists: the graphs are small and sparse, and
per-move work is a handful of scalar updates.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np

PENALTY = 100.0  # weight of the squared excess over the band: dominates everything inside it
EPS = 1e-12


@dataclass
class Graph:
    """Local graph of one unit: neighbour lists, shared border lengths, and grid attributes."""

    nbrs: list[list[int]]
    shared: list[dict[int, float]]
    weight: list[float]
    area: list[float]
    perimeter: list[float]

    @property
    def n(self) -> int:
        return len(self.nbrs)


class Partition:
    """Labels of a graph's nodes into regions with targets, and the bookkeeping for local search."""

    def __init__(self, g: Graph, labels: list[int], targets: list[float], band: float, gamma: float,
                 fixed: set[int] | None = None):
        self.g, self.lab, self.t = g, list(labels), list(targets)
        self.band, self.gamma = band, gamma
        self.fixed = fixed or set()  # regions local search may not change (incremental rebalancing)
        self.active: set[int] | None = None  # regions local search looks at (None: all)
        self.journal: list[tuple[int, int]] | None = None  # (node, region it left), for undo
        # regions changed since the last move pass (None: look at every node). A move's gain depends only
        # on the two regions it joins, so a pass need only revisit the changed regions and their neighbours:
        # on 5,000 grids this made a pass ~5× cheaper once the first full sweep is done.
        self.dirty: set[int] | None = None
        k = len(targets)
        self.mem: list[set[int]] = [set() for _ in range(k)]
        self.W, self.A, self.P = [0.0] * k, [0.0] * k, [0.0] * k
        for i, r in enumerate(self.lab):
            self.mem[r].add(i)
            self.W[r] += g.weight[i]
            self.A[r] += g.area[i]
            self.P[r] += g.perimeter[i]
        for i, r in enumerate(self.lab):
            for j, L in g.shared[i].items():
                if self.lab[j] == r:
                    self.P[r] -= L  # each internal border is seen twice: once from each side
        self.C = [self.cost(self.W[r], self.A[r], self.P[r], r) for r in range(k)]

    def cost(self, W: float, A: float, P: float, r: int) -> float:
        d = W / self.t[r] - 1.0 if self.t[r] > 0 else 0.0
        ex = abs(d) - self.band
        c = d * d + (PENALTY * ex * ex if ex > 0 else 0.0)
        if self.gamma and P > 0:
            c += self.gamma * (1.0 - 4.0 * math.pi * A / (P * P))
        return c

    def deviations(self) -> np.ndarray:
        return np.array([w / t - 1.0 if t > 0 else 0.0 for w, t in zip(self.W, self.t)])

    def score(self) -> tuple[float, float]:
        dev = np.abs(self.deviations())
        return (round(max(0.0, float(dev.max(initial=0.0)) - self.band), 6), float(sum(self.C)))

    # --- moves -----------------------------------------------------------------------------------
    def _shared_by_region(self, i: int) -> dict[int, float]:
        s: dict[int, float] = {}
        for j, L in self.g.shared[i].items():
            r = self.lab[j]
            s[r] = s.get(r, 0.0) + L
        return s

    def move_delta(self, i: int, b: int, s: dict[int, float] | None = None) -> float:
        a, g = self.lab[i], self.g
        s = s if s is not None else self._shared_by_region(i)
        w, ar, pe = g.weight[i], g.area[i], g.perimeter[i]
        ca = self.cost(self.W[a] - w, self.A[a] - ar, self.P[a] - pe + 2 * s.get(a, 0.0), a)
        cb = self.cost(self.W[b] + w, self.A[b] + ar, self.P[b] + pe - 2 * s.get(b, 0.0), b)
        return ca + cb - self.C[a] - self.C[b]

    def apply(self, i: int, b: int) -> None:
        a, g = self.lab[i], self.g
        s = self._shared_by_region(i)
        w, ar, pe = g.weight[i], g.area[i], g.perimeter[i]
        self.W[a] -= w; self.A[a] -= ar; self.P[a] += -pe + 2 * s.get(a, 0.0)
        self.W[b] += w; self.A[b] += ar; self.P[b] += pe - 2 * s.get(b, 0.0)
        self.mem[a].discard(i); self.mem[b].add(i); self.lab[i] = b
        if self.dirty is not None:
            self.dirty.add(a); self.dirty.add(b)
        if self.journal is not None:
            self.journal.append((i, a))
        self.C[a] = self.cost(self.W[a], self.A[a], self.P[a], a)
        self.C[b] = self.cost(self.W[b], self.A[b], self.P[b], b)

    def can_leave(self, i: int) -> bool:
        """True when region ``lab[i]`` stays connected (and non-empty) without ``i``."""
        a = self.lab[i]
        if len(self.mem[a]) < 2:
            return False
        inside = [j for j in self.g.nbrs[i] if self.lab[j] == a]
        if len(inside) <= 1:
            return True
        return self._connected_without(a, i, inside)

    def _connected_without(self, a: int, skip: int, must: list[int]) -> bool:
        want, seen, stack = set(must), {must[0], skip}, [must[0]]
        want.discard(must[0])
        while stack and want:
            u = stack.pop()
            for v in self.g.nbrs[u]:
                if v not in seen and self.lab[v] == a:
                    seen.add(v); want.discard(v); stack.append(v)
        return not want

    def region_connected(self, r: int) -> bool:
        m = self.mem[r]
        if not m:
            return False
        start = next(iter(m))
        seen, stack = {start}, [start]
        while stack:
            u = stack.pop()
            for v in self.g.nbrs[u]:
                if v not in seen and self.lab[v] == r:
                    seen.add(v); stack.append(v)
        return len(seen) == len(m)

    def _nodes(self, rng: np.random.Generator) -> list[int]:
        if self.active is None:
            return rng.permutation(self.g.n).tolist()
        nodes = [i for r in self.active for i in self.mem[r]]
        rng.shuffle(nodes)
        return nodes

    def _move_nodes(self, rng: np.random.Generator) -> list[int]:
        if self.dirty is None:
            nodes = self._nodes(rng)
        else:
            near = set(self.dirty)
            for r in self.dirty:
                near |= {self.lab[v] for u in self.mem[r] for v in self.g.nbrs[u]}
            if self.active is not None:
                near &= self.active
            nodes = [i for r in near for i in self.mem[r]]
            rng.shuffle(nodes)
        self.dirty = set()
        return nodes

    def move_pass(self, rng: np.random.Generator, deadline: float) -> int:
        moved = 0
        for i in self._move_nodes(rng):
            a = self.lab[i]
            if a in self.fixed:
                continue
            s = self._shared_by_region(i)
            best, best_b = -EPS, -1
            for b in s:
                if b == a or b in self.fixed:
                    continue
                d = self.move_delta(i, b, s)
                if d < best:
                    best, best_b = d, b
            if best_b >= 0 and self.can_leave(i):
                self.apply(i, best_b)
                moved += 1
            if moved % 64 == 0 and time.perf_counter() > deadline:
                break
        return moved

    def swap_pass(self, rng: np.random.Generator, deadline: float) -> int:
        swapped = 0
        for i in self._nodes(rng):
            if time.perf_counter() > deadline:
                break
            a = self.lab[i]
            if a in self.fixed:
                continue
            for b in {self.lab[j] for j in self.g.nbrs[i]} - {a} - self.fixed:
                if self._try_swap(i, a, b):
                    swapped += 1
                    break
        return swapped

    def _try_swap(self, i: int, a: int, b: int) -> bool:
        d1 = self.move_delta(i, b)
        self.apply(i, b)
        best, best_j = -EPS, -1
        for j in list(self.mem[b]):
            if j != i and any(self.lab[v] == a for v in self.g.nbrs[j]):
                d = d1 + self.move_delta(j, a)
                if d < best:
                    best, best_j = d, j
        if best_j >= 0:
            self.apply(best_j, a)
            if self.region_connected(a) and self.region_connected(b):
                return True
            self.apply(best_j, b)
        self.apply(i, a)
        return False

    def chain_pass(self, deadline: float, max_len: int = 6) -> int:
        """Shift workload from the most loaded regions to under-loaded ones along a path of regions,
        one boundary grid per step, when no single move or swap helps (granular beats need this)."""
        dev = self.deviations()
        done = 0
        for a in np.argsort(-np.abs(dev)).tolist()[:20]:
            if time.perf_counter() > deadline or abs(dev[a]) <= EPS:
                break
            if a in self.fixed or (self.active is not None and a not in self.active):
                continue
            sign = 1.0 if dev[a] > 0 else -1.0
            for path in self._paths_to_opposite(a, sign, max_len):
                if self._try_chain(path if sign > 0 else path[::-1]):
                    done += 1
                    dev = self.deviations()
                    break
        return done

    def _region_neighbours(self, r: int) -> set[int]:
        return {self.lab[v] for u in self.mem[r] for v in self.g.nbrs[u]} - {r} - self.fixed

    def _paths_to_opposite(self, a: int, sign: float, max_len: int) -> list[list[int]]:
        dev = self.deviations()
        prev, frontier, found = {a: -1}, [a], []
        for _ in range(max_len):
            nxt = []
            for r in frontier:
                for b in self._region_neighbours(r):
                    if b not in prev:
                        prev[b] = r
                        nxt.append(b)
                        if sign * dev[b] < 0:
                            path, x = [], b
                            while x >= 0:
                                path.append(x); x = prev[x]
                            found.append(path[::-1])
            if len(found) >= 3 or not nxt:
                break
            frontier = nxt
        return found[:3]

    def _try_chain(self, path: list[int]) -> bool:
        """Move one grid from path[s] to path[s+1] at every step; keep it if the total cost falls."""
        before = sum(self.C[r] for r in path)
        done: list[tuple[int, int]] = []
        for src, dst in zip(path[:-1], path[1:]):
            best, best_i = math.inf, -1
            for i in self.mem[src]:
                if any(self.lab[v] == dst for v in self.g.nbrs[i]):
                    d = self.move_delta(i, dst)
                    if d < best and self.can_leave(i):
                        best, best_i = d, i
            if best_i < 0:
                break
            self.apply(best_i, dst)
            done.append((best_i, src))
        if len(done) == len(path) - 1 and sum(self.C[r] for r in path) < before - EPS:
            return True
        for i, src in reversed(done):
            self.apply(i, src)
        return False

    def merge(self, a: int, b: int) -> None:
        """Join region ``b`` into ``a``: their targets add up (a team beat); ``b`` is left empty."""
        for i in list(self.mem[b]):
            self.apply(i, a)
        self.t[a] += self.t[b]
        self.t[b] = 0.0
        self.C[a] = self.cost(self.W[a], self.A[a], self.P[a], a)
        self.C[b] = 0.0

    def improve(self, rng: np.random.Generator, deadline: float) -> None:
        self.dirty = None  # the first pass looks at every node
        while time.perf_counter() < deadline:
            if self.move_pass(rng, deadline):
                continue
            if self.swap_pass(rng, deadline):
                continue
            if not self.chain_pass(deadline):
                break


# --- construction ----------------------------------------------------------------------------------
def spread_seeds(g: Graph, k: int, forced: list[int], rng: np.random.Generator) -> list[int]:
    """``k`` seed nodes: ``forced`` first, the rest drawn with probability ∝ (hops to nearest seed)²."""
    n = g.n
    dist = np.full(n, np.inf)
    seeds: list[int] = []

    def add(s: int) -> None:
        seeds.append(s)
        dist[s] = 0
        frontier = [s]
        while frontier:
            nxt = []
            for u in frontier:
                for v in g.nbrs[u]:
                    if dist[v] > dist[u] + 1:
                        dist[v] = dist[u] + 1
                        nxt.append(v)
            frontier = nxt

    for s in forced:
        add(s)
    if not seeds:
        add(int(rng.integers(n)))
    while len(seeds) < k:
        p = np.where(np.isfinite(dist), dist, 0.0) ** 2
        p[seeds] = 0.0
        if p.sum() <= 0:  # every node is a seed already or unreachable; take any free node
            free = np.setdiff1d(np.arange(n), seeds)
            add(int(rng.choice(free)))
            continue
        add(int(rng.choice(n, p=p / p.sum())))
    return seeds


def grow(g: Graph, seeds: list[int], targets: list[float]) -> list[int]:
    """Grow regions from ``seeds``: the least-filled region takes its best-attached frontier node."""
    n, k = g.n, len(seeds)
    lab = [-1] * n
    fill = [0.0] * k
    front: list[dict[int, float]] = [dict() for _ in range(k)]

    def take(r: int, i: int) -> None:
        lab[i] = r
        fill[r] += g.weight[i] / targets[r] if targets[r] > 0 else 1.0
        for j, L in g.shared[i].items():
            if lab[j] < 0:
                front[r][j] = front[r].get(j, 0.0) + L

    for r, s in enumerate(seeds):
        take(r, s)
    heap = [(fill[r], r) for r in range(k)]
    heapq.heapify(heap)
    while heap:
        f, r = heapq.heappop(heap)
        if f != fill[r]:
            continue
        fr = front[r]
        for j in [j for j in fr if lab[j] >= 0]:
            del fr[j]
        if not fr or fill[r] >= 1.0:
            continue
        i = max(fr, key=fr.__getitem__)
        del fr[i]
        take(r, i)
        heapq.heappush(heap, (fill[r], r))
    # leftovers (regions full or walled in): each goes to its least-filled labelled neighbour
    pending = [i for i in range(n) if lab[i] < 0]
    while pending:
        rest = []
        for i in pending:
            cand = [lab[j] for j in g.nbrs[i] if lab[j] >= 0]
            if cand:
                take(min(cand, key=lambda r: fill[r]), i)
            else:
                rest.append(i)
        if len(rest) == len(pending):
            raise ValueError("graph is not connected: a unit must be one connected component")
        pending = rest
    return lab


def solve(g: Graph, targets: list[float], forced: list[int], band: float, gamma: float,
          seed: int, deadline: float, n_starts: int, officers: list[int] | None = None,
          max_team: int = 1, patience: int | None = None) -> Partition:
    """Best partition of ``g`` into ``len(targets)`` connected regions over ``n_starts`` seeded starts.

    ``forced[r]`` (for the first ``len(forced)`` regions) is a node that seeds region ``r``. With
    ``max_team > 1`` regions still outside the band after the starts are merged into teams
    (:func:`team_up`; ``officers``, one entry per region, is updated in place) before the final kicks.
    """
    rng = np.random.default_rng(seed)
    best: Partition | None = None
    for s in range(max(1, n_starts)):
        now = time.perf_counter()
        if best is not None and now > deadline:
            break
        seeds = spread_seeds(g, len(targets), forced, rng)
        part = Partition(g, grow(g, seeds, targets), targets, band, gamma)
        # starts share half the budget (a third when teams may form); the best start gets the rest for
        # team merges and iterated local search
        share = 0.5 if max_team == 1 else 0.33
        stop = now + share * (deadline - now) / (n_starts - s) if deadline > now else now
        part.improve(rng, stop)
        if best is None or part.score() < best.score():
            best = part
    if max_team > 1 and officers is not None and best.score()[0] > 0:
        now = time.perf_counter()
        team_up(best, officers, max_team, rng, now + 0.5 * max(0.0, deadline - now))
    return kick(best, rng, deadline, officers, max_team, patience)


def team_up(part: Partition, officers: list[int], max_team: int, rng: np.random.Generator,
            deadline: float) -> int:
    """Merge regions outside the band with a neighbour into a team region of up to ``max_team`` officers
    when the team's workload per officer is closer to the mean; returns the number of merges.

    Two beats of 2–3 grids each rarely both fit a ±15 % band (subset sums of a few grids are coarse); their
    union, shared by two officers, has twice the room. Only regions outside the band are merged, the
    worst first, and the partition is re-improved after each round; ``officers`` is updated in place.
    """
    merges = 0
    while time.perf_counter() < deadline:
        dev = part.deviations()
        done = False
        for a in np.argsort(-np.abs(dev)).tolist():
            if abs(dev[a]) <= part.band or part.t[a] <= 0:
                break
            if _merge_region(part, a, officers, max_team, dev):
                merges += 1
                done = True
        if not done:
            break
        part.improve(rng, deadline)
    return merges


def _merge_region(part: Partition, a: int, officers: list[int], max_team: int, dev: np.ndarray) -> bool:
    """Merge region ``a`` with the neighbour that brings the pair closest to the mean, when that helps."""
    if a in part.fixed or part.t[a] <= 0:
        return False
    best, best_b = abs(dev[a]), -1
    for b in part._region_neighbours(a):
        if officers[a] + officers[b] > max_team or part.t[b] <= 0:
            continue
        d = abs((part.W[a] + part.W[b]) / (part.t[a] + part.t[b]) - 1.0)
        if d < best - 1e-9 and d < max(abs(dev[b]), part.band):  # never spoil a good neighbour
            best, best_b = d, b
    if best_b < 0:
        return False
    part.merge(a, best_b)
    officers[a] += officers[best_b]
    officers[best_b] = 0
    return True


def kick(part: Partition, rng: np.random.Generator, deadline: float, officers: list[int] | None = None,
         max_team: int = 1, patience: int | None = None) -> Partition:
    """Iterated local search while some region is outside the band: push random boundary grids
    around the worst region, re-improve near it, undo unless the score got better. With teams allowed,
    a worst region that a merge brings closer to the mean is merged instead. With ``patience``, stop
    after that many kicks in a row without a real gain (float noise in the compactness sum is none)."""
    stall, best = 0, part.score()
    while part.score()[0] > 0 and time.perf_counter() < deadline:
        if patience is not None:
            now = part.score()
            gained = now[0] < best[0] - 1e-9 or now[1] < best[1] - 1e-9 * max(1.0, abs(best[1]))
            stall, best = (0, now) if gained else (stall + 1, min(best, now))
            if stall > patience:
                break
        before = part.score()
        dev = part.deviations()
        a = int(np.argmax(np.abs(dev)))
        near = {a} | part._region_neighbours(a)
        part.active = near | {c for b in near for c in part._region_neighbours(b)}
        if max_team > 1 and officers is not None and _merge_region(part, a, officers, max_team, dev):
            part.improve(rng, deadline)
            part.active = None
            continue
        part.journal = []
        region = a
        for _ in range(int(rng.integers(1, 4))):
            nbrs = sorted(part._region_neighbours(region))
            if not nbrs:
                break
            b = int(rng.choice(nbrs))
            src, dst = (a, b) if part.deviations()[a] > 0 else (b, a)
            cand = [i for i in part.mem[src] if any(part.lab[v] == dst for v in part.g.nbrs[i])]
            rng.shuffle(cand)
            for i in cand:
                if part.can_leave(i):
                    part.apply(i, dst)
                    break
            region = b
        part.improve(rng, deadline)
        journal, part.journal, part.active = part.journal, None, None
        if not part.score() < before:
            for i, r in reversed(journal):
                part.apply(i, r)
    return part
