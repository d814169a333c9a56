"""Planning runs against a real PostGIS: tiers, staffing, beats and coverage of any plan, stored per run."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geogrid.errors import Conflict, InputError, NotFound
from geogrid.planning_runs import plan_analysis, run_planning
from geogrid.store import results
from geogrid.store.grids import read_grids

SECONDS = 1.0  # beats budget: these tests check stored rows and bookkeeping, not the beats' quality
OFFICERS, AUXILIARIES = 20, 30  # the generated staff table's headcount


@pytest.fixture
def city(conn, tmp_path):
    """A 60-grid city (4 posts, 20 officers, 30 auxiliaries, 3,000 incidents) loaded into the rolled-back
    transaction, with a hot spot run; returns the generated City."""
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city
    from geogrid.runs import Window, run_hotspots

    city = generate_city(seed=5, n_incidents=3_000, days=120, n_grids=60, n_posts=4, n_officers=OFFICERS,
                         n_auxiliaries=AUXILIARIES)
    load_city_files(conn, write_city(tmp_path / "city", city=city))
    run_hotspots(conn, Window(), res=9, k=1)
    return city


@pytest.fixture
def draft(conn, city, tmp_path):
    """A draft plan of the same area: grids merged two by two in code order (30 grids, new codes)."""
    from geogrid.ingest.fields import FieldMap
    from geogrid.ingest.grids import load_grids

    g = read_grids(conn).sort_values("code").reset_index(drop=True)
    pair = np.arange(len(g)) // 2
    merged = gpd.GeoDataFrame({
        "code": [f"D{k:02d}" for k in range(pair.max() + 1)],
        "name": [f"草案网格{k}" for k in range(pair.max() + 1)],
        "kind": g.groupby(pair)["kind"].first().to_numpy(),
        "population": g.groupby(pair)["population"].sum().to_numpy(),
        "post_code": g.groupby(pair)["post_code"].first().to_numpy(),
    }, geometry=[shapely.union_all(g.geometry[pair == k].to_numpy()) for k in range(pair.max() + 1)], crs=4326)
    path = tmp_path / "draft.gpkg"
    merged.to_file(path, driver="GPKG")
    load_grids(conn, path, FieldMap(code="code", name="name", kind="kind", population="population",
                                    post="post_code"), plan="draft-merged", activate=False)
    plan_id = conn.execute(text("SELECT id FROM plans WHERE name = 'draft-merged'")).scalar()
    members = {f"D{k:02d}": g.loc[pair == k, "code"].tolist() for k in range(pair.max() + 1)}
    return plan_id, members


def _count(conn, table, run):
    return conn.execute(text(f"SELECT count(*) FROM {table} WHERE run_id = :r"), {"r": run}).scalar()


def test_run_planning_stores_every_kind_with_grid_ids_and_summaries(conn, city):
    runs = run_planning(conn, beats_seconds=SECONDS)
    assert set(runs) == {"tiers", "staffing", "beats", "coverage"}
    grids = read_grids(conn)
    plan_id = int(grids["plan_id"].iloc[0])
    kinds = dict(conn.execute(text("SELECT kind, plan_id FROM analysis_runs WHERE id = ANY(:r)"),
                              {"r": list(runs.values())}).all())
    assert kinds == {k: plan_id for k in runs}
    for table, kind in (("grid_tiers", "tiers"), ("grid_staffing", "staffing"), ("coverage_grids", "coverage")):
        stored = results.read_results(conn, table, runs[kind])
        ids = conn.execute(text(f"SELECT code, grid_id FROM {table} WHERE run_id = :r"), {"r": runs[kind]}).all()
        assert dict(ids) == dict(zip(grids["code"], grids["id"])), table
        assert len(stored) == len(grids) and stored.geometry.notna().all()

    tiers = results.read_results(conn, "grid_tiers", runs["tiers"])
    assert set(tiers["tier"]) <= {1, 2, 3, 4} and (tiers["drivers_zh"].str.len() > 0).all()

    staffing = results.read_results(conn, "grid_staffing", runs["staffing"])
    assert staffing["officers"].sum() == OFFICERS and staffing["auxiliaries"].sum() == AUXILIARIES
    s = _summary(conn, runs["staffing"])
    off = s["citywide"]["officers"]
    assert off["available"] == OFFICERS
    assert s["shortfall"]["officers"] == max(0, off["required"] - OFFICERS)
    assert off["required"] == staffing["officers_required"].sum()
    # every urban grid's minimum is met when staff suffice; where they do not, the summary counts the gap
    urban = staffing["kind"] == "urban"
    assert s["urban_grids_without_own_officer"] == int((urban & (staffing["officers"] == 0)).sum())

    beats = results.read_results(conn, "beats", runs["beats"])
    assert beats["officers"].sum() == OFFICERS
    codes = [c for cs in beats["grid_codes"] for c in cs]
    assert sorted(codes) == sorted(grids["code"])  # every grid in exactly one beat
    n_parts = conn.execute(text("SELECT max(ST_NumGeometries(ST_Multi(geom))) FROM beats WHERE run_id = :r"),
                           {"r": runs["beats"]}).scalar()
    assert n_parts == 1  # contiguous by the stored geometry, not the algorithm's bookkeeping
    b = _summary(conn, runs["beats"])
    assert b["n_beats"] == len(beats) and b["max_abs_dev"] == pytest.approx(beats["deviation"].abs().max(), abs=1e-3)
    post_of = dict(zip(grids["code"], grids["post_code"]))
    assert all(len({post_of[c] for c in cs}) == 1 for cs in beats["grid_codes"])  # post areas not crossed

    c = _summary(conn, runs["coverage"])
    assert _count(conn, "coverage_cells", runs["coverage"]) == c["cells"]
    assert set(c["shares"]) == {"5", "15"} and 0 <= c["shares"]["5"]["incidents"] <= c["shares"]["15"]["incidents"]
    assert "capacitated" in c  # generated staff belong to posts: each post's capacity is its staff hours


def _summary(conn, run) -> dict:
    return conn.execute(text("SELECT summary FROM analysis_runs WHERE id = :r"), {"r": run}).scalar()


def test_coverage_shares_equal_a_brute_force_count(conn, city):
    from geogrid.cells import points_to_cells
    from geogrid.store.read import read_incidents

    runs = run_planning(conn, kinds=("coverage",))
    cells = results.read_results(conn, "coverage_cells", runs["coverage"]).set_index("cell")
    inc = read_incidents(conn)
    cell = pd.Series(points_to_cells(inc["lon"].to_numpy(), inc["lat"].to_numpy(), 9))
    minutes = cell.map(cells["minutes"]).dropna()  # incidents in the study area's cells
    s = _summary(conn, runs["coverage"])["shares"]
    for t in (5, 15):
        assert s[f"{t}"]["incidents"] == pytest.approx((minutes <= t).mean(), abs=1e-4)
    # each cell's time is the straight-line time to its nearest post (the stored post is that post)
    posts = conn.execute(text("SELECT code FROM posts")).scalars().all()
    assert set(cells["nearest_post"]) <= set(posts)


def test_headcount_from_staff_table_or_flags(conn, city):
    a = plan_analysis(conn, kinds=("staffing",))
    assert a.headcount["officers"] == OFFICERS and a.headcount["officers_source"] == "staff table"
    assert a.beats is None and a.tiers is None and "beats" not in a.summary
    b = plan_analysis(conn, officers=7, auxiliaries=9, kinds=("staffing", "beats"), beats_seconds=SECONDS)
    assert b.headcount == {"officers": 7, "auxiliaries": 9, "officers_source": "given", "auxiliaries_source": "given"}
    assert b.staffing["officers"].sum() == 7 and b.staffing["auxiliaries"].sum() == 9
    assert b.beats["officers"].sum() == 7 and b.summary["beats"]["officers"] == 7
    assert b.summary["staffing"]["shortfall"]["officers"] == max(0, b.summary["staffing"]["citywide"]["officers"]
                                                                 ["required"] - 7)


def test_draft_plan_uses_its_own_grids_and_writes_nothing(conn, city, draft):
    draft_id, members = draft
    active = plan_analysis(conn, kinds=("tiers",))
    before = conn.execute(text("SELECT (SELECT count(*) FROM analysis_runs), "
                               "(SELECT sum(version) FROM layer_versions)")).one()
    a = plan_analysis(conn, draft_id, kinds=("tiers", "staffing", "beats", "coverage"), beats_seconds=SECONDS)
    assert conn.execute(text("SELECT (SELECT count(*) FROM analysis_runs), "
                             "(SELECT sum(version) FROM layer_versions)")).one() == before
    assert a.plan["status"] == "draft" and len(a.tiers) == len(members)
    # incidents located in the draft's grids: a merged grid holds the incidents of the two it merges
    f_active, f_draft = active.features["incidents"], a.features["incidents"]
    for code, old in members.items():
        assert f_draft[code] == f_active[old].sum(), code
    assert set(a.coverage_grids["code"]) == set(members)
    runs = run_planning(conn, draft_id, kinds=("tiers", "beats"), beats_seconds=SECONDS)
    plan_ids = set(conn.execute(text("SELECT plan_id FROM analysis_runs WHERE id = ANY(:r)"),
                                {"r": list(runs.values())}).scalars())
    assert plan_ids == {draft_id}
    assert set(results.read_results(conn, "grid_tiers", runs["tiers"])["code"]) == set(members)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"kinds": ("tiers", "hotspots")}, InputError, "kinds"),
    ({"plan_id": 10**6}, NotFound, "no plan"),
    ({"officers": -1}, InputError, "officers"),
    ({"plan_id": "x"}, InputError, "plan_id"),
], ids=["unknown-kind", "no-plan", "negative-officers", "plan-not-int"])
def test_bad_input_is_named(conn, kwargs, error, match):
    with pytest.raises(error, match=match):
        plan_analysis(conn, **kwargs)


def test_plan_without_grids_is_not_found(conn):
    conn.execute(text("INSERT INTO plans (name, status) VALUES ('empty-draft', 'draft')"))
    pid = conn.execute(text("SELECT id FROM plans WHERE name = 'empty-draft'")).scalar()
    with pytest.raises(NotFound, match="no grids"):
        plan_analysis(conn, pid)


def test_redesign_proposal_is_saved_as_a_draft_plan_and_analysable(conn, city):
    from geogrid.planning_runs import save_redesign
    from geogrid.redesign import GridRedesign, cells_with_workload

    active = read_grids(conn)
    area = active[active["post_code"] == active["post_code"].mode().iloc[0]]
    pts = gpd.GeoDataFrame(geometry=city.incidents.geometry, crs=city.incidents.crs)
    cells = cells_with_workload(area, pts, res=9)
    proposal = GridRedesign(k=8, tolerance=0.15, max_seconds=2).fit(cells)
    plan = save_redesign(conn, proposal.grids_, "redesign-test", parent_plan_id=int(active["plan_id"].iloc[0]))
    stored = read_grids(conn, plan["id"])
    assert plan["status"] == "draft" and len(stored) == 8
    assert set(stored["post_code"]) <= set(area["post_code"])
    # population is shared by area from the parent grids it overlaps: about the area's own (cells trim edges)
    assert stored["population"].sum() == pytest.approx(area["population"].sum(), rel=0.2)
    assert stored["attrs"].map(lambda a: a["source"]).eq("redesign").all()
    a = plan_analysis(conn, plan["id"], kinds=("tiers",))
    assert len(a.tiers) == 8
    with pytest.raises(Conflict, match="exists"):
        save_redesign(conn, proposal.grids_, "redesign-test")


def test_redesign_of_an_area_keeps_the_other_grids_and_tiles_the_same_jurisdiction(conn, city):
    from geogrid.editing import validate_plan
    from geogrid.redesign_runs import propose_redesign

    active = read_grids(conn)
    post = active["post_code"].mode().iloc[0]
    codes = active.loc[active["post_code"] == post, "code"].tolist()
    out = propose_redesign(conn, 4, codes=codes, tolerance=0.15, max_seconds=2, name="redesign-area")
    draft = read_grids(conn, out["id"])
    assert out["replaced"] == codes and out["proposed"] == 4 and len(draft) == len(active) - len(codes) + 4
    kept = draft[~draft["code"].str.startswith("R")].set_index("code")
    before = active.set_index("code").loc[kept.index]
    assert set(kept.index) == set(active["code"]) - set(codes)
    assert all(a.equals(b) for a, b in zip(kept.geometry, before.geometry))  # untouched, vertex for vertex
    new = draft[draft["code"].str.startswith("R")]
    area = shapely.union_all(active.loc[active["code"].isin(codes)].geometry.to_numpy())
    union = shapely.union_all(new.geometry.to_numpy())
    # the new grids fill the old area exactly: no gap, nothing outside, no overlap among them
    assert shapely.area(shapely.symmetric_difference(union, area)) < 1e-6 * shapely.area(area)
    assert sum(shapely.area(new.geometry.to_numpy())) == pytest.approx(shapely.area(area), rel=1e-6)
    report = validate_plan(conn, out["id"])
    kinds = {p["kind"] for p in report["problems"]}
    assert not kinds & {"overlap", "gap"}, report["problems"][:3]


def test_redesign_refuses_codes_outside_the_active_plan(conn, city):
    from geogrid.redesign_runs import propose_redesign

    with pytest.raises(InputError, match="not grids of the active plan.*NOPE"):
        propose_redesign(conn, 2, codes=["NOPE"], max_seconds=1)


def test_fit_to_area_gives_slivers_to_the_longest_shared_border():
    from geogrid.redesign_runs import fit_to_area

    area = shapely.box(0, 0, 0.02, 0.01)
    # two proposals that leave a strip at the top uncovered and stick out at the bottom
    left, right = shapely.box(0, -0.001, 0.012, 0.009), shapely.box(0.012, -0.001, 0.02, 0.009)
    fitted = fit_to_area(gpd.GeoDataFrame({"g": [0, 1]}, geometry=[left, right], crs=4326), area)
    a, b = fitted.geometry
    assert shapely.area(shapely.symmetric_difference(shapely.union(a, b), area)) < 1e-12
    assert shapely.area(shapely.intersection(a, b)) < 1e-12
    assert shapely.get_num_geometries(a) == 1 and shapely.get_num_geometries(b) == 1
    assert shapely.bounds(a)[3] == pytest.approx(0.01) and shapely.bounds(a)[1] == pytest.approx(0.0)


def test_read_barriers_names_a_file_it_cannot_read(tmp_path):
    from geogrid.redesign_runs import read_barriers

    bad = tmp_path / "rivers.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputError, match="rivers.gpkg: not a readable vector file"):
        read_barriers(bad)
