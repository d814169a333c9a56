"""Beats: contiguous groups of grids, one per officer (or n officers), with balanced workload.

When officers are fewer than grids (the source plan's capital: 860 grids, 320 officers) each officer
covers a *beat*. Beats are built from rook adjacency (shared edges, never corners), never cross station
areas when these are given, and balance workload per officer: the goal is every beat within ±15 % of
the mean (±5 % when beats hold ten or more grids). Where grid sizes make that impossible the plan
reports the least deviation any plan could reach (``report_["lower_bound_dev"]``, with
``lower_bound_reason``), from the proofs that officers are whole
(:func:`geogrid.apportion.minimax_apportion` over areas beats may not cross; small areas cut exactly,
:func:`geogrid.beat_bounds.small_area_bound`), that a grid cannot be split
(:func:`geogrid.apportion.heavy_grid_bound`), and that a grid, or two grids sharing their only light
neighbours, are trapped (:mod:`geogrid.beat_bounds`). A grid heavier than the band gets a multi-officer
beat. The search ends with exact re-cuts of a few beats at a time (:mod:`geogrid.resplit`).
"""
from __future__ import annotations

import math
import time

import geopandas as gpd
import numpy as np
import pandas as pd

from geogrid.adjacency import Adjacency, rook_adjacency
from geogrid.apportion import heavy_grid_bound, minimax_apportion
from geogrid.beat_bounds import small_area_bound, trapped_grid_bound, trapped_pair_bound
from geogrid.beats_report import evaluate_beats, summary_line
from geogrid.errors import InputError
from geogrid.regions import Graph, Partition, solve
from geogrid.resplit import repair

LARGE_AREA = 2000  # grids in one area beyond which a single seeded start is searched
SEARCH_SHARE = 0.4  # share of an area's budget for growing + local search; the rest for exact re-cuts
PATIENCE = 200  # perturbations without a real gain after which an area's search stops


class BalancedBeats:
    """Partition grids into contiguous, compact beats with balanced workload per officer.

    Parameters
    ----------
    n_officers
        Officers to deploy; every beat gets at least one.
    workload_col
        Column of ``grids`` with each grid's workload (incidents, hours; non-negative).
    station_col
        Optional column with each grid's station (post) area; beats never cross it.
    tolerance
        Goal band of deviation from the mean workload per officer; ``None`` picks 0.15, or 0.05 when
        beats hold ten or more grids on average.
    compactness_weight
        Weight of ``1 − Polsby–Popper`` in the objective; small, so it breaks ties within the band.
    seed, n_starts, max_seconds
        Random seed, seeded starts per area, and time budget of the whole fit.
    patience
        The search of an area stops after this many perturbations in a row that bring no real gain
        (``None``: only the goal or ``max_seconds`` stops it). Stopping there makes a fit that ends
        before ``max_seconds`` reproducible (the same beats on a busy or an idle machine) and spares
        the budget where the band is out of reach. Measured on 120-grid and 860-grid cities, real gains
        came within ~130 perturbations of the previous one; the default leaves room above that.
    max_team
        Most officers a beat of light grids may have. 1 (default): one officer per beat, except a grid
        heavier than the band. 2: beats still outside the band after the search are merged with a
        neighbour into a two-officer beat when that brings them closer to the mean
        (:func:`geogrid.regions.team_up`); granular plans (2–3 grids a beat) then meet the goal far
        more often, at the price of some shared beats (``report_["team_merges"]`` counts the merges).

    Attributes
    ----------
    labels_ : Series, beat id of each grid (index of ``grids``)
    officers_ : Series, officers of each beat
    beats_ : GeoDataFrame, one row per beat (see :func:`geogrid.beats_report.evaluate_beats`)
    report_ : dict, plan figures (workload_cv, max_abs_dev, lower_bound_dev, lower_bound_reason, goal,
        within_goal, recuts, summary — one line: "max deviation X %, lower bound Y % because …", …)
    adjacency_ : Adjacency used

    Examples
    --------
    >>> bb = BalancedBeats(n_officers=320, station_col="post_code").fit(grids)  # doctest: +SKIP
    >>> bb.report_["max_abs_dev"] <= max(bb.report_["goal"], bb.report_["lower_bound_dev"])  # doctest: +SKIP
    """

    def __init__(self, n_officers: int, workload_col: str = "workload", station_col: str | None = None,
                 tolerance: float | None = None, compactness_weight: float = 0.001, seed: int = 0,
                 n_starts: int = 4, max_seconds: float = 30.0, max_team: int = 1, patience: int | None = PATIENCE):
        self.n_officers = n_officers
        self.workload_col = workload_col
        self.station_col = station_col
        self.tolerance = tolerance
        self.compactness_weight = compactness_weight
        self.seed = seed
        self.n_starts = n_starts
        self.max_seconds = max_seconds
        self.max_team = max_team
        self.patience = patience

    # --- public ------------------------------------------------------------------------------------
    def fit(self, grids: gpd.GeoDataFrame, adjacency: Adjacency | None = None) -> BalancedBeats:
        """Build beats for ``grids`` (rook adjacency computed unless given for the same rows)."""
        t0 = time.perf_counter()
        w, stations = self._validate(grids)
        self.adjacency_ = adjacency if adjacency is not None else rook_adjacency(grids)
        if self.adjacency_.n != len(grids):
            raise InputError("adjacency was built for other grids; omit it to rebuild")
        m = int(self.n_officers)
        self.mu_ = w.sum() / m if w.sum() > 0 else 1.0
        self.goal_ = self._goal(len(grids), m)
        units = _units(self.adjacency_, stations)
        unit_w = np.array([w[u].sum() for u in units])
        unit_o, floor = minimax_apportion(unit_w, m)
        unit_of = np.empty(len(grids), dtype=np.int64)
        for k, u in enumerate(units):
            unit_of[u] = k
        heavy_b = heavy_grid_bound(w, unit_w[unit_of], self.mu_, m)
        self.lower_bound_ = max(floor, heavy_b)
        self.bound_reason_ = ("none" if self.lower_bound_ <= 0 else
                              "whole officers per station area" if floor >= heavy_b else "a grid heavier than its beat")
        self.unit_floor_ = np.abs(unit_w / (unit_o * self.mu_) - 1)
        self.unit_floor_ = np.array([max(f, heavy_grid_bound(w[u], np.full(len(u), unit_w[k]), self.mu_, int(o)))
                                     for k, (u, f, o) in enumerate(zip(units, self.unit_floor_, unit_o))])
        labels = np.empty(len(grids), dtype=np.int64)
        officers: list[int] = []
        self.team_merges_ = 0
        self.recuts_ = 0
        budget = self.max_seconds - (time.perf_counter() - t0)
        for k, (u, o) in enumerate(zip(units, unit_o)):
            deadline = time.perf_counter() + max(0.05, budget * len(u) / len(grids))
            lab, offs = self._solve_unit(u, w, int(o), k, deadline)
            labels[u] = np.asarray(lab) + len(officers)
            officers.extend(offs)
        if len(units) > 1 and self._misses_goal(labels, officers, w):
            self._area_bound(units, w, stations, unit_o, m)
        self._trapped_bound(w, stations, labels, officers, grids.index.tolist())
        self._finish(grids, labels, officers, units, t0)
        return self

    def rebalance(self, grids: gpd.GeoDataFrame, changed, rings: int = 2) -> BalancedBeats:
        """Re-balance after planners changed some grids' workload, keeping other beats as they are.

        Only beats holding a ``changed`` grid and their neighbouring beats (``rings`` steps out, widened
        one ring at a time while the goal is missed) are re-optimised; officers per beat are kept.
        Same rows and geometries as the fitted ``grids`` are expected; for new or redrawn grids, refit.
        """
        t0 = time.perf_counter()
        if not hasattr(self, "labels_"):
            raise InputError("call fit() before rebalance()")
        w, stations = self._validate(grids)
        if not grids.index.equals(self.labels_.index):
            raise InputError("rebalance needs the same grids (index) as fit; refit after adding or removing grids")
        changed = pd.Index(changed)
        if not changed.isin(grids.index).all():
            raise InputError("changed names grids that are not in grids.index")
        labels = self.labels_.to_numpy().copy()
        officers = self.officers_.tolist()
        self.mu_ = w.sum() / sum(officers) if w.sum() > 0 else 1.0
        beat_nb = _beat_neighbours(self.adjacency_, labels)
        free = set(labels[grids.index.get_indexer(changed)].tolist())
        targets = [o * self.mu_ for o in officers]
        for _ in range(max(1, rings)):
            free |= {b for a in list(free) for b in beat_nb[a]}
            labels = self._improve_free(labels, w, targets, free, t0)
            dev = np.array([w[labels == b].sum() / targets[b] - 1 for b in free])
            if np.abs(dev).max() <= self.goal_:
                break
        self._finish(grids, labels, officers, self.units_, t0)
        return self

    # --- steps -------------------------------------------------------------------------------------
    def _validate(self, grids) -> tuple[np.ndarray, np.ndarray | None]:
        if not isinstance(grids, gpd.GeoDataFrame):
            raise InputError("grids must be a GeoDataFrame of grid polygons")
        if len(grids) == 0:
            raise InputError("grids is empty")
        if self.workload_col not in grids.columns:
            raise InputError(f"grids has no column {self.workload_col!r}; pass workload_col=")
        w = pd.to_numeric(grids[self.workload_col], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputError(f"{self.workload_col!r} must be finite and non-negative in every grid")
        if self.patience is not None and (isinstance(self.patience, bool)
                                          or not isinstance(self.patience, (int, np.integer)) or self.patience < 0):
            raise InputError(f"patience must be a whole number >= 0 or None, got {self.patience!r}")
        if isinstance(self.max_team, bool) or not isinstance(self.max_team, (int, np.integer)) or self.max_team < 1:
            raise InputError(f"max_team must be a whole number >= 1, got {self.max_team!r}")
        if not isinstance(self.n_officers, (int, np.integer)) or self.n_officers < 1:
            raise InputError(f"n_officers must be a positive integer, got {self.n_officers!r}")
        stations = None
        if self.station_col is not None:
            if self.station_col not in grids.columns:
                raise InputError(f"grids has no column {self.station_col!r}; pass station_col= or None")
            if grids[self.station_col].isna().any():
                raise InputError(f"{self.station_col!r} is missing for some grids; fill it or drop station_col")
            stations = pd.factorize(grids[self.station_col])[0]
        return w, stations

    def _goal(self, n_grids: int, m: int) -> float:
        if self.tolerance is not None:
            if not 0 < self.tolerance < 1:
                raise InputError("tolerance must be between 0 and 1 (e.g. 0.15 for ±15 %)")
            return float(self.tolerance)
        return 0.05 if n_grids / m >= 10 else 0.15

    def _solve_unit(self, nodes: np.ndarray, w: np.ndarray, o_u: int, k: int, deadline: float):
        wu = w[nodes]
        if o_u >= len(nodes):  # as many officers as grids: each grid a beat, officers by workload
            offs, _ = minimax_apportion(wu if wu.sum() > 0 else np.ones_like(wu), o_u)
            return list(range(len(nodes))), offs.tolist()
        heavy, offs = _heavy_beats(wu, o_u, self.mu_, self.goal_)
        g = _local_graph(self.adjacency_, nodes, wu)
        # no beat plan of this unit gets all beats closer than the unit's own average deviation
        band = max(self.goal_, self.unit_floor_[k] + 1e-9)
        offs = list(offs)
        # a large area spends its budget better on one start searched longer (5,000 grids: 26 % max
        # deviation with one start against 29 % with four, same 60 s)
        starts = self.n_starts if len(nodes) <= LARGE_AREA else 1
        # the search proper gets most of the budget; the exact re-cuts of 2–3 beats around the beats
        # still outside the band finish the job (they only ever lower the worst deviation)
        now = time.perf_counter()
        part = solve(g, [o * self.mu_ for o in offs], heavy, band, self.compactness_weight,
                     self.seed + k, now + SEARCH_SHARE * max(0.0, deadline - now), starts, officers=offs,
                     max_team=self.max_team, patience=self.patience)
        self.recuts_ = getattr(self, "recuts_", 0) + repair(part, max(deadline, time.perf_counter() + 0.05))
        # merged (team) regions leave empty ones behind: renumber the regions that hold grids
        keep = [r for r in range(len(offs)) if part.mem[r]]
        self.team_merges_ = getattr(self, "team_merges_", 0) + len(offs) - len(keep)
        new = {r: i for i, r in enumerate(keep)}
        return [new[r] for r in part.lab], [offs[r] for r in keep]

    def _improve_free(self, labels, w, targets, free, t0) -> np.ndarray:
        labels = labels.copy()
        for u in self.units_:
            if not free & set(labels[u].tolist()):
                continue
            beats = sorted(set(labels[u].tolist()))
            local = {b: i for i, b in enumerate(beats)}
            g = _local_graph(self.adjacency_, u, w[u])
            part = Partition(g, [local[b] for b in labels[u]], [targets[b] for b in beats], self.goal_,
                             self.compactness_weight, fixed={local[b] for b in beats if b not in free})
            part.improve(np.random.default_rng(self.seed), t0 + self.max_seconds)
            # exact re-cuts only among the free beats (fixed ones are skipped), as after a fit
            self.recuts_ = getattr(self, "recuts_", 0) + repair(part, t0 + self.max_seconds, lns_radii=())
            labels[u] = np.asarray(beats)[part.lab]
        return labels

    def _misses_goal(self, labels, officers, w) -> bool:
        """True when some beat misses the goal: only then is a proof worth its enumeration."""
        wpo = np.bincount(labels, weights=w) / np.asarray(officers, dtype=float)
        return bool((np.abs(wpo / self.mu_ - 1) > self.goal_ + 1e-9).any())

    def _area_bound(self, units, w, stations, unit_o, m) -> None:
        """Small station areas cut exactly (:func:`geogrid.beat_bounds.small_area_bound`): raises the
        plan's bound and each area's own floor (``beats_["unit_floor"]``) to what its officers allow."""
        if self.max_team != 1:
            return  # exact cuts assume one officer a beat
        adj = self.adjacency_
        if stations is not None and len(adj.pairs):
            adj = adj.without(stations[adj.pairs[:, 0]] != stations[adj.pairs[:, 1]])
        bound, exact = small_area_bound(units, adj.neighbours(), w, self.mu_, m, self.goal_,
                                        hint=[int(o) for o in unit_o])
        for k, o in enumerate(unit_o):
            if int(o) in exact[k]:
                self.unit_floor_[k] = max(self.unit_floor_[k], exact[k][int(o)])
        if bound > self.lower_bound_ + 1e-12:
            self.lower_bound_ = bound
            self.bound_reason_ = ("whole officers per station area, each small area cut into beats in every "
                                  "possible way")

    def _trapped_bound(self, w, stations, labels, officers, grids_index) -> None:
        """Raise the bound by the trapped-grid and trapped-pair proofs (:mod:`geogrid.beat_bounds`),
        grids of the worst beats first: a proof is likeliest there, and a high bound found early lets
        the other grids stop after a few sets."""
        adj = self.adjacency_
        if stations is not None and len(adj.pairs):
            adj = adj.without(stations[adj.pairs[:, 0]] != stations[adj.pairs[:, 1]])
        wpo = np.bincount(labels, weights=w) / np.asarray(officers, dtype=float)
        plan_dev = np.abs(wpo[labels] / self.mu_ - 1)
        if self.max_team == 1 and any(o > 1 and not (w[labels == b] > (1 + self.goal_) * self.mu_).any()
                                      for b, o in enumerate(officers)):
            plan_dev = None  # a multi-officer beat without a heavy grid: the plan is not of the bound's kind
        order = np.argsort(-np.abs(wpo[labels] / self.mu_ - 1), kind="stable")
        tb = trapped_grid_bound(adj.neighbours(), w, self.mu_, self.goal_, self.max_team,
                                self.lower_bound_, order.tolist(), plan_dev=plan_dev)
        if tb.value > self.lower_bound_:
            self.lower_bound_ = tb.value
            self.bound_reason_ = (f"grid {grids_index[tb.grid]!r} is trapped: every connected set of grids "
                                  f"holding it deviates at least this much from the mean")
        tp = trapped_pair_bound(adj.neighbours(), w, self.mu_, self.goal_, self.max_team,
                                self.lower_bound_, order.tolist(), plan_dev=plan_dev)
        if tp.value > self.lower_bound_:
            self.lower_bound_ = tp.value
            a, b = (grids_index[x] for x in tp.best_set)
            self.bound_reason_ = (f"grids {a!r} and {b!r} compete for the same light neighbours: in one beat "
                                  f"or in two, some beat holding them deviates at least this much")

    def _finish(self, grids, labels, officers, units, t0) -> None:
        self.units_ = units
        self.labels_ = pd.Series(labels, index=grids.index, name="beat")
        self.officers_ = pd.Series(officers, name="officers").rename_axis("beat")
        self.beats_, self.report_ = evaluate_beats(grids, self.labels_, self.officers_, self.workload_col)
        unit_of_beat = pd.Series(
            {b: k for k, u in enumerate(units) for b in np.unique(labels[u]).tolist()}, name="unit")
        self.beats_["unit"] = unit_of_beat.reindex(self.beats_.index).to_numpy()
        self.beats_["unit_floor"] = self.unit_floor_[self.beats_["unit"].to_numpy()]
        self.report_.update(
            seconds=round(time.perf_counter() - t0, 3), goal=self.goal_,
            lower_bound_dev=round(self.lower_bound_, 4),
            lower_bound_reason=getattr(self, "bound_reason_", "none"),
            recuts=int(getattr(self, "recuts_", 0)),
            within_goal=bool(self.report_["max_abs_dev"] <= self.goal_ + 1e-9),
            team_merges=int(getattr(self, "team_merges_", 0)),
        )
        self.report_["summary"] = summary_line(self.report_)


def _units(adj: Adjacency, stations: np.ndarray | None) -> list[np.ndarray]:
    """Areas beats may not cross: connected pieces of each station area (of the city without stations)."""
    if stations is not None and len(adj.pairs):
        adj = adj.without(stations[adj.pairs[:, 0]] != stations[adj.pairs[:, 1]])
    comp = adj.components()
    return [np.flatnonzero(comp == c) for c in range(comp.max() + 1)]


def _local_graph(adj: Adjacency, nodes: np.ndarray, w: np.ndarray) -> Graph:
    pos = {int(v): i for i, v in enumerate(nodes)}
    shared: list[dict[int, float]] = [dict() for _ in nodes]
    for (a, b), L in zip(adj.pairs.tolist(), adj.shared_m.tolist()):
        if a in pos and b in pos:
            shared[pos[a]][pos[b]] = L
            shared[pos[b]][pos[a]] = L
    return Graph([list(s) for s in shared], shared, w.tolist(),
                 adj.area_m2[nodes].tolist(), adj.perimeter_m[nodes].tolist())


def _heavy_beats(w: np.ndarray, o_u: int, mu: float, band: float) -> tuple[list[int], list[int]]:
    """Grids too heavy for one officer seed multi-officer beats; the other beats get one officer each."""
    order = np.argsort(-w, kind="stable")
    heavy = [int(i) for i in order if w[i] > (1 + band) * mu]
    n_light = len(w) - len(heavy)
    heavy = heavy[: max(0, o_u - (1 if n_light else 0))]  # extreme case: fewer officers than heavy grids
    n_light = len(w) - len(heavy)
    offs = [math.ceil(w[i] / ((1 + band) * mu)) for i in heavy]
    while sum(offs) > o_u - (1 if n_light else 0):
        offs[int(np.argmax(offs))] -= 1
    rest = o_u - sum(offs)
    if rest > n_light:  # more officers than light grids: the surplus joins the busiest heavy beats
        for _ in range(rest - n_light):
            a = int(np.argmax([w[i] / o for i, o in zip(heavy, offs)]))
            offs[a] += 1
        rest = n_light
    return heavy, offs + [1] * rest


def _beat_neighbours(adj: Adjacency, labels: np.ndarray) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {int(b): set() for b in np.unique(labels)}
    for a, b in adj.pairs.tolist():
        la, lb = int(labels[a]), int(labels[b])
        if la != lb:
            out[la].add(lb)
            out[lb].add(la)
    return out
