"""`geogrid analyze tiers|staffing|beats|coverage` and `geogrid map …` as users run them: real processes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "geogrid.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def planning_city(engine, database_url, tmp_path_factory, remove_demo_city):
    """A small city committed to the test database (grids, posts, staff, incidents); removed afterwards."""
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city

    city = generate_city(seed=3, n_incidents=2_000, days=90, n_grids=60, n_posts=4, n_officers=20,
                         n_auxiliaries=30)
    files = write_city(tmp_path_factory.mktemp("plancity"), city=city)
    with engine.connect() as c:
        if c.execute(text("SELECT count(*) FROM plans WHERE status = 'active'")).scalar():
            pytest.skip("the test database has an active plan committed by another run")
    load_city_files(engine, files)
    yield city, {"GEOGRID_DATABASE_URL": database_url}
    remove_demo_city(city)


def _latest_summary(engine, kind):
    with engine.connect() as c:
        return c.execute(text("SELECT summary FROM analysis_runs WHERE kind = :k ORDER BY id DESC LIMIT 1"),
                         {"k": kind}).scalar()


@pytest.fixture(scope="module")
def analysed(planning_city):
    """The four analyses run once through the CLI; their completed processes by kind."""
    _, env = planning_city
    return {"tiers": run("analyze", "tiers", env=env),
            "staffing": run("analyze", "staffing", "--officers", "12", "--auxiliaries", "25", env=env),
            "beats": run("analyze", "beats", "--seconds", "1", env=env),  # headcount from the staff table
            "coverage": run("analyze", "coverage", env=env)}


def test_analyze_prints_tables_and_stores_runs(engine, planning_city, analysed):
    city, _ = planning_city
    for kind, out in analysed.items():
        assert out.returncode == 0, (kind, out.stderr)
    assert "grid tiers" in analysed["tiers"].stdout and "一级" in analysed["tiers"].stdout
    assert "shortfall" in analysed["staffing"].stdout and "12 officers (given)" in analysed["staffing"].stdout
    assert _latest_summary(engine, "staffing")["allocated"] == {"officers": 12, "auxiliaries": 25}
    assert "lower bound" in analysed["beats"].stdout and "contiguous beats" in analysed["beats"].stdout
    assert _latest_summary(engine, "beats")["officers"] == (city.staff["role"] == "officer").sum()
    assert "15 min" in analysed["coverage"].stdout
    assert set(_latest_summary(engine, "coverage")["shares"]) == {"5", "15"}


def test_maps_are_offline_with_bilingual_legends(planning_city, analysed, tmp_path):
    from maps.offline import find_external_refs

    _, env = planning_city
    legends = {"tiers": "网格等级", "allocation": "警力配置", "beats": "警区", "coverage": "响应覆盖"}
    for kind, word in legends.items():
        html = tmp_path / f"{kind}.html"
        out = run("map", kind, "-o", str(html), env=env)
        assert out.returncode == 0, out.stderr
        page = html.read_text(encoding="utf-8")
        assert word in page and find_external_refs(page) == [], kind


def test_errors_are_named_not_tracebacks(planning_city):
    _, env = planning_city
    out = run("analyze", "beats", "--plan", "no-such-plan", env=env)
    assert out.returncode == 2 and "no plan 'no-such-plan'" in out.stderr and "Traceback" not in out.stderr
    out = run("analyze", "staffing", "--officers", "-4", env=env)
    assert out.returncode == 2 and "officers" in out.stderr and "Traceback" not in out.stderr
    out = run("map", "beats", "--run", "999999", "-o", "/dev/null", env=env)
    assert out.returncode == 2 and "no beats run 999999" in out.stderr


def test_analyze_redesign_makes_a_draft_plan_and_respects_a_river(engine, planning_city, tmp_path):
    import json

    city, env = planning_city
    grids = city.grids
    post = grids["post_code"].mode().iloc[0]
    codes = grids.loc[grids["post_code"] == post, "code"].tolist()
    # a "river" north–south through the middle of the area, given in GCJ-02 as Chinese map files are
    from geogrid.crs import from_wgs84
    x0, y0, x1, y1 = grids.loc[grids["code"].isin(codes)].total_bounds
    xs, ys = from_wgs84([(x0 + x1) / 2] * 2, [y0 - 0.01, y1 + 0.01], "gcj02")
    river = tmp_path / "river.geojson"
    river.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                     "geometry": {"type": "LineString", "coordinates": [[xs[0], ys[0]], [xs[1], ys[1]]]}}]}))
    out = run("analyze", "redesign", "--k", "4", "--grids", ",".join(codes), "--seconds", "2", "--tolerance", "0.15",
              "--barriers", str(river), "--barriers-crs", "gcj02", "--name", "cli-redesign", env=env)
    try:
        assert out.returncode == 0, out.stderr
        assert "cli-redesign" in out.stdout and f"{len(codes)} grids redrawn as 4" in out.stdout
        with engine.connect() as c:
            plan = c.execute(text("SELECT id, status FROM plans WHERE name = 'cli-redesign'")).one()
            new = c.execute(text("SELECT code, ST_XMin(geom), ST_XMax(geom) FROM grids WHERE plan_id = :p "
                                 "AND code LIKE 'R%'"), {"p": plan.id}).all()
            total = c.execute(text("SELECT count(*) FROM grids WHERE plan_id = :p"), {"p": plan.id}).scalar()
        assert plan.status == "draft" and len(new) == 4 and total == len(grids) - len(codes) + 4
        # no new grid reaches across the river by more than an H3 cell's width (~0.005° at res 9)
        mid = (x0 + x1) / 2
        assert all(xmax <= mid + 0.005 or xmin >= mid - 0.005 for _, xmin, xmax in new)
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM plans WHERE name = 'cli-redesign'"))


def test_analyze_redesign_names_unknown_codes(planning_city):
    _, env = planning_city
    out = run("analyze", "redesign", "--k", "2", "--grids", "NOPE-1", env=env)
    assert out.returncode != 0 and "NOPE-1" in (out.stderr + out.stdout)
