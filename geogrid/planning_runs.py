"""Planning analyses of a plan against the store: tiers, staffing, beats, coverage and siting.

The DB edge for planning, as :mod:`geogrid.runs` is for hot spots. :func:`plan_analysis` reads a plan
(any plan: active, draft or retired) and computes everything in memory without writing, so it can
preview a draft against the active plan; :func:`run_planning` stores its results as analysis runs.
No HTTP, no printing.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geogrid.errors import InputError, NotFound
from geogrid.policy import StaffingPolicy

KINDS = ("tiers", "staffing", "beats", "coverage")  # what run_planning does by default
ALL_KINDS = (*KINDS, "siting")  # siting solves MIPs over every candidate: asked for explicitly
TRAVEL_MODES = ("auto", "straight", "network")
THRESHOLDS = (5.0, 15.0)  # minutes: Shenzhen's 5-minute unit, the 15-minute urgent deadline
COVERAGE_RES = 9
HOT_BIN = 1  # Gi_Bin ≥ 1: a hot spot at 90 % confidence or more (ArcGIS's classes)
TABLE_OF = {"tiers": ["grid_tiers"], "staffing": ["grid_staffing"], "beats": ["beats"],
            "coverage": ["coverage_grids", "coverage_cells"], "siting": ["siting_proposals"]}


@dataclass
class SitingOptions:
    """What :func:`plan_analysis` sites when ``siting`` is asked for.

    ``k`` new posts by MCLP within ``minutes``; LSCP (fewest new posts reaching every reachable incident)
    within ``lscp_minutes`` (None: skip); the capacitated MCLP when ``capacitated``. ``candidates``:
    None for the plan's grid centroids (representative points, labelled by grid code), or a
    GeoDataFrame of points with a ``code`` column (see :func:`read_candidates`). Existing posts are
    always open and not counted in ``k``.
    """

    k: int = 5
    minutes: float = 5.0
    lscp_minutes: float | None = 15.0
    candidates: gpd.GeoDataFrame | None = None
    capacitated: bool = False
    new_site_capacity: float | None = None  # staff hours a year of a new post (None: median of staffed posts)
    # HiGHS stops a model here and returns its best solution with the gap to its bound (in the summary):
    # on the 860-grid demo a straight-line 15-minute LSCP took 87 s and the capacitated MCLP 45-97 s
    time_limit: float | None = 60.0
    # the capacitated model has a variable per (place, site) pair in reach; it considers the candidates
    # reaching the most incidents only (None: max(20 k, 100)); see docs/coverage.md
    capacitated_pool: int | None = None

    def params(self) -> dict:
        return {"k": self.k, "minutes": self.minutes, "lscp_minutes": self.lscp_minutes,
                "candidates": "grid centroids" if self.candidates is None else f"{len(self.candidates)} given points",
                "capacitated": self.capacitated, "new_site_capacity": self.new_site_capacity,
                "time_limit": self.time_limit}


@dataclass
class PlanAnalysis:
    """Results of :func:`plan_analysis`: frames shaped like their result tables, plus summaries.

    ``tiers``, ``staffing``, ``coverage_grids`` carry ``grid_id``, ``code`` and grid geometry;
    ``beats`` one row per beat (dissolved geometry, ``grid_codes``); ``coverage_cells`` one row per H3
    cell; ``uncovered`` the dissolved cells beyond each threshold. A kind not asked for is ``None``.
    ``requirement`` is :func:`geogrid.staffing.staffing_requirement`'s frame and ``beat_workload`` the
    officer hours a year per grid code that beats balance (both set when staffing or beats are asked).
    ``summary`` maps each kind to a JSON-ready dict; ``params`` is what the runs record.
    """

    plan: dict
    grids: gpd.GeoDataFrame
    headcount: dict
    params: dict
    data_from: object = None
    data_to: object = None
    features: pd.DataFrame | None = None
    requirement: pd.DataFrame | None = None
    beat_workload: pd.Series | None = None
    tiers: gpd.GeoDataFrame | None = None
    staffing: gpd.GeoDataFrame | None = None
    beats: gpd.GeoDataFrame | None = None
    beat_of_grid: pd.Series | None = None
    coverage_grids: gpd.GeoDataFrame | None = None
    coverage_cells: gpd.GeoDataFrame | None = None
    uncovered: gpd.GeoDataFrame | None = None
    siting: gpd.GeoDataFrame | None = None
    summary: dict[str, dict] = field(default_factory=dict)
    travel: object = field(default=None, repr=False)  # the TravelModel coverage and siting used
    travel_info: dict | None = None


# --- reads -------------------------------------------------------------------------------------------
def _plan(conn: Connection, plan_id: int | None) -> dict:
    from geogrid.store.plans import active_plan, get_plan

    if plan_id is None:
        plan = active_plan(conn)
        if plan is None:
            raise NotFound("no active plan: load grids first (geogrid ingest grids …) or pass a plan id")
        return plan
    if isinstance(plan_id, bool) or not isinstance(plan_id, (int, np.integer)):
        raise InputError(f"plan_id must be an integer plan id, got {plan_id!r}")
    return get_plan(conn, int(plan_id))


def _incidents(conn: Connection, plan: dict, grids: gpd.GeoDataFrame, window) -> pd.DataFrame:
    """Incidents of the window with ``grid_code`` in this plan's grids (None outside every grid)."""
    from geogrid.assign import GridIndex
    from geogrid.store.read import read_incidents

    w = window
    inc = read_incidents(conn, w.start if w else None, w.end if w else None, w.categories if w else None,
                         w.origin if w else None)
    if plan["status"] == "active":  # incidents.grid_id is kept right for the active plan only
        code_of = dict(zip(grids["id"].tolist(), grids["code"].tolist()))
        inc["grid_code"] = inc["grid_id"].map(code_of).astype(object)
    else:
        idx = GridIndex(grids, key="code")
        inc["grid_code"] = idx.keys_of(inc["lon"].to_numpy(), inc["lat"].to_numpy())
    return inc


def _latest_run(conn: Connection, kind: str) -> dict | None:
    row = conn.execute(text("SELECT id, params FROM analysis_runs WHERE kind = :k AND finished_at IS NOT NULL "
                            "ORDER BY id DESC LIMIT 1"), {"k": kind}).mappings().first()
    return dict(row) if row else None


def _hotspot_share(conn: Connection, grids: gpd.GeoDataFrame) -> tuple[pd.Series | None, int | None]:
    """Share of each grid's H3 cells (centroid policy, the run's resolution) that are hot spots."""
    import h3

    from geogrid.cells import cell_to_str, grids_to_cells

    run = _latest_run(conn, "hotspots")
    if run is None:
        return None, None
    # plain tuples: pandas probes each SQLAlchemy Row's attributes (seconds at 100,000s of rows)
    rows = [tuple(r) for r in conn.execute(text("SELECT cell, gi_bin FROM hotspot_cells WHERE run_id = :r"),
                                          {"r": run["id"]})]
    if not rows:
        return None, run["id"]
    cells = pd.DataFrame(rows, columns=["cell", "gi_bin"])
    res = h3.get_resolution(cell_to_str(int(cells["cell"].iloc[0])))
    g2c = grids_to_cells(grids, res, by="code")
    hot = set(cells.loc[cells["gi_bin"] >= HOT_BIN, "cell"].tolist())
    share = g2c.assign(hot=g2c["cell"].isin(hot)).groupby("grid")["hot"].mean()
    return share.reindex(grids["code"]).fillna(0.0).rename("hotspot_share"), run["id"]


def _forecast_risk(conn: Connection, grids: gpd.GeoDataFrame) -> tuple[pd.Series | None, int | None]:
    """Each grid's summed cell risk of the latest forecast run (shortest horizon, first method)."""
    import h3

    from geogrid.cells import cell_to_str, grids_to_cells

    run = _latest_run(conn, "forecast")
    if run is None:
        return None, None
    pick = conn.execute(text("SELECT horizon_days, method FROM forecast_cells WHERE run_id = :r "
                             "ORDER BY horizon_days, method LIMIT 1"), {"r": run["id"]}).first()
    if pick is None:
        return None, run["id"]
    rows = [tuple(r) for r in conn.execute(text("SELECT cell, score FROM forecast_cells WHERE run_id = :r AND "
                                                "horizon_days = :h AND method = :m"),
                                           {"r": run["id"], "h": pick[0], "m": pick[1]})]
    cells = pd.DataFrame(rows, columns=["cell", "score"])
    res = h3.get_resolution(cell_to_str(int(cells["cell"].iloc[0])))
    g2c = grids_to_cells(grids, res, by="code").merge(cells, on="cell", how="left")
    risk = g2c.groupby("grid")["score"].sum().clip(lower=0)
    return risk.reindex(grids["code"]).fillna(0.0).rename("forecast_risk"), run["id"]


def read_posts(conn: Connection) -> gpd.GeoDataFrame:
    """Posts and stations as points (EPSG:4326): code, name, kind, station_code."""
    import shapely

    rows = conn.execute(text("SELECT code, name, kind, station_code, ST_AsBinary(geom) AS wkb FROM posts "
                             "ORDER BY code")).mappings().all()
    df = pd.DataFrame([dict(r) for r in rows], columns=["code", "name", "kind", "station_code", "wkb"])
    geom = shapely.from_wkb(df.pop("wkb").map(bytes).to_numpy()) if len(df) else []
    return gpd.GeoDataFrame(df, geometry=geom, crs=4326)


def staff_headcount(conn: Connection) -> dict[str, int]:
    """Officers and auxiliaries in the staff table (station duty included)."""
    rows = dict(conn.execute(text("SELECT role, count(*) FROM staff GROUP BY role")).all())
    return {"officers": int(rows.get("officer", 0)), "auxiliaries": int(rows.get("auxiliary", 0))}


def _staff_by_post(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(text("SELECT post_code, role, count(*) FROM staff WHERE post_code IS NOT NULL "
                             "GROUP BY post_code, role")).all()
    df = pd.DataFrame(rows, columns=["post_code", "role", "n"])
    return df.pivot_table(index="post_code", columns="role", values="n", fill_value=0, aggfunc="sum")


# --- the analysis ------------------------------------------------------------------------------------
def _kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = tuple(dict.fromkeys(kinds))
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds:
        raise InputError(f"kinds must be some of {list(ALL_KINDS)}, got {list(kinds)}")
    return kinds


def _policy(policy) -> tuple[StaffingPolicy, str]:
    if policy is None:
        return StaffingPolicy.default(), "default"
    if isinstance(policy, StaffingPolicy):
        return policy, "given"
    return StaffingPolicy.from_file(Path(policy)), str(policy)


def _count(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def plan_analysis(conn: Connection, plan_id: int | None = None, officers: int | None = None,
                  auxiliaries: int | None = None, kinds: Iterable[str] = KINDS, policy=None, *,
                  window=None, beats_seconds: float = 10.0, beats_team: int = 1, seed: int = 0,
                  travel: str = "auto", siting: SitingOptions | None = None) -> PlanAnalysis:
    """Tiers, staffing, beats, coverage and siting of a plan's grids, computed in memory (nothing is written).

    Parameters
    ----------
    conn : connection (read only here)
    plan_id : plan to analyse; the active plan when None. Drafts work: incidents are located in the
        plan's own grids (point in polygon), not by the stored ``incidents.grid_id`` of the active plan.
    officers, auxiliaries : headcount; each taken from the staff table when None.
    kinds : any of ``tiers``, ``staffing``, ``beats``, ``coverage``, ``siting`` (beats and staffing
        compute the tiers they need, without returning them unless asked).
    policy : :class:`~geogrid.policy.StaffingPolicy`, a TOML path, or None for the defaults.
    window : :class:`geogrid.runs.Window` of incidents (all incidents when None).
    beats_seconds : time budget of the beats search.
    beats_team : most officers a beat of light grids may share (1: one officer per beat; 2 lets beats
        that miss the balance goal pair up, see :class:`geogrid.beats.BalancedBeats`).
    seed : seed of the tiers bootstrap and the beats search.
    travel : travel model of coverage and siting: ``network`` (shortest driving time over the roads
        table), ``straight`` (straight line × circuity at urban/rural speeds) or ``auto`` (network when
        stored roads touch at least 90 % of the plan's grids, else straight line).
    siting : :class:`SitingOptions` (defaults when None).

    Returns
    -------
    PlanAnalysis
    """
    from geogrid.store.grids import read_grids

    kinds = _kinds(kinds)
    officers, auxiliaries = _count("officers", officers), _count("auxiliaries", auxiliaries)
    if travel not in TRAVEL_MODES:
        raise InputError(f"travel must be one of {list(TRAVEL_MODES)}, got {travel!r}")
    siting = siting if siting is not None else SitingOptions()
    pol, pol_name = _policy(policy)
    plan = _plan(conn, plan_id)
    grids = read_grids(conn, plan["id"])
    if len(grids) == 0:
        raise NotFound(f"plan {plan['name']!r} (id {plan['id']}) has no grids")
    staff = staff_headcount(conn)
    headcount = {"officers": staff["officers"] if officers is None else officers,
                 "auxiliaries": staff["auxiliaries"] if auxiliaries is None else auxiliaries,
                 "officers_source": "staff table" if officers is None else "given",
                 "auxiliaries_source": "staff table" if auxiliaries is None else "given"}
    inc = _incidents(conn, plan, grids, window)
    params = {"plan_id": int(plan["id"]), "plan": plan["name"], "plan_status": plan["status"],
              **{k: v for k, v in headcount.items()}, "policy": pol_name, "seed": seed,
              **({"beats_seconds": beats_seconds, "beats_team": beats_team} if "beats" in kinds else {}),
              **({"travel": travel} if {"coverage", "siting"} & set(kinds) else {}),
              **({"siting": siting.params()} if "siting" in kinds else {}),
              **(window.params() if window is not None else {})}
    out = PlanAnalysis(plan=plan, grids=grids, headcount=headcount, params=params)
    if len(inc):
        out.data_from = inc["occurred_at"].min().to_pydatetime()
        out.data_to = inc["occurred_at"].max().to_pydatetime()
    if {"tiers", "staffing", "beats"} & set(kinds):
        _tiers_and_staffing(conn, out, inc, pol, window, seed, kinds)
    if "beats" in kinds:
        _beats(out, beats_seconds, beats_team, seed)
    if {"coverage", "siting"} & set(kinds):
        out.travel, out.travel_info = _travel_model(conn, grids, travel)
    if "coverage" in kinds:
        _coverage(conn, out, inc, pol)
    if "siting" in kinds:
        _siting(conn, out, inc, pol, siting)
    for k in ("tiers", "staffing"):
        if k not in kinds:
            out.summary.pop(k, None)
            setattr(out, k, None)
    return out


def _period_days(window, inc: pd.DataFrame) -> float | None:
    if window is not None and window.start and window.end:
        return max((pd.Timestamp(window.end) - pd.Timestamp(window.start)).total_seconds() / 86400, 1.0)
    return None if len(inc) else 365.0  # no incidents: a year of (no) work, so features stay defined


def _geo(grids: gpd.GeoDataFrame, frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """``frame`` (indexed by grid code) joined to grid_id and geometry, in the grids' order."""
    g = grids.set_index("code")
    f = frame.reindex(g.index)
    f.insert(0, "grid_id", g["id"].to_numpy())
    return gpd.GeoDataFrame(f.reset_index(), geometry=g.geometry.to_numpy(), crs=grids.crs)


def _tiers_and_staffing(conn, out: PlanAnalysis, inc, pol, window, seed, kinds) -> None:
    """Features, tiers, and (when staffing or beats are asked) the requirement and the allocation."""
    import warnings

    from geogrid.features import grid_features
    from geogrid.staffing import allocate, requirement_summary, staffing_requirement
    from geogrid.tiers import TIER_LABELS, Tiering

    grids = out.grids
    hot, hot_run = _hotspot_share(conn, grids)
    risk, fc_run = _forecast_risk(conn, grids)
    located = inc.dropna(subset=["grid_code"])
    with warnings.catch_warnings():  # incidents outside the plan are counted in the summary instead
        warnings.simplefilter("ignore")
        feats = grid_features(grids.assign(key_areas=grids["key_areas"].map(list),
                                           population=grids["population"].fillna(0).astype(float)),
                              located[["category", "occurred_at", "grid_code"]], hotspot_share=hot,
                              forecast=risk, period_days=_period_days(window, located))
    out.features = feats
    t = Tiering(n_tiers=pol.n_tiers, seed=seed).fit(feats)
    tiers = pd.DataFrame({"tier": t.tiers_, "score": t.scores_, "drivers": t.drivers_["drivers_en"],
                          "drivers_zh": t.drivers_["drivers_zh"]})
    out.tiers = _geo(grids, tiers)
    kind_of = feats["kind"]
    out.summary["tiers"] = {
        "grids": int(len(feats)), "incidents": int(len(inc)), "incidents_in_plan": int(len(located)),
        "period_days": round(float(feats["period_days"].iloc[0]), 2),
        "method": t.method, "breaks": [round(float(b), 4) for b in t.breaks_],
        "weights": {k: round(v, 4) for k, v in t.weights_.items()},
        "tiers": {str(k): int(n) for k, n in t.tiers_.value_counts().sort_index().items()},
        "urban_by_tier": {str(k): int(n) for k, n in t.tiers_[kind_of == "urban"].value_counts().sort_index().items()},
        "labels": {str(k): {"en": en, "zh-CN": zh} for k, (en, zh) in TIER_LABELS.items() if k <= pol.n_tiers},
        "hotspot_run": hot_run, "forecast_run": fc_run,
    }
    if not {"staffing", "beats"} & set(kinds):
        return
    req = staffing_requirement(feats, t.tiers_, pol)
    out.requirement = req
    out.beat_workload = (req["officer_fte"] * pol.workload.officer_hours_per_year).rename("officer_hours")
    n_off, n_aux = out.headcount["officers"], out.headcount["auxiliaries"]
    summ = requirement_summary(req, n_off, n_aux)
    alloc = allocate(req, n_off, n_aux)
    reason = [f"{ra}; required — {rr}" for ra, rr in zip(alloc["reason_en"], req["reasons_en"])]
    reason_zh = [f"{ra}；需求——{rr}" for ra, rr in zip(alloc["reason_zh"], req["reasons_zh"])]
    staffing = pd.DataFrame({
        "tier": req["tier"], "kind": req["kind"], "officers_required": req["officers_required"],
        "auxiliaries_required": req["auxiliaries_required"], "officers": alloc["officers"],
        "auxiliaries": alloc["auxiliaries"], "workload_hours": req["workload_hours"].round(2),
        "reason": reason, "reason_zh": reason_zh}, index=req.index)
    out.staffing = _geo(grids, staffing)
    urban = (req["kind"] == "urban").to_numpy()
    out.summary["staffing"] = {
        "headcount": {k: out.headcount[k] for k in ("officers", "auxiliaries", "officers_source",
                                                     "auxiliaries_source")},
        "citywide": {s: {c: (None if pd.isna(v) else round(float(v), 2)) for c, v in row.items()}
                     for s, row in summ.to_dict(orient="index").items()},
        "shortfall": {"officers": int(summ.loc["officers", "shortfall"]),
                      "auxiliaries": int(summ.loc["auxiliaries", "shortfall"])},
        "allocated": {"officers": int(alloc["officers"].sum()), "auxiliaries": int(alloc["auxiliaries"].sum())},
        "urban_grids_without_own_officer": int(((alloc["officers"] == 0).to_numpy() & urban).sum()),
        "grids_short_of_requirement": int(((alloc["officers_short"] > 0) | (alloc["auxiliaries_short"] > 0)).sum()),
        "workload_hours": round(float(req["workload_hours"].sum()), 1),
    }


def _beats(out: PlanAnalysis, seconds: float, team: int, seed: int) -> None:
    """One officer per beat, officer hours as the workload; post areas are hard when officers suffice."""
    from geogrid.beats import BalancedBeats

    m = out.headcount["officers"]
    if m < 1:
        out.summary["beats"] = {"skipped": "no officers: pass --officers or load the staff table"}
        return
    grids = out.grids
    hours = out.beat_workload.reindex(grids["code"]).to_numpy()
    frame = grids.assign(workload=hours)
    note = None
    station = "post_code" if frame["post_code"].notna().all() else None
    if station is None:
        note = "some grids have no post_code: beats may cross post areas"
    try:
        bb = BalancedBeats(m, station_col=station, seed=seed, max_seconds=seconds, max_team=team).fit(frame)
    except InputError as e:
        if station is None or "cannot cover" not in str(e):
            raise
        note = f"post areas ignored: {e}"
        bb = BalancedBeats(m, seed=seed, max_seconds=seconds, max_team=team).fit(frame)
    b = bb.beats_
    codes = frame["code"].to_numpy()
    labels = bb.labels_.to_numpy()
    members = {k: codes[labels == k].tolist() for k in b.index}
    post = _mode_by(pd.Series(labels), frame["post_code"].reset_index(drop=True)).reindex(b.index).astype(object)
    post = post.where(post.notna(), None)  # a beat whose grids have no post stays without one
    out.beats = gpd.GeoDataFrame({
        "beat": b.index.astype(int), "officers": b["officers"].astype(int).to_numpy(),
        "n_grids": b["n_grids"].astype(int).to_numpy(), "workload": b["workload"].round(2).to_numpy(),
        "per_officer": b["workload_per_officer"].round(2).to_numpy(), "deviation": b["deviation"].round(4).to_numpy(),
        "polsby_popper": b["polsby_popper"].to_numpy(), "post_code": post.to_numpy(),
        "grid_codes": [members[k] for k in b.index]}, geometry=b.geometry.to_numpy(), crs=b.crs).to_crs(4326)
    out.beat_of_grid = pd.Series(labels, index=codes, name="beat")
    rep = {k: v for k, v in bb.report_.items()}
    out.summary["beats"] = {**rep, "max_team": team,
                            "officers_per_beat": ("one (several for a grid heavier than the band)" if team == 1 else
                                                  f"one, up to {team} where beats pair up to meet the goal"),
                            "workload": "officer hours a year (patrol + officer share of incident hours)",
                            "mean_per_officer": round(float(hours.sum() / m), 1),
                            "station_areas": station is not None and (note is None or "ignored" not in note),
                            "areas": len(bb.units_), **({"note": note} if note else {})}


def _mode_by(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Most frequent non-null value per key, the smallest on a tie (``Series.mode().iloc[0]`` per group,
    in one grouped pass); keys with only nulls are left out."""
    f = pd.DataFrame({"k": keys.to_numpy(), "v": values.to_numpy()}).dropna(subset=["v"])
    n = f.groupby(["k", "v"], sort=True).size().rename("n").reset_index()
    n = n.sort_values(["k", "n", "v"], ascending=[True, False, True], kind="stable")
    return n.drop_duplicates("k").set_index("k")["v"]


def _coverage(conn, out: PlanAnalysis, inc: pd.DataFrame, pol: StaffingPolicy) -> None:
    from geogrid.cells import apportion_to_cells, cells_to_polygons, points_to_cells, study_area_cells
    from geogrid.coverage import coverage
    from geogrid.travel import StraightLineTravel

    posts = read_posts(conn)
    if len(posts) == 0:
        out.summary["coverage"] = {"skipped": "no posts: load them with geogrid ingest posts"}
        return
    grids = out.grids
    res = COVERAGE_RES
    # one metric CRS for the whole coverage: each estimate_utm_crs call costs 0.1-0.3 s, and the
    # travel model, the cell areas and the apportioning would each estimate the same zone again
    utm = grids.estimate_utm_crs()
    cells = pd.DataFrame({"cell": study_area_cells(grids, res)})
    inc_cell = points_to_cells(inc["lon"].to_numpy(), inc["lat"].to_numpy(), res)
    inc_cells = pd.Series(inc_cell).value_counts()
    pop = apportion_to_cells(grids.assign(population=grids["population"].fillna(0).astype(float)), "population", res,
                             crs=utm)
    cells["incidents"] = inc_cells.reindex(cells["cell"]).fillna(0).to_numpy()
    cells["population"] = pop.reindex(cells["cell"]).fillna(0).to_numpy()
    travel = out.travel if out.travel is not None else StraightLineTravel.from_grids(grids, crs=utm)
    cov = coverage(posts, cells, grids, travel, THRESHOLDS, crs=utm)
    finite = np.isfinite(cov.cells_["minutes"]).to_numpy()
    c = cov.cells_[finite]
    polys = cov.polygons_.to_numpy()[finite] if cov.polygons_ is not None else cells_to_polygons(c["cell"]).to_numpy()
    out.coverage_cells = gpd.GeoDataFrame(
        {"cell": c["cell"].to_numpy(np.int64), "minutes": c["minutes"].round(3).to_numpy(),
         "nearest_post": c["nearest_post"].to_numpy()}, geometry=polys, crs=4326)
    # every grid gets its post and time, even one too small to hold a cell centre
    rep = gpd.GeoSeries(grids.geometry.representative_point(), crs=4326)
    gi, gmin = travel.nearest(posts, rep)
    g = cov.grids_.set_index("code")
    labels = [f"{t:g}" for t in THRESHOLDS]
    share_cols = [f"{w}_{t}" for t in labels for w in ("incidents", "population", "area")]
    cg = c.dropna(subset=["grid"])
    mode_post = _mode_by(cg["grid"], cg["nearest_post"])
    frame = pd.DataFrame(index=grids["code"].to_numpy())
    frame["mean_minutes"] = g["mean_minutes"].reindex(frame.index).fillna(pd.Series(gmin, index=frame.index)).round(3)
    frame["max_minutes"] = g["max_minutes"].reindex(frame.index).fillna(pd.Series(gmin, index=frame.index)).round(3)
    frame["nearest_post"] = mode_post.reindex(frame.index).fillna(
        pd.Series(posts["code"].to_numpy()[gi], index=frame.index))
    frame["shares"] = [{k: (None if pd.isna(v) else round(float(v), 4)) for k, v in row.items()}
                       for row in g.reindex(frame.index)[share_cols].to_dict(orient="records")]
    out.coverage_grids = _geo(grids, frame)
    out.uncovered = cov.uncovered_
    s = cov.summary_
    summary = {
        "travel": out.travel_info or _straight_info(travel, "given"),
        "posts": int(len(posts)), "cells": int(len(cov.cells_)), "res": res,
        "unreachable_cells": int((~np.isfinite(cov.cells_["minutes"])).sum()),
        "shares": {f"{t:g}": {w: (None if pd.isna(v) else round(float(v), 4)) for w, v in s.loc[t].items()}
                   for t in s.index},
        "uncovered": {f"{r.threshold:g}": {"area_km2": round(float(r.area_km2), 3), "incidents": int(r.incidents),
                                           "population": round(float(r.population))}
                      for r in cov.uncovered_.itertuples()},
        "mean_minutes": round(float(c["minutes"].mean()), 2),
    }
    cap = _capacitated(conn, posts, cov.cells_, inc, travel, pol, inc_cell)
    if cap:
        summary["capacitated"] = cap
    out.summary["coverage"] = summary


def _capacitated(conn, posts, cells: pd.DataFrame, inc, travel, pol: StaffingPolicy,
                 inc_cell: np.ndarray | None = None) -> dict | None:
    """Incidents served within the urgent deadline when each post serves at most its staff's hours."""
    from geogrid.cells import cell_centroids, points_to_cells
    from geogrid.siting import capacitated_mclp

    staff = _staff_by_post(conn)
    if staff.empty or not posts["code"].isin(staff.index).any():
        return None
    w = pol.workload
    off = staff.get("officer", pd.Series(dtype=float)).reindex(posts["code"]).fillna(0).to_numpy()
    aux = staff.get("auxiliary", pd.Series(dtype=float)).reindex(posts["code"]).fillna(0).to_numpy()
    capacity = off * w.officer_hours_per_year + aux * w.auxiliary_hours_per_year
    demand = cells[cells["incidents"] > 0]
    if demand.empty or not len(inc):
        return None
    years = max((inc["occurred_at"].max() - inc["occurred_at"].min()).total_seconds() / 86400 / 365, 1 / 365)
    hours = inc["category"].map(w.hours).astype(float)
    if inc_cell is None:
        inc_cell = points_to_cells(inc["lon"].to_numpy(), inc["lat"].to_numpy(), COVERAGE_RES)
    by_cell = hours.groupby(inc_cell).sum()
    load = by_cell.reindex(demand["cell"]).fillna(0).to_numpy() / years
    lon, lat = cell_centroids(demand["cell"])
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    minutes = pol.response.urgent_minutes
    a = travel.within(posts, pts, minutes)
    res = capacitated_mclp(demand["incidents"].to_numpy(), a, 0, load, capacity,
                           existing=np.arange(len(posts)))
    reach = np.asarray(a.sum(axis=1)).ravel() > 0
    at_cap = (res.site_load >= capacity - 1e-6) & (capacity > 0) if res.site_load is not None else []
    return {"minutes": minutes, "capacity": "staff hours a year of the post (officers + auxiliaries)",
            "workload": "incident hours a year (policy hours per incident)",
            "incidents_reachable_share": round(float(demand["incidents"].to_numpy()[reach].sum()
                                                     / demand["incidents"].sum()), 4),
            "incidents_served_share": round(float(res.share), 4),
            "posts_with_staff": int((capacity > 0).sum()), "posts_at_capacity": int(np.sum(at_cap)),
            "gap": round(float(res.gap), 6)}


# --- travel and siting -------------------------------------------------------------------------------
def _straight_info(travel, reason: str) -> dict:
    return {"model": "straight", "description": "straight line × circuity", "circuity": travel.circuity,
            "urban_kmh": travel.urban_kmh, "rural_kmh": travel.rural_kmh, "reason": reason}


def _travel_model(conn: Connection, grids: gpd.GeoDataFrame, mode: str) -> tuple[object, dict]:
    """The travel model of coverage and siting, and a JSON-ready note of which one and why."""
    from geogrid.roads import COVER_SHARE, read_roads, roads_cover_share, roads_graph
    from geogrid.travel import NetworkTravel, StraightLineTravel

    plan_id = int(grids["plan_id"].iloc[0])
    utm = grids.estimate_utm_crs()
    share = roads_cover_share(conn, plan_id) if mode != "straight" else None
    if mode == "network" or (mode == "auto" and share >= COVER_SHARE):
        roads = read_roads(conn, plan_id)
        if len(roads) == 0:
            raise NotFound("no roads near the plan's grids: load a network with `geogrid ingest roads PATH` "
                           "or use --travel straight")
        graph = roads_graph(roads.to_crs(utm))
        travel = NetworkTravel(graph)
        reason = "asked (--travel network)" if mode == "network" else \
            f"roads touch {100 * share:.0f} % of the plan's grids (≥ {100 * COVER_SHARE:.0f} %)"
        return travel, {"model": "network", "description": "shortest driving time over the roads table",
                        "roads": int(len(roads)), "sources": sorted(roads["source"].unique().tolist()),
                        "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(),
                        "access_kmh": travel.access_kmh, "grids_touched_share": round(share, 4), "reason": reason}
    travel = StraightLineTravel.from_grids(grids, crs=utm)
    if mode == "straight":
        reason = "asked (--travel straight)"
    elif share == 0:
        reason = "no stored roads touch the plan's grids"
    else:
        reason = f"roads touch only {100 * share:.0f} % of the plan's grids (< {100 * COVER_SHARE:.0f} %)"
    return travel, _straight_info(travel, reason)


def read_candidates(path, crs: str | None = None) -> gpd.GeoDataFrame:
    """Candidate sites from a file: points (any vector format geogrid reads) or a CSV with lon/lat columns.

    Labels come from a ``code``, ``name`` or ``id`` column (else ``C001…``). Returns ``code`` and Point
    geometry in EPSG:4326; a row without a usable point is an :class:`InputError` naming the row.
    """
    from geogrid.crs import parse_crs, to_wgs84
    from geogrid.ingest.readers import ROW, read_chunks

    df = pd.concat(list(read_chunks(path)), ignore_index=True)
    if len(df) == 0:
        raise InputError(f"{path}: no candidate sites")
    spec = parse_crs(crs or df.attrs.get("crs") or "EPSG:4326")
    if "geometry" in df:
        import shapely

        g = np.asarray(df["geometry"].to_numpy(), dtype=object)
        bad = shapely.is_missing(g) | shapely.is_empty(g)
        bad |= shapely.get_type_id(np.where(bad, None, g)) != 0
        x = np.where(bad, np.nan, shapely.get_x(np.where(bad, None, g)))
        y = np.where(bad, np.nan, shapely.get_y(np.where(bad, None, g)))
    else:
        lower = {c.casefold(): c for c in df.columns}
        lon = next((lower[c] for c in ("lon", "lng", "longitude", "x", "经度") if c in lower), None)
        lat = next((lower[c] for c in ("lat", "latitude", "y", "纬度") if c in lower), None)
        if lon is None or lat is None:
            raise InputError(f"{path}: candidate CSV needs lon and lat columns (lon/lng/longitude/经度, lat/latitude/纬度)")
        x = pd.to_numeric(df[lon], errors="coerce").to_numpy(float)
        y = pd.to_numeric(df[lat], errors="coerce").to_numpy(float)
    lon_, lat_ = to_wgs84(x, y, spec)
    bad = ~(np.isfinite(lon_) & np.isfinite(lat_) & (np.abs(lon_) <= 180) & (np.abs(lat_) <= 90))
    if bad.any():
        rows = df[ROW].to_numpy()[bad][:5].tolist()
        raise InputError(f"{path}: {int(bad.sum())} candidate rows without a point in plausible lon/lat "
                         f"(rows {rows}); give Point geometries or numeric lon/lat (and --candidates-crs)")
    label = next((c for c in ("code", "name", "id") if c in df), None)
    codes = (df[label].astype("string").str.strip().fillna("").to_numpy(object) if label
             else np.array([f"C{i + 1:03d}" for i in range(len(df))], dtype=object))
    empty = codes == ""
    codes[empty] = [f"C{i + 1:03d}" for i in np.flatnonzero(empty)]
    dup = pd.Series(codes).duplicated().to_numpy()
    if dup.any():
        raise InputError(f"{path}: candidate labels repeat ({sorted(set(codes[dup]))[:5]}); each site needs its own")
    return gpd.GeoDataFrame({"code": codes}, geometry=gpd.points_from_xy(lon_, lat_), crs=4326)


def _siting(conn, out: PlanAnalysis, inc: pd.DataFrame, pol: StaffingPolicy, opt: SitingOptions) -> None:
    """MCLP, LSCP and (optionally) the capacitated MCLP over existing posts plus candidate sites."""
    from geogrid.assign import GridIndex
    from geogrid.cells import cell_centroids, points_to_cells
    from geogrid.siting import capacitated_mclp, lscp, mclp

    grids, travel = out.grids, out.travel
    located = inc.dropna(subset=["grid_code"])
    if located.empty:
        out.summary["siting"] = {"skipped": "no incidents in the plan's grids", "travel": out.travel_info}
        return
    inc_cell = points_to_cells(located["lon"].to_numpy(), located["lat"].to_numpy(), COVERAGE_RES)
    demand = pd.Series(inc_cell).value_counts().sort_index()
    lon, lat = cell_centroids(demand.index.to_numpy(np.int64))
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    w = demand.to_numpy(float)

    posts = read_posts(conn)
    if opt.candidates is None:
        rep = grids.geometry.representative_point()
        cand = gpd.GeoDataFrame({"code": grids["code"].to_numpy()}, geometry=rep.to_numpy(), crs=4326)
    else:
        cand = opt.candidates.to_crs(4326) if opt.candidates.crs is not None else opt.candidates.set_crs(4326)
    clash = set(cand["code"]) & set(posts["code"])
    if clash:
        raise InputError(f"candidate labels {sorted(clash)[:5]} are also post codes; relabel the candidates")
    sites = gpd.GeoDataFrame({"site": [*posts["code"], *cand["code"]]},
                             geometry=[*posts.geometry, *cand.geometry], crs=4326)
    idx = GridIndex(grids, key="code")
    sites["grid_code"] = idx.keys_of(sites.geometry.x.to_numpy(), sites.geometry.y.to_numpy())
    existing = np.arange(len(posts))
    n_cand = len(cand)
    if not isinstance(opt.k, (int, np.integer)) or isinstance(opt.k, bool) or not 0 <= opt.k <= n_cand:
        raise InputError(f"k must be a whole number from 0 to {n_cand} (the candidate sites), got {opt.k!r}")
    frames, models = [], {}

    a = travel.within(sites, pts, opt.minutes)
    res = mclp(w, a, int(opt.k), existing=existing, time_limit=opt.time_limit)
    frames.append(_proposal_rows("mclp", opt.minutes, res, sites))
    models["mclp"] = _model_summary(res, sites, opt.minutes, k=int(opt.k))
    if opt.lscp_minutes is not None:
        # LSCP from scratch: existing posts are candidates like the others, not forced open, so the
        # answer is the size of the smallest post network (and which existing posts it keeps).
        a15 = travel.within(sites, pts, opt.lscp_minutes)
        res = lscp(a15, demand_weights=w, time_limit=opt.time_limit)
        frames.append(_proposal_rows("lscp", opt.lscp_minutes, res, sites, n_posts=len(posts)))
        reach = np.asarray(a15.sum(axis=1)).ravel() > 0
        models["lscp"] = {**_model_summary(res, sites, opt.lscp_minutes),
                          "existing_kept": int(np.sum(res.selected < len(posts))),
                          "unreachable_share": round(float(w[~reach].sum() / w.sum()), 4),
                          "goal": "fewest posts (existing ones included, none forced) reaching every incident "
                                  "some site reaches"}
    if opt.capacitated:
        cap = _siting_capacity(conn, posts, n_cand, pol, opt)
        if isinstance(cap, str):
            models["capacitated_mclp"] = {"skipped": cap}
        else:
            capacity, new_cap = cap
            load = _cell_workload(located, inc_cell, demand.index, pol)
            # Pre-select candidates by the incidents they reach (existing posts always stay): the full
            # model on the 860-grid demo did not reach a useful gap in 60 s, a pool of 100 solves in seconds.
            pool = opt.capacitated_pool or max(20 * int(opt.k), 100)
            reach_w = np.asarray(a.T @ w).ravel()[len(posts):]
            top = np.sort(np.argsort(-reach_w, kind="stable")[:pool]) + len(posts)
            cols = np.r_[existing, top]
            res = capacitated_mclp(w, a[:, cols], int(opt.k), load, capacity[cols], existing=existing,
                                   time_limit=opt.time_limit)
            sub = sites.iloc[cols].reset_index(drop=True)
            frames.append(_proposal_rows("capacitated_mclp", opt.minutes, res, sub, res.site_load))
            models["capacitated_mclp"] = {
                **_model_summary(res, sub, opt.minutes, k=int(opt.k)), "new_site_capacity_hours": round(new_cap, 1),
                "candidates_considered": int(len(top)),
                "capacity": "staff hours a year of each post (officers + auxiliaries)",
                "workload": "incident hours a year (policy hours per incident)",
                "posts_at_capacity": int(np.sum((res.site_load[existing] >= capacity[existing] - 1e-6)
                                                & (capacity[existing] > 0)))}
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "plan_id", int(out.plan["id"]))
    out.siting = gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)
    out.summary["siting"] = {"travel": out.travel_info, "demand": f"incidents per H3 cell (res {COVERAGE_RES})",
                             "demand_cells": int(len(w)), "incidents": int(w.sum()), "existing_posts": int(len(posts)),
                             "candidates": int(n_cand),
                             "candidate_source": "grid centroids" if opt.candidates is None else "given points",
                             "models": models}


def _proposal_rows(model: str, minutes: float, res, sites: gpd.GeoDataFrame, load=None,
                   n_posts: int | None = None) -> pd.DataFrame:
    """Posts kept open (rank 0) then the selected sites in the order added, with cumulative covered shares.

    With ``n_posts`` (LSCP from scratch) a selected site among the first ``n_posts`` is an existing post."""
    total = res.total_weight if res.total_weight > 0 else np.nan
    base = res.covered_weight - float(np.sum(res.gains))
    cols = sites.columns.get_loc
    rows = []
    for j in res.existing:
        rows.append({"model": model, "minutes": float(minutes), "rank": 0, "site": sites.iat[j, cols("site")],
                     "grid_code": sites.iat[j, cols("grid_code")], "existing": True, "gain": np.nan,
                     "covered_share": base / total, "workload": np.nan if load is None else float(load[j]),
                     "geometry": sites.geometry.iloc[j]})
    for r, (j, g, c) in enumerate(zip(res.selected, res.gains, base + np.cumsum(res.gains)), start=1):
        rows.append({"model": model, "minutes": float(minutes), "rank": r, "site": sites.iat[j, cols("site")],
                     "grid_code": sites.iat[j, cols("grid_code")],
                     "existing": bool(n_posts is not None and j < n_posts), "gain": float(g),
                     "covered_share": c / total, "workload": np.nan if load is None else float(load[j]),
                     "geometry": sites.geometry.iloc[j]})
    return pd.DataFrame(rows, columns=["model", "minutes", "rank", "site", "grid_code", "existing", "gain",
                                       "covered_share", "workload", "geometry"])


def _model_summary(res, sites, minutes: float, k: int | None = None) -> dict:
    before = res.covered_weight - float(np.sum(res.gains))
    total = res.total_weight
    return {"minutes": float(minutes), **({"k": k} if k is not None else {}), "new_sites": int(len(res.selected)),
            "sites": sites["site"].to_numpy()[res.selected].tolist(),
            "gains": [round(float(g), 3) for g in res.gains],
            "covered_share_before": round(before / total, 4) if total > 0 else None,
            "covered_share_after": round(float(res.share), 4) if total > 0 else None,
            "gap": round(float(res.gap), 6), "seconds": round(float(res.seconds), 3), "status": res.status}


def _cell_workload(inc: pd.DataFrame, inc_cell: np.ndarray, cells, pol: StaffingPolicy) -> np.ndarray:
    """Incident hours a year per demand cell (policy hours per incident category)."""
    years = max((inc["occurred_at"].max() - inc["occurred_at"].min()).total_seconds() / 86400 / 365, 1 / 365)
    hours = inc["category"].map(pol.workload.hours).astype(float).fillna(0.0).to_numpy()
    return pd.Series(hours).groupby(inc_cell).sum().reindex(cells).fillna(0).to_numpy() / years


def _siting_capacity(conn, posts, n_cand: int, pol: StaffingPolicy, opt: SitingOptions):
    """Capacity (staff hours a year) of each site: posts from their staff, new sites ``new_site_capacity``
    or the median staffed post's; a string says why the model cannot run."""
    staff = _staff_by_post(conn)
    w = pol.workload
    if staff.empty:
        return "no staff assigned to posts: load the staff table with post codes"
    off = staff.get("officer", pd.Series(dtype=float)).reindex(posts["code"]).fillna(0).to_numpy()
    aux = staff.get("auxiliary", pd.Series(dtype=float)).reindex(posts["code"]).fillna(0).to_numpy()
    capacity = off * w.officer_hours_per_year + aux * w.auxiliary_hours_per_year
    if opt.new_site_capacity is not None:
        new = float(opt.new_site_capacity)
    elif (capacity > 0).any():
        new = float(np.median(capacity[capacity > 0]))
    else:
        return "no post has staff, and no capacity for new sites was given"
    if not np.isfinite(new) or new < 0:
        raise InputError(f"new_site_capacity must be a non-negative number of hours, got {new!r}")
    return np.r_[capacity, np.full(n_cand, new)], new


# --- storing -----------------------------------------------------------------------------------------
def run_planning(conn: Connection, plan_id: int | None = None, officers: int | None = None,
                 auxiliaries: int | None = None, kinds: Iterable[str] = KINDS, policy=None, *,
                 window=None, beats_seconds: float = 10.0, beats_team: int = 1, seed: int = 0,
                 travel: str = "auto", siting: SitingOptions | None = None,
                 analysis: PlanAnalysis | None = None) -> dict[str, int]:
    """:func:`plan_analysis`, then each kind stored as an analysis run; returns kind → run id.

    Tables: ``grid_tiers``, ``grid_staffing``, ``beats``, ``coverage_grids`` + ``coverage_cells``
    (migration 0003), ``siting_proposals`` (0004); each run's summary goes in ``analysis_runs.summary``. A kind that could not be
    computed (no officers for beats, no posts for coverage) is stored with its summary saying why.
    """
    from geogrid.store import results

    kinds = _kinds(kinds)
    a = analysis or plan_analysis(conn, plan_id, officers, auxiliaries, kinds, policy, window=window,
                                  beats_seconds=beats_seconds, beats_team=beats_team, seed=seed,
                                  travel=travel, siting=siting)
    runs: dict[str, int] = {}
    frames = {"tiers": [a.tiers], "staffing": [a.staffing], "beats": [a.beats],
              "coverage": [a.coverage_grids, a.coverage_cells], "siting": [a.siting]}
    for kind in kinds:
        run = results.start_run(conn, kind, {**a.params, "kind": kind}, a.data_from, a.data_to,
                                plan_id=a.plan["id"])
        for table, frame in zip(TABLE_OF[kind], frames[kind]):
            if frame is not None:
                results.save(conn, table, run, frame)
        results.finish_run(conn, run, a.summary.get(kind, {}))
        runs[kind] = run
    return runs


def save_redesign(conn: Connection, proposal: gpd.GeoDataFrame, name: str, parent_plan_id: int | None = None,
                  note: str | None = None, prefix: str = "R", replaces: Sequence[str] | None = None) -> dict:
    """Store a grid redesign proposal (:attr:`geogrid.redesign.GridRedesign.grids_`) as a new draft plan.

    Each proposed grid gets the code ``{prefix}001…``; with ``parent_plan_id`` its kind and post come from the
    parent grid holding its representative point and its population is the parent grids' population
    shared by overlapping area. Workload, deviation, compactness and cell count go in ``attrs``. With
    ``replaces`` (codes of the parent's grids the proposal redraws), the draft also holds the parent's
    other grids unchanged (:func:`geogrid.redesign_runs.propose_redesign`). The draft can then be
    previewed with :func:`plan_analysis` and edited or compared through the map API.
    """
    import shapely

    from geogrid.assign import GridIndex
    from geogrid.errors import Conflict
    from geogrid.store.grids import read_grids, upsert_grids
    from geogrid.store.plans import get_or_create_plan

    if not isinstance(proposal, gpd.GeoDataFrame) or len(proposal) == 0:
        raise InputError("proposal must be a non-empty GeoDataFrame of proposed grids (GridRedesign.grids_)")
    prop = (proposal.set_crs(4326) if proposal.crs is None else proposal.to_crs(4326)).reset_index(drop=True)
    plan, created = get_or_create_plan(conn, name, note or "grid redesign proposal")
    if not created:
        raise Conflict(f"plan {name!r} exists; choose another name for the proposal")
    n = len(prop)
    kind, post, pop = np.full(n, "urban", dtype=object), np.full(n, None, dtype=object), np.full(n, np.nan)
    if parent_plan_id is not None:
        parent = read_grids(conn, int(parent_plan_id))
        if len(parent):
            rep = shapely.point_on_surface(prop.geometry.to_numpy())
            idx = GridIndex(parent, key="code").locate(shapely.get_x(rep), shapely.get_y(rep))
            ok = idx >= 0
            kind[ok] = parent["kind"].to_numpy()[idx[ok]]
            post[ok] = parent["post_code"].to_numpy()[idx[ok]]
            pop = _shared_population(prop, parent)
    attrs = [{"source": "redesign", **{k: (None if pd.isna(r.get(k)) else round(float(r[k]), 4))
                                       for k in ("workload", "deviation", "polsby_popper", "n_cells") if k in r}}
             for r in prop.drop(columns="geometry").to_dict(orient="records")]
    frame = gpd.GeoDataFrame({
        "code": [f"{prefix}{i + 1:03d}" for i in range(n)], "name": [f"方案网格 {i + 1}" for i in range(n)],
        "kind": kind, "population": pop, "key_areas": [[] for _ in range(n)], "post_code": post,
        "district": None, "attrs": attrs}, geometry=shapely.multipolygons(
            [shapely.get_parts(g) for g in prop.geometry.to_numpy()]), crs=4326)
    if replaces is not None:
        if parent_plan_id is None:
            raise InputError("replaces needs parent_plan_id (the plan whose other grids the draft keeps)")
        kept = read_grids(conn, int(parent_plan_id))
        kept = kept[~kept["code"].isin(list(replaces))]
        clash = sorted(set(kept["code"]) & set(frame["code"]))
        if clash:
            raise InputError(f"prefix {prefix!r}: codes {', '.join(clash[:5])} are taken by kept grids; choose another")
        frame = pd.concat([frame, kept[frame.columns]], ignore_index=True)
    upsert_grids(conn, plan["id"], frame)
    if parent_plan_id is not None:
        conn.execute(text("UPDATE plans SET parent_id = :p WHERE id = :id"),
                     {"p": int(parent_plan_id), "id": plan["id"]})
    return {**plan, "grids": len(frame), "proposed": n}


def _shared_population(new: gpd.GeoDataFrame, parent: gpd.GeoDataFrame) -> np.ndarray:
    """Population of each new polygon: every parent grid's population shared by overlapping area."""
    import shapely

    from geogrid.compactness import to_metres

    crs = to_metres(parent).crs
    a, b = new.to_crs(crs).geometry.to_numpy(), parent.to_crs(crs).geometry.to_numpy()
    i, j = shapely.STRtree(b).query(a, predicate="intersects")
    share = shapely.area(shapely.intersection(a[i], b[j])) / shapely.area(b[j])
    p = parent["population"].fillna(0).to_numpy(dtype=float)
    return np.round(np.bincount(i, weights=share * p[j], minlength=len(a)))
