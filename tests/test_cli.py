"""The `geogrid` command as users run it: a real process against the test database."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "geogrid.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250", **(env or {})}, timeout=300)


@pytest.fixture
def cli_source(engine):
    """A source name private to this test; its rows are removed afterwards (the CLI commits)."""
    src = f"cli-test-{os.getpid()}"
    yield src
    with engine.begin() as c:
        c.execute(text("DELETE FROM incidents WHERE source = :s"), {"s": src})
        c.execute(text("DELETE FROM ingest_runs WHERE source = :s"), {"s": src})


def test_ingest_incidents_prints_summary_and_writes_report(engine, database_url, incidents_df, tmp_path, cli_source):
    df = incidents_df.head(10).astype(object)
    df.loc[2, "lat"] = "north"
    path = tmp_path / "calls.csv"
    df.to_csv(path, index=False)
    args = ["ingest", "incidents", str(path), "--lon", "lon", "--lat", "lat", "--time", "time",
            "--category", "category", "--id", "id", "--source", cli_source]
    out = run(*args, env={"GEOGRID_DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    assert "read 10, loaded 9" in out.stdout and "rejected 1" in out.stdout
    assert "row 3, field lat: not a number" in out.stdout
    assert (tmp_path / "calls.csv.rejected.csv").exists()
    again = run(*args, env={"GEOGRID_DATABASE_URL": database_url})
    assert "new 0, changed 0, unchanged 9" in again.stdout
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM incidents WHERE source = :s"), {"s": cli_source}).scalar() == 9


def test_bad_option_is_a_clear_error_not_a_traceback(database_url, incidents_df, tmp_path):
    path = tmp_path / "calls.csv"
    incidents_df.to_csv(path, index=False)
    out = run("ingest", "incidents", str(path), "--lon", "x", "--lat", "lat", "--time", "time",
              env={"GEOGRID_DATABASE_URL": database_url})
    assert out.returncode == 2 and "no column 'x'" in out.stderr and "Traceback" not in out.stderr
    out = run("ingest", "incidents", str(path), "--lon", "lon", "--lat", "lat", "--time", "time", "--crs", "mars-9",
              env={"GEOGRID_DATABASE_URL": database_url})
    assert out.returncode == 2 and "mars-9" in out.stderr


@pytest.fixture
def committed_city(engine, database_url, tmp_path):
    """A small city loaded through the CLI with the demo profile (committed; removed afterwards)."""
    from geogrid.demo import write_city
    from geogrid.generate import generate_city

    city = generate_city(seed=9, n_incidents=3_000, n_grids=60, n_posts=4, n_officers=20, n_auxiliaries=30)
    files = write_city(tmp_path / "city", city=city)
    env = {"GEOGRID_DATABASE_URL": database_url}
    plan = f"cli-plan-{os.getpid()}"
    out = run("ingest", "grids", str(files["grids"]), "--profile", "data/profiles/demo.toml", "--plan", plan,
              "--activate", env=env)
    assert out.returncode == 0, out.stderr
    yield files, env, plan
    with engine.begin() as c:
        c.execute(text("DELETE FROM incidents WHERE source = 'demo-110'"))
        c.execute(text("DELETE FROM analysis_runs WHERE plan_id IN (SELECT id FROM plans WHERE name = :p)"), {"p": plan})
        c.execute(text("DELETE FROM plans WHERE name = :p"), {"p": plan})
        c.execute(text("DELETE FROM ingest_runs WHERE source IN ('demo-110', :p)"), {"p": plan})


def test_profile_ingest_analyze_and_offline_map(committed_city, tmp_path):
    files, env, plan = committed_city
    out = run("ingest", "incidents", str(files["incidents"]), "--profile", "data/profiles/demo.toml", env=env)
    assert out.returncode == 0, out.stderr
    assert "read 3,000, loaded 3,000" in out.stdout
    out = run("status", env=env)
    assert plan in out.stdout
    out = run("analyze", "hotspots", "--res", "9", "--k", "1", env=env)
    assert out.returncode == 0, out.stderr
    assert '"cells"' in out.stdout
    html = tmp_path / "hot.html"
    out = run("map", "hotspots", "-o", str(html), env=env)
    assert out.returncode == 0, out.stderr
    from maps.offline import find_external_refs

    page = html.read_text(encoding="utf-8")
    assert "热点" in page and find_external_refs(page) == []
