"""Preview of a plan: tiers, staffing, beats and coverage of its grids next to the active plan's.

The draft's figures come from :func:`geogrid.planning_runs.plan_analysis` (in memory, nothing
written). The active plan's come from its stored planning runs when they were made with the same
headcount and default policy over all incidents, else from the same analysis. Analyses are cached
in this process by a fingerprint of the plan's grids (code and version of each) and of the data
under them (layer versions of incidents, staff, posts and analysis runs), so asking again after no
edit costs nothing and after an edit costs one analysis of the draft.

Beats: the active plan's beats are carried onto the draft (a grid keeps its beat; a new or redrawn
grid takes the beat of the active grid it overlaps most) and checked. A beat touched by the edit
that is no longer contiguous, or whose workload per officer now misses the goal band and is worse
than before, is *broken*; the suggested **repair** re-solves only the broken beats and their
neighbouring beats with :class:`geogrid.beats.BalancedBeats` (same officers, post areas kept) and
leaves every other beat as it is. ``BalancedBeats.rebalance`` needs the very grids it was fitted on,
which an edit changes; its docstring sends redrawn grids to a refit, done here on the small region.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geogrid.errors import Conflict, InputError

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 12
_LOCK = threading.Lock()
_COMPUTE = threading.Lock()
KINDS = ("tiers", "staffing", "beats", "coverage")


def preview_plan(conn: Connection, plan_id: int, officers: int | None = None, auxiliaries: int | None = None,
                 beats_seconds: float = 2.0, repair_seconds: float = 3.0) -> dict:
    """Figures of plan ``plan_id`` compared with the active plan, and a beat repair when an edit broke one.

    Returns a JSON-ready dict: ``grids`` (codes added, removed, changed), ``tiers`` (grids per tier),
    ``staffing`` (required vs available), ``beats`` (the draft's own beat plan: max deviation,
    contiguity), ``coverage`` (shares reached within each standard), ``beat_check`` and ``repair``.
    Every figure is ``{"draft": x, "active": y, "change": x - y}``.
    """
    from geogrid.editing import get_plan
    from geogrid.planning_runs import staff_headcount

    t0 = time.perf_counter()
    plan = get_plan(conn, plan_id)
    active = conn.execute(text("SELECT id, name FROM plans WHERE status = 'active'")).mappings().first()
    staff = staff_headcount(conn)
    head = {"officers": staff["officers"] if officers is None else officers,
            "auxiliaries": staff["auxiliaries"] if auxiliaries is None else auxiliaries}
    bad = conn.execute(text("SELECT code FROM grids WHERE plan_id = :p AND NOT ST_IsValid(geom) ORDER BY code"),
                       {"p": plan_id}).scalars().all()
    if bad:
        raise Conflict(f"plan {plan['name']!r} has invalid grid geometries ({', '.join(bad[:10])}); "
                       "fix them (see validate) before a preview")
    key = ("preview", plan_id, _fingerprint(conn, plan_id), None if active is None else active["id"],
           None if active is None else _fingerprint(conn, active["id"]), officers, auxiliaries, beats_seconds,
           repair_seconds)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return dict(_CACHE[key], seconds=round(time.perf_counter() - t0, 3), cached=True)
    base = None
    if active is not None:
        base = _baseline(conn, active["id"], head, officers, auxiliaries, beats_seconds)
    if active is not None and active["id"] == plan_id:
        draft = base  # the active plan next to itself: its stored runs when they are comparable
    else:
        draft = _analysis(conn, plan_id, officers, auxiliaries, beats_seconds)
    d_sum, a_sum = draft["summary"], (base["summary"] if base else {})
    out = {
        "plan": {"id": plan["id"], "name": plan["name"], "status": plan["status"]},
        "compared_with": None if active is None else {"id": active["id"], "name": active["name"],
                                                       "source": base["source"]},
        "headcount": head,
        "grids": _grid_changes(conn, active["id"], plan_id) if active is not None else None,
        "tiers": _tiers(d_sum.get("tiers", {}), a_sum.get("tiers", {})),
        "staffing": _staffing(d_sum.get("staffing", {}), a_sum.get("staffing", {})),
        "beats": _compare(d_sum.get("beats", {}), a_sum.get("beats", {}),
                          ("n_beats", "max_abs_dev", "workload_cv", "contiguous_share", "mean_polsby_popper",
                           "within_goal", "goal", "lower_bound_dev")),
        "coverage": _coverage(d_sum.get("coverage", {}), a_sum.get("coverage", {})),
        "beat_check": None,
        "repair": None,
    }
    if base is not None and base["beat_of_grid"] is not None and draft["workload"] is not None \
            and active["id"] != plan_id:
        check, repair = _beat_check(draft, base, out["grids"], repair_seconds)
        out["beat_check"], out["repair"] = check, repair
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["cached"] = False
    with _LOCK:
        _CACHE[key] = out
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


# --- analyses, cached --------------------------------------------------------------------------------

def _fingerprint(conn: Connection, plan_id: int) -> str:
    grids = conn.execute(text("SELECT string_agg(code || ':' || version, ',' ORDER BY code) FROM grids "
                              "WHERE plan_id = :p"), {"p": plan_id}).scalar() or ""
    data = conn.execute(text("SELECT string_agg(layer || ':' || version, ',' ORDER BY layer) FROM layer_versions "
                             "WHERE layer IN ('incidents', 'staff', 'posts', 'runs')")).scalar() or ""
    return hashlib.sha1(f"{grids}|{data}".encode()).hexdigest()


def _analysis(conn: Connection, plan_id: int, officers, auxiliaries, beats_seconds) -> dict:
    """The plan's analysis reduced to what a preview needs, cached by the fingerprint of grids and data."""
    key = (plan_id, _fingerprint(conn, plan_id), officers, auxiliaries, beats_seconds)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    # one analysis at a time per process: on a small server parallel analyses only slow each other, and a
    # second request for the same plan then finds the first one's result in the cache
    with _COMPUTE:
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
        return _compute(conn, plan_id, officers, auxiliaries, beats_seconds, key)


def _compute(conn, plan_id, officers, auxiliaries, beats_seconds, key) -> dict:
    from geogrid.planning_runs import plan_analysis
    from geogrid.policy import StaffingPolicy
    from geogrid.staffing import staffing_requirement

    a = plan_analysis(conn, plan_id, officers, auxiliaries, KINDS, beats_seconds=beats_seconds)
    workload = None
    if a.beat_workload is not None:
        # the officer hours plan_analysis balanced its beats on (default policy): no second requirement
        workload = a.beat_workload.reindex(a.grids["code"])
    elif a.features is not None and a.tiers is not None:
        pol = StaffingPolicy.default()
        req = staffing_requirement(a.features, a.tiers.set_index("code")["tier"], pol)
        # officer hours a year per grid: the workload plan_analysis balances beats on
        workload = (req["officer_fte"] * pol.workload.officer_hours_per_year).reindex(a.grids["code"])
    beats = a.beats
    result = {"summary": a.summary, "grids": a.grids, "workload": workload, "source": "computed",
              "beat_of_grid": a.beat_of_grid,
              "beat_officers": None if beats is None else beats.set_index("beat")["officers"],
              "beat_deviation": None if beats is None else beats.set_index("beat")["deviation"]}
    with _LOCK:
        _CACHE[key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def _baseline(conn: Connection, plan_id: int, head: dict, officers, auxiliaries, beats_seconds) -> dict:
    """The active plan's figures: its stored planning runs when comparable, else computed (and cached)."""
    from geogrid.store.grids import read_grids

    rows = conn.execute(text(
        "SELECT DISTINCT ON (kind) id, kind, params, summary FROM analysis_runs WHERE plan_id = :p "
        "AND kind = ANY(:k) AND finished_at IS NOT NULL ORDER BY kind, id DESC"),
        {"p": plan_id, "k": list(KINDS)}).mappings().all()
    runs = {r["kind"]: r for r in rows}

    def comparable(r) -> bool:
        p = r["params"] or {}
        return (p.get("officers") == head["officers"] and p.get("auxiliaries") == head["auxiliaries"]
                and p.get("policy") == "default"
                and all(p.get(k) is None for k in ("start", "end", "categories", "origin")))

    if set(runs) == set(KINDS) and all(comparable(r) for r in runs.values()):
        beats = conn.execute(text("SELECT beat, officers, deviation, grid_codes FROM beats WHERE run_id = :r"),
                             {"r": runs["beats"]["id"]}).mappings().all()
        if beats:
            of = pd.Series({c: b["beat"] for b in beats for c in b["grid_codes"]}, name="beat")
            return {"summary": {k: r["summary"] for k, r in runs.items()}, "grids": read_grids(conn, plan_id),
                    "workload": None, "source": f"stored runs {sorted(r['id'] for r in runs.values())}",
                    "beat_of_grid": of,
                    "beat_officers": pd.Series({b["beat"]: b["officers"] for b in beats}),
                    "beat_deviation": pd.Series({b["beat"]: b["deviation"] for b in beats})}
    return _analysis(conn, plan_id, officers, auxiliaries, beats_seconds)


# --- comparisons -------------------------------------------------------------------------------------

def _pair(d, a) -> dict:
    out = {"draft": d, "active": a}
    if isinstance(d, (int, float)) and isinstance(a, (int, float)) and not isinstance(d, bool) \
            and not isinstance(a, bool):
        out["change"] = round(d - a, 4)
    return out


def _compare(d: dict, a: dict, keys) -> dict:
    return {k: _pair(d.get(k), a.get(k)) for k in keys if k in d or k in a}


def _tiers(d: dict, a: dict) -> dict:
    tiers = sorted(set(d.get("tiers", {})) | set(a.get("tiers", {})), key=int)
    return {"grids": _pair(d.get("grids"), a.get("grids")),
            "per_tier": {t: _pair(d.get("tiers", {}).get(t, 0), a.get("tiers", {}).get(t, 0)) for t in tiers}}


def _staffing(d: dict, a: dict) -> dict:
    out = {}
    for staff in ("officers", "auxiliaries"):
        dc, ac = d.get("citywide", {}).get(staff, {}), a.get("citywide", {}).get(staff, {})
        out[staff] = _compare(dc, ac, ("hard_minimum", "required", "available", "shortfall", "minimum_shortfall"))
    out.update(_compare(d, a, ("urban_grids_without_own_officer", "grids_short_of_requirement", "workload_hours")))
    return out


def _coverage(d: dict, a: dict) -> dict:
    out = {"mean_minutes": _pair(d.get("mean_minutes"), a.get("mean_minutes")), "shares": {}}
    for t in sorted(set(d.get("shares", {})) | set(a.get("shares", {})), key=float):
        ds, as_ = d.get("shares", {}).get(t, {}), a.get("shares", {}).get(t, {})
        out["shares"][t] = _compare(ds, as_, sorted(set(ds) | set(as_)))
    return out


def _grid_changes(conn: Connection, active_id: int, plan_id: int) -> dict:
    rows = conn.execute(text(
        "SELECT code, d.id IS NULL AS removed, a.id IS NULL AS added, "
        "(d.id IS NOT NULL AND a.id IS NOT NULL AND NOT ST_Equals(d.geom, a.geom)) AS redrawn, "
        "(d.id IS NOT NULL AND a.id IS NOT NULL AND (d.name, d.kind, d.population, d.key_areas, d.post_code) "
        " IS DISTINCT FROM (a.name, a.kind, a.population, a.key_areas, a.post_code)) AS attrs "
        "FROM (SELECT * FROM grids WHERE plan_id = :d) d FULL JOIN (SELECT * FROM grids WHERE plan_id = :a) a "
        "USING (code) ORDER BY code"), {"d": plan_id, "a": active_id}).mappings().all()
    return {"added": [r["code"] for r in rows if r["added"]],
            "removed": [r["code"] for r in rows if r["removed"]],
            "redrawn": [r["code"] for r in rows if r["redrawn"]],
            "attributes_changed": [r["code"] for r in rows if r["attrs"]]}


# --- beats carried over, checked, repaired -----------------------------------------------------------

def _carried_labels(grids: gpd.GeoDataFrame, base: dict, keep: set[str]) -> np.ndarray:
    """Beat of each draft grid: its own for grids kept as they were, else the most-overlapped active grid's."""
    of = base["beat_of_grid"]
    bg = base["grids"].set_index("code")
    bg = bg[bg.index.isin(of.index)]
    bgeoms = np.asarray(bg.geometry.values, dtype=object)
    tree = shapely.STRtree(bgeoms)
    labels = []
    for code, geom in zip(grids["code"], grids.geometry):
        if code in keep and code in of.index:
            labels.append(int(of[code]))
            continue
        idx = tree.query(geom, predicate="intersects")
        if len(idx):
            areas = shapely.area(shapely.intersection(bgeoms[idx], geom))
            labels.append(int(of[bg.index[idx[int(np.argmax(areas))]]]))
        else:
            labels.append(int(of[bg.index[tree.nearest(geom)]]))
    return np.asarray(labels)


def _beat_check(draft: dict, base: dict, changes: dict, seconds: float) -> tuple[dict, dict | None]:
    from geogrid.adjacency import rook_adjacency
    from geogrid.beats_report import evaluate_beats

    grids = draft["grids"].reset_index(drop=True)
    touched_codes = set(changes["added"]) | set(changes["redrawn"]) | set(changes["attributes_changed"])
    keep = set(grids["code"]) - set(changes["added"]) - set(changes["redrawn"])
    labels = _carried_labels(grids, base, keep)
    frame = grids.assign(workload=draft["workload"].to_numpy())
    officers = base["beat_officers"]
    beats, report = evaluate_beats(frame, labels, officers)
    goal = float(base["summary"].get("beats", {}).get("goal", 0.15))
    of = base["beat_of_grid"]
    touched = {int(b) for c, b in zip(grids["code"], labels) if c in touched_codes}
    touched |= {int(of[c]) for c in changes["removed"] if c in of.index}
    before = base["beat_deviation"]
    broken = []
    for b in sorted(touched):
        if b not in beats.index:
            continue
        dev = float(beats.loc[b, "deviation"])
        was = abs(float(before.get(b, 0.0)))
        why = []
        if not bool(beats.loc[b, "contiguous"]):
            why.append("not contiguous")
        if abs(dev) > goal + 1e-9 and abs(dev) > was + 0.005:
            why.append(f"workload per officer {dev:+.1%} of the mean (was {before.get(b, float('nan')):+.1%}; "
                       f"goal ±{goal:.0%})")
        if why:
            broken.append({"beat": b, "grid_codes": grids["code"][labels == b].tolist(),
                           "deviation": round(dev, 4), "problems": why})
    check = {"carried_from": "active plan's beats", "touched_beats": sorted(touched), "broken": broken,
             "max_abs_dev": report["max_abs_dev"], "contiguous_share": report["contiguous_share"], "goal": goal}
    if not broken:
        return check, None
    adj = rook_adjacency(frame)
    nb = {b: set() for b in np.unique(labels).tolist()}
    for i, j in adj.pairs.tolist():
        if labels[i] != labels[j]:
            nb[int(labels[i])].add(int(labels[j]))
            nb[int(labels[j])].add(int(labels[i]))
    region = {x["beat"] for x in broken}
    region |= {n for b in list(region) for n in nb.get(b, ())}
    return check, _repair(frame, labels, officers, region, beats, seconds)


def _repair(frame: gpd.GeoDataFrame, labels: np.ndarray, officers: pd.Series, region: set[int],
            beats_before: gpd.GeoDataFrame, seconds: float) -> dict:
    from geogrid.beats import BalancedBeats
    from geogrid.beats_report import evaluate_beats

    t0 = time.perf_counter()
    mask = np.isin(labels, sorted(region))
    sub = frame[mask].reset_index(drop=True)
    n_off = int(officers.reindex(sorted(region)).fillna(1).sum())
    station = "post_code" if sub["post_code"].notna().all() else None
    try:
        try:
            bb = BalancedBeats(n_off, station_col=station, seed=0, max_seconds=seconds).fit(sub)
        except InputError:
            if station is None:
                raise
            bb = BalancedBeats(n_off, seed=0, max_seconds=seconds).fit(sub)
    except InputError as e:
        return {"error": f"no repair found: {e}"}
    new_local = bb.labels_.to_numpy()
    # name the new beats after the old beat they share most grids with (each old id used once)
    old_local = labels[mask]
    free = sorted(region)
    spare = int(labels.max()) + 1
    names = {}
    for nb_ in sorted(np.unique(new_local).tolist(), key=lambda k: -int((new_local == k).sum())):
        shared = pd.Series(old_local[new_local == nb_]).value_counts()
        pick = next((int(o) for o in shared.index if int(o) in free), None)
        if pick is None:
            pick, spare = spare, spare + 1
        else:
            free.remove(pick)
        names[nb_] = pick
    repaired = labels.copy()
    repaired[mask] = [names[k] for k in new_local]
    offs = officers.copy()
    for k, o in bb.officers_.items():
        offs[names[int(k)]] = int(o)
    offs = offs[offs.index.isin(np.unique(repaired))]
    after, rep = evaluate_beats(frame, repaired, offs)
    codes = frame["code"].to_numpy()
    moves = [{"code": c, "from_beat": int(a), "to_beat": int(b)}
             for c, a, b in zip(codes, labels, repaired) if a != b]
    region_after = sorted(set(repaired[mask].tolist()))
    before_region = beats_before.loc[beats_before.index.isin(sorted(region))]
    return {
        "method": "BalancedBeats re-solve of the broken beats and their neighbours; other beats kept",
        "region_beats": sorted(region), "officers": n_off,
        "beats": [{"beat": b, "officers": int(after.loc[b, "officers"]), "grid_codes": codes[repaired == b].tolist(),
                   "deviation": round(float(after.loc[b, "deviation"]), 4),
                   "contiguous": bool(after.loc[b, "contiguous"])} for b in region_after],
        "moves": moves,
        "region_max_abs_dev": {"before": round(float(before_region["deviation"].abs().max()), 4),
                               "after": round(float(after.loc[region_after, "deviation"].abs().max()), 4)},
        "region_contiguous": {"before": bool(before_region["contiguous"].all()),
                              "after": bool(after.loc[region_after, "contiguous"].all())},
        "max_abs_dev_after": rep["max_abs_dev"],
        "seconds": round(time.perf_counter() - t0, 3),
    }


__all__ = ["preview_plan"]
