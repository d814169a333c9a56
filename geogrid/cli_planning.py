"""`geogrid analyze tiers|staffing|beats|coverage|siting|redesign` and `geogrid map tiers|allocation|beats|coverage`.

Registered on the typer apps of :mod:`geogrid.cli` (imported at the end of that module). Thin: parse,
call :mod:`geogrid.planning_runs` and the store, print a summary table, write offline maps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from geogrid.cli import (RunOpt, WinCat, WinEnd, WinOrigin, WinStart, _engine, _fail, _window, analyze_app,
                         console, map_app)
from geogrid.errors import GeogridError, InputError, NotFound

PlanOpt = Annotated[Optional[str], typer.Option(help="plan id or name (default: the active plan)")]
OfficersOpt = Annotated[Optional[int], typer.Option(help="officers to deploy (default: the staff table)")]
AuxOpt = Annotated[Optional[int], typer.Option(help="auxiliaries to deploy (default: the staff table)")]
PolicyOpt = Annotated[Optional[Path], typer.Option(help="staffing policy TOML laid over the defaults")]
SecondsOpt = Annotated[float, typer.Option(help="time budget of the beats search (seconds)")]
TeamOpt = Annotated[int, typer.Option(help="most officers a beat may share: 2 lets beats that miss the goal pair up")]
TravelOpt = Annotated[str, typer.Option(
    help="travel model: network (roads table), straight (line × circuity), auto (network when roads cover the plan)")]


def _plan_id(conn, plan: str | None) -> int | None:
    from geogrid.store.plans import get_plan

    if plan is None:
        return None
    return int(get_plan(conn, int(plan) if plan.isdigit() else plan)["id"])


def _analyze_planning(kind: str, plan, officers, auxiliaries, policy, seconds, start, end, category, origin,
                      team: int = 1, travel: str = "auto", siting=None) -> None:
    from geogrid.planning_runs import run_planning

    window = _window(start, end, category, origin) if any((start, end, category, origin)) else None
    try:
        with console.status(f"{kind}…"), _engine().begin() as conn:
            runs = run_planning(conn, _plan_id(conn, plan), officers, auxiliaries, kinds=(kind,), policy=policy,
                                window=window, beats_seconds=seconds, beats_team=team, travel=travel,
                                siting=siting)
            row = conn.execute(_summary_sql(), {"r": runs[kind]}).mappings().one()
    except (GeogridError, ValueError) as e:
        _fail(e)
    console.print(f"[bold]{kind}[/] run {runs[kind]} — plan {row['plan']!r} (id {row['plan_id']})")
    PRINTERS[kind](row["summary"])


def _summary_sql():
    from sqlalchemy import text

    return text("SELECT r.summary, r.plan_id, p.name AS plan FROM analysis_runs r JOIN plans p ON p.id = r.plan_id "
                "WHERE r.id = :r")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * float(v):.1f} %"


def _print_tiers(s: dict) -> None:
    t = Table("tier", "label", "grids", "of which urban", title="grid tiers (网格等级)")
    for k, n in s["tiers"].items():
        lab = s["labels"].get(k, {})
        t.add_row(k, f"{lab.get('zh-CN', '')} {lab.get('en', '')}", f"{n:,}", f"{s['urban_by_tier'].get(k, 0):,}")
    console.print(t)
    console.print(f"  {s['incidents_in_plan']:,} of {s['incidents']:,} incidents in the plan's grids over "
                  f"{s['period_days']:g} days; hotspot run {s['hotspot_run']}, forecast run {s['forecast_run']}")


def _print_staffing(s: dict) -> None:
    h = s["headcount"]
    t = Table("staff", "hard minimum", "required", "workload posts", "available", "shortfall",
              title="staffing: citywide requirement against available staff (警力需求与缺口)")
    for staff, row in s["citywide"].items():
        t.add_row(staff, *(f"{row[c]:,.0f}" if row[c] is not None else "–"
                           for c in ("hard_minimum", "required", "workload_posts", "available", "shortfall")))
    console.print(t)
    console.print(f"  headcount: {h['officers']:,} officers ({h['officers_source']}), {h['auxiliaries']:,} "
                  f"auxiliaries ({h['auxiliaries_source']}); allocated {s['allocated']['officers']:,} + "
                  f"{s['allocated']['auxiliaries']:,}")
    console.print(f"  urban grids without an officer of their own: {s['urban_grids_without_own_officer']:,}; "
                  f"grids short of their requirement: {s['grids_short_of_requirement']:,}")


def _print_beats(s: dict) -> None:
    if "skipped" in s:
        console.print(f"  beats skipped: {s['skipped']}")
        return
    t = Table("figure", "value", title="beats (一警多格): workload per officer")
    rows = [("beats / officers", f"{s['n_beats']:,} / {s['officers']:,}"),
            ("grids per beat (mean)", f"{s['mean_grids_per_beat']:g}"),
            ("workload CV", f"{s['workload_cv']:.3f}"),
            ("max deviation from the mean", _pct(s["max_abs_dev"])),
            ("goal", f"±{100 * s['goal']:.0f} %"),
            ("lower bound (no plan does better)", _pct(s["lower_bound_dev"])),
            ("within goal", "yes" if s["within_goal"] else "no"),
            ("max/min ratio", f"{s['max_min_ratio']:.2f}"),
            ("contiguous beats", _pct(s["contiguous_share"])),
            ("Polsby–Popper mean / worst", f"{s['mean_polsby_popper']:.2f} / {s['worst_polsby_popper']:.2f}"),
            ("post areas respected", "yes" if s["station_areas"] else "no"),
            ("two-officer beats formed to meet the goal", f"{s.get('team_merges', 0):,}"),
            ("seconds", f"{s['seconds']:.1f}")]
    for r in rows:
        t.add_row(*r)
    console.print(t)
    if s.get("note"):
        console.print(f"  [yellow]note[/] {s['note']}")


def _print_coverage(s: dict) -> None:
    if "skipped" in s:
        console.print(f"  coverage skipped: {s['skipped']}")
        return
    t = Table("within", "incidents", "population", "area", "uncovered km²",
              title="coverage from the nearest post (响应覆盖)")
    for th, sh in s["shares"].items():
        un = s["uncovered"].get(th, {})
        t.add_row(f"{th} min", _pct(sh["incidents"]), _pct(sh["population"]), _pct(sh["area"]),
                  f"{un.get('area_km2', 0):,.1f}")
    console.print(t)
    console.print(f"  {s['posts']} posts, {s['cells']:,} H3 cells (res {s['res']}); travel: {_travel_text(s['travel'])}")
    if s.get("unreachable_cells"):
        console.print(f"  cells no road reaches: {s['unreachable_cells']:,}")
    cap = s.get("capacitated")
    if cap:
        console.print(f"  with post capacities (staff hours): {_pct(cap['incidents_served_share'])} of incidents "
                      f"served within {cap['minutes']:g} min (reachable {_pct(cap['incidents_reachable_share'])}); "
                      f"posts at capacity {cap['posts_at_capacity']}")


def _travel_text(tr: dict) -> str:
    if tr.get("model") == "network":
        return (f"road network ({tr['roads']:,} roads, {tr['nodes']:,} nodes; access {tr['access_kmh']:g} km/h) "
                f"— {tr['reason']}")
    if "circuity" in tr:
        return (f"straight line × {tr['circuity']:g} at {tr['urban_kmh']:g}/{tr['rural_kmh']:g} km/h urban/rural"
                f" — {tr.get('reason', '')}")
    return str(tr.get("model", "?"))


_MODEL_TITLES = {"mclp": "MCLP: k new posts reaching most incidents (最大覆盖选址)",
                 "lscp": "LSCP: fewest new posts reaching every incident (集合覆盖选址)",
                 "capacitated_mclp": "capacitated MCLP: posts serve only what their staff can (容量约束选址)"}


def _print_siting(s: dict) -> None:
    if "skipped" in s:
        console.print(f"  siting skipped: {s['skipped']}")
        return
    console.print(f"  {s['incidents']:,} incidents in {s['demand_cells']:,} H3 cells; {s['existing_posts']} existing "
                  f"posts; {s['candidates']:,} candidates ({s['candidate_source']}); travel: {_travel_text(s['travel'])}")
    for model, m in s["models"].items():
        if "skipped" in m:
            console.print(f"  {model} skipped: {m['skipped']}")
            continue
        t = Table("rank", "site", "gain (incidents)", title=f"{_MODEL_TITLES.get(model, model)} within {m['minutes']:g} min")
        for i, (site, g) in enumerate(zip(m["sites"], m["gains"]), start=1):
            t.add_row(str(i), str(site), f"{g:,.1f}")
        console.print(t)
        if model == "lscp":
            console.print(f"    {m['new_sites']} posts in all reach {_pct(m['covered_share_after'])} of incidents "
                          f"({m['existing_kept']} of them existing posts); gap {100 * m['gap']:.2f} %")
        else:
            console.print(f"    incidents reached: {_pct(m['covered_share_before'])} by existing posts → "
                          f"{_pct(m['covered_share_after'])} with {m['new_sites']} new; gap {100 * m['gap']:.2f} %")
        if "unreachable_share" in m and m["unreachable_share"]:
            console.print(f"    no site reaches {_pct(m['unreachable_share'])} of incidents within {m['minutes']:g} min")


PRINTERS = {"tiers": _print_tiers, "staffing": _print_staffing, "beats": _print_beats,
            "coverage": _print_coverage, "siting": _print_siting}


@analyze_app.command("tiers")
def analyze_tiers(plan: PlanOpt = None, policy: PolicyOpt = None, start: WinStart = None, end: WinEnd = None,
                  category: WinCat = None, origin: WinOrigin = None) -> None:
    """Grid complexity tiers (1 = most complex) with each grid's three main drivers."""
    _analyze_planning("tiers", plan, None, None, policy, 0.0, start, end, category, origin)


@analyze_app.command("staffing")
def analyze_staffing(officers: OfficersOpt = None, auxiliaries: AuxOpt = None, plan: PlanOpt = None,
                     policy: PolicyOpt = None, start: WinStart = None, end: WinEnd = None, category: WinCat = None,
                     origin: WinOrigin = None) -> None:
    """Officers and auxiliaries each grid requires, the shortfall, and the allocation of the headcount."""
    _analyze_planning("staffing", plan, officers, auxiliaries, policy, 0.0, start, end, category, origin)


@analyze_app.command("beats")
def analyze_beats(officers: OfficersOpt = None, auxiliaries: AuxOpt = None, plan: PlanOpt = None,
                  policy: PolicyOpt = None, seconds: SecondsOpt = 20.0, team: TeamOpt = 1, start: WinStart = None,
                  end: WinEnd = None, category: WinCat = None, origin: WinOrigin = None) -> None:
    """Contiguous beats of grids, one officer each, balancing officer workload within post areas."""
    _analyze_planning("beats", plan, officers, auxiliaries, policy, seconds, start, end, category, origin, team)


@analyze_app.command("coverage")
def analyze_coverage(plan: PlanOpt = None, policy: PolicyOpt = None, travel: TravelOpt = "auto",
                     start: WinStart = None, end: WinEnd = None, category: WinCat = None,
                     origin: WinOrigin = None) -> None:
    """Travel time from the nearest post per H3 cell and grid; shares reached within 5 and 15 minutes."""
    _analyze_planning("coverage", plan, None, None, policy, 0.0, start, end, category, origin, travel=travel)


@analyze_app.command("siting")
def analyze_siting(
    k: Annotated[int, typer.Option("--k", help="new posts the MCLP adds beyond the existing ones")] = 5,
    minutes: Annotated[float, typer.Option(help="MCLP (and capacitated) time standard, minutes")] = 5.0,
    lscp_minutes: Annotated[float, typer.Option("--lscp-minutes", help="LSCP time standard, minutes (0: skip LSCP)")] = 15.0,
    candidates: Annotated[str, typer.Option(
        help="candidate sites: grid-centroids, or a file of points (GeoJSON/GeoPackage/…, or CSV with lon/lat)")] = "grid-centroids",
    candidates_crs: Annotated[Optional[str], typer.Option("--candidates-crs", help="CRS of the candidates file")] = None,
    capacitated: Annotated[bool, typer.Option(help="also the capacitated MCLP (posts serve only their staff hours)")] = False,
    new_site_hours: Annotated[Optional[float], typer.Option(
        "--new-site-hours", help="capacity of a new post in staff hours a year (default: the median staffed post)")] = None,
    time_limit: Annotated[float, typer.Option(
        "--time-limit", help="seconds per model; the best solution found and its gap are reported")] = 60.0,
    travel: TravelOpt = "auto", plan: PlanOpt = None, policy: PolicyOpt = None,
    start: WinStart = None, end: WinEnd = None, category: WinCat = None, origin: WinOrigin = None,
) -> None:
    """Where new posts help most: MCLP (k posts, most incidents within 5 min), LSCP (fewest posts within 15 min)."""
    from geogrid.planning_runs import SitingOptions, read_candidates

    try:
        cand = None if candidates == "grid-centroids" else read_candidates(Path(candidates), candidates_crs)
    except (GeogridError, ValueError) as e:
        _fail(e)
    opt = SitingOptions(k=k, minutes=minutes, lscp_minutes=lscp_minutes or None, candidates=cand,
                        capacitated=capacitated, new_site_capacity=new_site_hours, time_limit=time_limit)
    _analyze_planning("siting", plan, None, None, policy, 0.0, start, end, category, origin, travel=travel,
                      siting=opt)


@analyze_app.command("redesign")
def analyze_redesign(
    k: Annotated[int, typer.Option("--k", help="number of new grids")],
    grids: Annotated[Optional[str], typer.Option(
        help="comma-separated codes of the active plan's grids to redraw (default: all)")] = None,
    res: Annotated[int, typer.Option(help="H3 resolution of the cells the new grids are made of (9 or 10)")] = 9,
    tolerance: Annotated[float, typer.Option(help="goal band of workload around the mean new grid")] = 0.05,
    by_post: Annotated[bool, typer.Option("--by-post", help="new grids never cross post (station) areas")] = False,
    barriers: Annotated[Optional[Path], typer.Option(
        help="file of lines (rivers, rail) or polygons new grids may not cross")] = None,
    barriers_crs: Annotated[Optional[str], typer.Option("--barriers-crs", help="CRS of the barriers file")] = None,
    name: Annotated[Optional[str], typer.Option(help="name of the draft plan (default: redesign-…)")] = None,
    seconds: Annotated[float, typer.Option(help="time budget of the search (seconds)")] = 60.0,
    seed: Annotated[int, typer.Option(help="seed of the search (same inputs and seed, same proposal)")] = 0,
    start: WinStart = None, end: WinEnd = None, category: WinCat = None, origin: WinOrigin = None,
) -> None:
    """Redraw grids of the active plan as k contiguous, compact grids of equal workload: a draft plan."""
    from geogrid.redesign_runs import propose_redesign, read_barriers

    window = _window(start, end, category, origin) if any((start, end, category, origin)) else None
    try:
        lines = read_barriers(barriers, barriers_crs) if barriers is not None else None
        codes = [c.strip() for c in grids.split(",") if c.strip()] if grids else None
        with console.status("redesign…"), _engine().begin() as conn:
            out = propose_redesign(conn, k, codes=codes, res=res, tolerance=tolerance, barriers=lines,
                                   by_post=by_post, name=name, seed=seed, max_seconds=seconds, window=window)
    except (GeogridError, ValueError) as e:
        _fail(e)
    rep = out["report"]
    console.print(f"[bold]redesign[/] → draft plan {out['name']!r} (id {out['id']}): {len(out['replaced'])} grids "
                  f"redrawn as {out['proposed']}, {out['grids']} grids in all")
    t = Table("workload CV", "max deviation", "goal met", "contiguous", "mean Polsby–Popper", "seconds")
    t.add_row(f"{rep.get('workload_cv', float('nan')):.3f}", _pct(rep.get("max_abs_dev")),
              "yes" if rep.get("within_goal") else "no", _pct(rep.get("contiguous_share")),
              f"{rep.get('mean_polsby_popper', float('nan')):.2f}", f"{rep.get('seconds', float('nan')):.1f}")
    console.print(t)
    if rep.get("summary"):
        console.print(rep["summary"])
    console.print(f"next: `geogrid analyze tiers --plan {out['id']}` or the map's planner view (validate, preview "
                  f"against the active plan, edit, activate)")


# --- maps ----------------------------------------------------------------------------------------------
def _planning_run(conn, kind: str, run: int | None, plan: str | None) -> dict:
    from sqlalchemy import text

    if run is not None:
        row = conn.execute(text("SELECT id, plan_id FROM analysis_runs WHERE id = :r AND kind = :k"),
                           {"r": run, "k": kind}).mappings().first()
        if row is None:
            raise NotFound(f"no {kind} run {run}")
        return dict(row)
    pid = _plan_id(conn, plan)
    row = conn.execute(text(
        "SELECT id, plan_id FROM analysis_runs WHERE kind = :k AND finished_at IS NOT NULL "
        "AND (CAST(:p AS integer) IS NULL OR plan_id = :p) ORDER BY id DESC LIMIT 1"), {"k": kind, "p": pid}
    ).mappings().first()
    if row is None:
        raise NotFound(f"no finished {kind} run{'' if pid is None else f' of plan {plan}'}; "
                       f"run `geogrid analyze {kind}` first")
    return dict(row)


def _map_planning(kind: str, table: str, out: Path, run: int | None, plan: str | None, draw,
                  label: str | None = None) -> None:
    from geogrid.store import results
    from geogrid.store.grids import read_grids

    try:
        with _engine().connect() as conn:
            row = _planning_run(conn, kind, run, plan)
            frame = results.read_results(conn, table, row["id"])
            grids = read_grids(conn, row["plan_id"])
            extra = {"conn": conn, "run": row["id"]}
            out.parent.mkdir(parents=True, exist_ok=True)
            draw(frame, grids, out, **extra)
    except (GeogridError, ValueError) as e:
        _fail(e)
    console.print(f"{label or kind} map of {kind} run {row['id']}: {out}")


def _named(frame, grids):
    """Result rows with the grid names of their plan (tooltips show code and name)."""
    return frame.merge(grids[["code", "name"]], on="code", how="left")


def _draw_tiers(frame, grids, out, **_):
    import maps.layers as layers

    layers.tiers_map(_named(frame, grids).rename(columns={"drivers": "drivers_en"}), out)


def _draw_allocation(frame, grids, out, **_):
    import maps.layers as layers

    layers.allocation_map(_named(frame, grids), out)


def _draw_beats(frame, grids, out, **_):
    import maps.layers as layers

    layers.beats_map(frame.sort_values("beat").rename(columns={"per_officer": "workload_per_officer"}), out,
                     grids=grids)


def _draw_coverage(frame, grids, out, conn, run, **_):
    import geopandas as gpd
    from sqlalchemy import text

    import maps.layers as layers
    from geogrid.planning_runs import read_posts
    from geogrid.store import results

    limit = conn.execute(text("SELECT max((key)::float) FROM analysis_runs, "
                              "jsonb_object_keys(summary->'shares') AS key WHERE id = :r"), {"r": run}).scalar()
    if limit is None:
        raise InputError(f"coverage run {run} has no shares in its summary")
    beyond = frame[frame["minutes"] > limit]
    uncovered = (gpd.GeoDataFrame(geometry=[beyond.union_all()], crs=4326) if len(beyond) else None)
    posts = read_posts(conn)
    # the latest siting run of the same plan: its proposed new sites (MCLP first, else another model)
    siting = conn.execute(text(
        "SELECT s.id FROM analysis_runs s, analysis_runs c WHERE c.id = :r AND s.kind = 'siting' "
        "AND s.plan_id = c.plan_id AND s.finished_at IS NOT NULL ORDER BY s.id DESC LIMIT 1"), {"r": run}).scalar()
    sites = None
    if siting is not None:
        prop = results.read_results(conn, "siting_proposals", siting)
        prop = prop[~prop["existing"].astype(bool)]
        if len(prop):
            model = "mclp" if (prop["model"] == "mclp").any() else prop["model"].iloc[0]
            sites = prop[prop["model"] == model].sort_values("rank")
    layers.coverage_map(frame, out, posts=posts if len(posts) else None, uncovered=uncovered, grids=grids,
                        sites=sites)


OutOpt = typer.Option("-o", "--out", help="HTML file to write")


@map_app.command("tiers")
def map_tiers(out: Annotated[Path, OutOpt] = Path("maps/tiers.html"), run: RunOpt = None,
              plan: PlanOpt = None) -> None:
    """Grid tiers with each grid's drivers (zh-CN / en)."""
    _map_planning("tiers", "grid_tiers", out, run, plan, _draw_tiers)


@map_app.command("allocation")
def map_allocation(out: Annotated[Path, OutOpt] = Path("maps/allocation.html"), run: RunOpt = None,
                   plan: PlanOpt = None) -> None:
    """Officers and auxiliaries allocated per grid, with the reason."""
    _map_planning("staffing", "grid_staffing", out, run, plan, _draw_allocation, "allocation")


@map_app.command("beats")
def map_beats(out: Annotated[Path, OutOpt] = Path("maps/beats.html"), run: RunOpt = None,
              plan: PlanOpt = None) -> None:
    """Beats with their deviation from the mean workload per officer."""
    _map_planning("beats", "beats", out, run, plan, _draw_beats)


@map_app.command("coverage")
def map_coverage(out: Annotated[Path, OutOpt] = Path("maps/coverage.html"), run: RunOpt = None,
                 plan: PlanOpt = None) -> None:
    """Response time from the nearest post (≤5, 5–15, >15 minutes), posts, the uncovered area and the
    new posts the latest siting run of the plan proposes."""
    _map_planning("coverage", "coverage_cells", out, run, plan, _draw_coverage)
