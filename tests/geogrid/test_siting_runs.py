"""Coverage over a stored road network and stored siting proposals (real PostGIS), and
`geogrid analyze siting` / `geogrid map coverage` as users run them."""
from __future__ import annotations

import os
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod
from shapely.geometry import LineString
from sqlalchemy import text

from geogrid.errors import InputError, NotFound
from geogrid.planning_runs import SitingOptions, plan_analysis, run_planning
from geogrid.store import results
X0, Y0 = 117.20, 31.80  # the conftest grid_frame's corner (tests cannot import conftest)

GEOD = Geod(ellps="WGS84")
ROAD_KMH = 40.0


def _summary(conn, run) -> dict:
    return conn.execute(text("SELECT summary FROM analysis_runs WHERE id = :r"), {"r": run}).scalar()


def _params(conn, run) -> dict:
    return conn.execute(text("SELECT params FROM analysis_runs WHERE id = :r"), {"r": run}).scalar()


# --- a six-grid town split by a river: the only bridge is 5 km north ---------------------------------
@pytest.fixture
def river_town(conn, tmp_path, grid_frame, incidents_df):
    """The conftest's six grids (3 × 2 km), one post in the west, 200 incidents; returns the roads frame
    (not loaded). West and east road networks meet only at a bridge at Y0 + 0.05 (≈ 5.5 km north)."""
    from geogrid.ingest.fields import FieldMap
    from geogrid.ingest.grids import load_grids
    from geogrid.ingest.incidents import load_incidents
    from geogrid.ingest.posts import load_posts

    gpath = tmp_path / "grids.gpkg"
    grid_frame.to_file(gpath, driver="GPKG")
    load_grids(conn, gpath, FieldMap(code="code", name="name", kind="kind", population="population",
                                     key_areas="key_areas", post="post"), plan="river-town", activate=True)
    ppath = tmp_path / "posts.csv"
    pd.DataFrame({"code": ["RP1"], "name": ["西岸警务室"], "lon": [X0 + 0.005], "lat": [Y0 + 0.005]}).to_csv(ppath, index=False)
    load_posts(conn, ppath, FieldMap(code="code", name="name", lon="lon", lat="lat"))
    ipath = tmp_path / "incidents.csv"
    incidents_df.to_csv(ipath, index=False)
    load_incidents(conn, ipath, FieldMap(id="id", lon="lon", lat="lat", time="time", category="category"),
                   source="river-town")
    w, e, b = X0 + 0.005, X0 + 0.025, Y0 + 0.05
    lines = [LineString([(w, Y0), (w, b)]), LineString([(X0, Y0 + 0.005), (X0 + 0.014, Y0 + 0.005)]),
             LineString([(X0, Y0 + 0.015), (X0 + 0.014, Y0 + 0.015)]),
             LineString([(e, Y0), (e, b)]), LineString([(X0 + 0.016, Y0 + 0.005), (X0 + 0.03, Y0 + 0.005)]),
             LineString([(X0 + 0.016, Y0 + 0.015), (X0 + 0.03, Y0 + 0.015)]), LineString([(w, b), (e, b)])]
    return gpd.GeoDataFrame({"kind": ["arterial"] * len(lines), "speed_kmh": [ROAD_KMH] * len(lines)},
                            geometry=lines, crs=4326)


def _load_roads(conn, roads, tmp_path, source="river-roads"):
    from geogrid.ingest.roads import load_roads

    path = tmp_path / f"{source}.gpkg"
    roads.to_file(path, driver="GPKG")
    return load_roads(conn, path, source=source, speed="speed_kmh", kind="kind")


def test_auto_is_straight_line_without_roads_and_network_with_them(conn, river_town, tmp_path):
    before = run_planning(conn, kinds=("coverage",))["coverage"]
    assert _params(conn, before)["travel"] == "auto"
    tr = _summary(conn, before)["travel"]
    assert tr["model"] == "straight" and tr["reason"] == "no stored roads touch the plan's grids"
    with pytest.raises(NotFound, match="ingest roads"):
        plan_analysis(conn, kinds=("coverage",), travel="network")
    _load_roads(conn, river_town, tmp_path)
    after = run_planning(conn, kinds=("coverage",))["coverage"]
    tr = _summary(conn, after)["travel"]
    assert tr["model"] == "network" and tr["roads"] == len(river_town) and tr["grids_touched_share"] == 1.0
    forced = run_planning(conn, kinds=("coverage",), travel="straight")["coverage"]
    assert _summary(conn, forced)["travel"]["model"] == "straight"
    assert _params(conn, forced)["travel"] == "straight"
    with pytest.raises(InputError, match="travel must be one of"):
        plan_analysis(conn, kinds=("coverage",), travel="flying")


def test_network_times_respect_road_speed_and_the_river(conn, river_town, tmp_path):
    from geogrid.cells import cell_centroids

    straight = run_planning(conn, kinds=("coverage",), travel="straight")["coverage"]
    _load_roads(conn, river_town, tmp_path)
    network = run_planning(conn, kinds=("coverage",), travel="network")["coverage"]
    s = results.read_results(conn, "coverage_cells", straight).set_index("cell")["minutes"]
    n = results.read_results(conn, "coverage_cells", network).set_index("cell")["minutes"]
    lon, lat = cell_centroids(n.index)
    metres = GEOD.inv(np.full(len(n), X0 + 0.005), np.full(len(n), Y0 + 0.005), lon, lat)[2]
    # no route is quicker than the straight distance at the fastest speed on it (road 40, access 15 km/h)
    assert (n.to_numpy() >= metres / (ROAD_KMH * 1000 / 60) - 1e-6).all()
    # east of the river every cell is reached over the northern bridge: beyond 5 (and 15) minutes,
    # although many of them lie within 5 minutes in a straight line
    east = lon > X0 + 0.02
    assert east.sum() > 10 and (n[east] > 15).all()
    assert (s.reindex(n.index)[east] <= 5).any()
    summ = _summary(conn, network)
    assert summ["shares"]["5"]["area"] < _summary(conn, straight)["shares"]["5"]["area"]
    un = conn.execute(text("SELECT summary->'uncovered'->'5'->>'area_km2' FROM analysis_runs WHERE id = :r"),
                      {"r": network}).scalar()
    assert float(un) >= east.sum() * 0.1  # every east cell (≈ 0.1 km² at res 9) is in the uncovered area
    grids = results.read_results(conn, "coverage_grids", network).set_index("code")
    assert grids.loc["G3", "shares"]["area_5"] == 0.0 and grids.loc["G3", "mean_minutes"] > 15


# --- siting on a generated city with its generated road network ---------------------------------------
@pytest.fixture
def city(conn, tmp_path):
    """A 60-grid city with 4 posts, its staff and incidents, and its generated road network."""
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city

    city = generate_city(seed=5, n_incidents=3_000, days=120, n_grids=60, n_posts=4, n_officers=20,
                         n_auxiliaries=30)
    load_city_files(conn, write_city(tmp_path / "city", city=city), roads=True)
    return city


def _direct_inputs(conn, minutes_list):
    """Demand, sites and coverage matrices rebuilt from the store independently of planning_runs."""
    from geogrid.cells import cell_centroids, points_to_cells
    from geogrid.planning_runs import read_posts
    from geogrid.roads import read_roads, roads_graph
    from geogrid.store.grids import read_grids
    from geogrid.store.read import read_incidents
    from geogrid.travel import NetworkTravel

    grids = read_grids(conn)
    inc = read_incidents(conn)
    inc = inc[inc["grid_id"].notna()]
    w = pd.Series(points_to_cells(inc["lon"].to_numpy(), inc["lat"].to_numpy(), 9)).value_counts().sort_index()
    lon, lat = cell_centroids(w.index)
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    posts = read_posts(conn)
    labels = [*posts["code"], *grids["code"]]
    sites = gpd.GeoSeries([*posts.geometry, *grids.geometry.representative_point()], crs=4326)
    roads = read_roads(conn, int(grids["plan_id"].iloc[0]))
    travel = NetworkTravel(roads_graph(roads.to_crs(grids.estimate_utm_crs())))
    return w.to_numpy(float), np.array(labels, dtype=object), len(posts), \
        [travel.within(sites, pts, m) for m in minutes_list]


def test_stored_siting_equals_the_direct_models(conn, city):
    from geogrid.siting import lscp, mclp

    run = run_planning(conn, kinds=("siting",), siting=SitingOptions(k=4, minutes=5, lscp_minutes=15,
                                                                     capacitated=True))["siting"]
    stored = results.read_results(conn, "siting_proposals", run)
    s = _summary(conn, run)
    assert s["travel"]["model"] == "network" and _params(conn, run)["siting"]["k"] == 4
    w, labels, n_posts, (a5, a15) = _direct_inputs(conn, (5, 15))
    assert s["incidents"] == int(w.sum()) and s["demand_cells"] == len(w)

    direct = mclp(w, a5, 4, existing=np.arange(n_posts))
    m = stored[stored["model"] == "mclp"].sort_values(["rank", "site"])
    new = m[~m["existing"]]
    assert new["site"].tolist() == labels[direct.selected].tolist()
    assert new["rank"].tolist() == [1, 2, 3, 4]
    assert new["gain"].to_numpy() == pytest.approx(direct.gains)
    assert new["covered_share"].iloc[-1] == pytest.approx(direct.share)
    assert sorted(m.loc[m["existing"], "site"]) == sorted(labels[:n_posts]) and (m.loc[m["existing"], "rank"] == 0).all()
    # each gain is what the site adds to the posts and the sites before it (recounted from the matrix)
    covered = np.asarray(a5[:, :n_posts].sum(axis=1)).ravel() > 0
    col = {lab: j for j, lab in enumerate(labels)}
    for site, gain in zip(new["site"], new["gain"]):
        reach = a5[:, col[site]].toarray().ravel()
        assert gain == pytest.approx(w[reach & ~covered].sum())
        covered |= reach

    direct = lscp(a15, demand_weights=w)
    ls = stored[stored["model"] == "lscp"].sort_values("rank")
    assert ls["site"].tolist() == labels[direct.selected].tolist() and len(ls) == s["models"]["lscp"]["new_sites"]
    assert (ls["existing"] == (ls["site"].isin(labels[:n_posts]))).all()

    cap = stored[stored["model"] == "capacitated_mclp"]
    assert (~cap["existing"]).sum() == 4 and cap["workload"].notna().all()
    assert s["models"]["capacitated_mclp"]["covered_share_after"] <= s["models"]["mclp"]["covered_share_after"] + 1e-9


def test_siting_with_given_candidates_and_bad_input(conn, city, tmp_path):
    from geogrid.planning_runs import read_candidates
    from geogrid.store.grids import read_grids

    rep = read_grids(conn).geometry.representative_point()
    path = tmp_path / "cand.csv"
    pd.DataFrame({"name": [f"候选{i}" for i in range(6)], "经度": rep.x[:6].round(6), "纬度": rep.y[:6].round(6)}
                 ).to_csv(path, index=False)
    cand = read_candidates(path)
    assert cand["code"].tolist() == [f"候选{i}" for i in range(6)]
    a = plan_analysis(conn, kinds=("siting",), travel="straight",
                      siting=SitingOptions(k=2, lscp_minutes=None, candidates=cand))
    assert set(a.siting["model"]) == {"mclp"} and set(a.siting.loc[~a.siting["existing"], "site"]) <= set(cand["code"])
    assert a.summary["siting"]["travel"]["model"] == "straight"
    with pytest.raises(InputError, match="k must be a whole number from 0 to 6"):
        plan_analysis(conn, kinds=("siting",), siting=SitingOptions(k=7, candidates=cand))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,lon,lat\nA,117.2,31.8\nB,east,31.8\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"rows \[2\]"):
        read_candidates(bad)


# --- the CLI, committed to the test database ---------------------------------------------------------
def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "geogrid.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **env}, timeout=600)


@pytest.fixture(scope="module")
def committed_city(engine, database_url, tmp_path_factory, remove_demo_city):
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city

    with engine.connect() as c:
        if c.execute(text("SELECT count(*) FROM plans WHERE status = 'active'")).scalar():
            pytest.skip("the test database has an active plan committed by another run")
    city = generate_city(seed=3, n_incidents=2_000, days=90, n_grids=60, n_posts=4, n_officers=20, n_auxiliaries=30)
    load_city_files(engine, write_city(tmp_path_factory.mktemp("sitingcity"), city=city), roads=True)
    yield {"GEOGRID_DATABASE_URL": database_url}
    remove_demo_city(city)


def test_cli_analyze_siting_and_the_coverage_map(engine, committed_city, tmp_path):
    out = _cli("analyze", "siting", "--k", "3", "--minutes", "5", "--lscp-minutes", "15", "--capacitated",
               env=committed_city)
    assert out.returncode == 0, out.stderr
    assert "MCLP" in out.stdout and "LSCP" in out.stdout and "capacitated" in out.stdout
    assert "road network" in out.stdout
    with engine.connect() as c:
        run, summary = c.execute(text("SELECT id, summary FROM analysis_runs WHERE kind = 'siting' "
                                      "ORDER BY id DESC LIMIT 1")).one()
        rows = results.read_results(c, "siting_proposals", run)
    assert set(rows["model"]) == {"mclp", "lscp", "capacitated_mclp"}
    mclp_new = rows[(rows["model"] == "mclp") & ~rows["existing"]].sort_values("rank")
    assert mclp_new["site"].tolist() == summary["models"]["mclp"]["sites"] and len(mclp_new) == 3
    for site in mclp_new["site"]:
        assert site in out.stdout

    cand = tmp_path / "cand.geojson"
    gpd.GeoDataFrame({"code": ["K1", "K2", "K3"]}, geometry=mclp_new.geometry.to_list(), crs=4326).to_file(cand)
    given = _cli("analyze", "siting", "--k", "2", "--candidates", str(cand), "--lscp-minutes", "0",
                 "--travel", "straight", env=committed_city)
    assert given.returncode == 0, given.stderr
    assert "straight line" in given.stdout and "LSCP" not in given.stdout
    bad = _cli("analyze", "siting", "--k", "9", "--candidates", str(cand), env=committed_city)
    assert bad.returncode == 2 and "k must be a whole number from 0 to 3" in bad.stderr

    cov = _cli("analyze", "coverage", env=committed_city)
    assert cov.returncode == 0 and "travel: road network" in cov.stdout
    with engine.connect() as c:
        params, summ = c.execute(text("SELECT params, summary FROM analysis_runs WHERE kind = 'coverage' "
                                      "ORDER BY id DESC LIMIT 1")).one()
    assert params["travel"] == "auto" and summ["travel"]["model"] == "network"
    html = tmp_path / "coverage.html"
    m = _cli("map", "coverage", "-o", str(html), env=committed_city)
    assert m.returncode == 0, m.stderr
    page = html.read_text(encoding="utf-8")
    assert "拟建警务室" in page and "Proposed post" in page  # the bilingual legend row of proposed sites
