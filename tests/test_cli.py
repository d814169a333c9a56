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
