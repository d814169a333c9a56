"""Shared fixtures: a real PostGIS database, migrated once per session; a rolled-back transaction per test."""
from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CHICAGO = SHARED / "data" / "real" / "chicago"
_skipped_db: list[str] = []


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("GEOGRID_DATABASE_URL")
    if not url:
        pytest.skip("GEOGRID_DATABASE_URL is not set (make test provisions it)")
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    from geogrid.store import make_engine
    from geogrid.store.migrate import init_db

    init_db(database_url)
    eng = make_engine(database_url)
    # the test database outlives a run, and a cluster may run without autovacuum (this CI machine's
    # does): reclaim earlier runs' dead rows, or ANALYZE extrapolates row estimates (which the bulk-load
    # rule reads) from a sample of a mostly empty, bloated table
    from sqlalchemy import text

    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def remove_demo_city(engine):
    """A function deleting what ``geogrid.demo.load_city_files`` committed for a generated ``city``: its plan
    and runs, incidents, posts, staff, roads and ingest records (for fixtures that commit a small city)."""
    from sqlalchemy import text

    def remove(city) -> None:
        with engine.begin() as c:
            plan_ids = c.execute(text("SELECT id FROM plans WHERE name = 'demo-2025'")).scalars().all()
            c.execute(text("DELETE FROM analysis_runs WHERE plan_id = ANY(:p)"), {"p": plan_ids})
            c.execute(text("DELETE FROM plans WHERE id = ANY(:p)"), {"p": plan_ids})
            c.execute(text("DELETE FROM incidents WHERE source = 'demo-110'"))
            c.execute(text("DELETE FROM posts WHERE code = ANY(:c)"), {"c": city.posts["code"].tolist()})
            c.execute(text("DELETE FROM staff WHERE code = ANY(:c)"), {"c": city.staff["code"].tolist()})
            c.execute(text("DELETE FROM roads WHERE source = 'demo-roads'"))
            c.execute(text("DELETE FROM ingest_runs WHERE source IN ('demo-110', 'demo-2025', 'demo', 'demo-roads')"))
    return remove


@pytest.fixture
def conn(engine):
    """A connection inside a transaction that is rolled back after the test (loads use savepoints)."""
    with engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if {"engine", "conn", "database_url", "api_database_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_runtest_logreport(report):
    if report.skipped and "db" in report.keywords:
        _skipped_db.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("GEOGRID_REQUIRE_DB") == "1" and _skipped_db:
        print(f"\n{len(_skipped_db)} database tests were skipped; CI requires all of them to run:")
        for n in _skipped_db[:20]:
            print("  ", n)
        session.exitstatus = 1


# A 3x2 block of square grids, 0.01° (~1 km) each, near Hefei.
X0, Y0, D = 117.20, 31.80, 0.01


@pytest.fixture
def grid_frame() -> gpd.GeoDataFrame:
    """Six square grids in two rows: codes G1..G6; G1-G3 urban (G2 a key area), G4-G6 rural."""
    cells = [(i, j) for j in range(2) for i in range(3)]
    return gpd.GeoDataFrame({
        "code": [f"G{k + 1}" for k in range(6)],
        "name": [f"测试社区第{k + 1}网格" for k in range(6)],
        "kind": ["urban"] * 3 + ["rural"] * 3,
        "population": [3000, 5000, 2000, 800, 600, 400],
        "key_areas": ["", "老旧小区,商业街区", "", "", "城中村", ""],
        "post": ["P1", "P1", "P1", "P2", "P2", "P2"],
    }, geometry=[shapely.box(X0 + i * D, Y0 + j * D, X0 + (i + 1) * D, Y0 + (j + 1) * D) for i, j in cells], crs=4326)


def incident_frame(n: int = 200, seed: int = 1) -> pd.DataFrame:
    """n valid incidents inside the six grids, with ids, times in 2025 and Chinese categories."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"E{k:05d}" for k in range(n)],
        "lon": np.round(X0 + rng.uniform(0.0005, 3 * D - 0.0005, n), 6),
        "lat": np.round(Y0 + rng.uniform(0.0005, 2 * D - 0.0005, n), 6),
        "time": pd.Timestamp("2025-03-01") + pd.to_timedelta(rng.integers(0, 200 * 24 * 60, n), unit="min"),
        "category": rng.choice(["邻里纠纷", "盗窃", "电信诈骗", "theft"], n),
    }).assign(time=lambda d: d["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))


@pytest.fixture
def incidents_df() -> pd.DataFrame:
    return incident_frame()
