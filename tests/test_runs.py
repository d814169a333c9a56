"""Analyses against the store: results are stored in PostGIS, equal the pure computation, and repeat."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from geogrid.runs import Window, run_clusters, run_emerging, run_hotspots, run_patterns


@pytest.fixture(scope="session")
def small_city():
    """A 120-grid city with 8,000 incidents: big enough for every analysis, small enough to load per test."""
    from geogrid.generate import generate_city

    return generate_city(seed=5, n_incidents=8_000, n_grids=120, n_posts=8, n_officers=50, n_auxiliaries=90)


@pytest.fixture
def city_conn(conn, small_city, tmp_path):
    from geogrid.demo import load_city_files, write_city

    files = write_city(tmp_path / "city", city=small_city)
    loaded = load_city_files(conn, files)
    assert loaded["incidents"].rows_loaded == 8_000
    return conn


def test_hotspots_are_stored_and_equal_the_pure_computation(city_conn):
    from geogrid.counts import cell_counts
    from geogrid.hotspots import hotspots
    from geogrid.store.grids import read_grids
    from geogrid.store.read import read_incidents

    conn = city_conn
    run, summary = run_hotspots(conn, Window(), res=9, k=1)
    stored = pd.DataFrame(conn.execute(text(
        "SELECT cell, count, z, gi_bin, ST_GeometryType(geom) AS t FROM hotspot_cells WHERE run_id = :r ORDER BY cell"),
        {"r": run}).mappings().all())
    grids = read_grids(conn)
    want = hotspots(cell_counts(read_incidents(conn), 9, study_area=grids), k=1).sort_values("cell")
    assert len(stored) == len(want) == summary["cells"]
    assert np.allclose(stored.z.to_numpy(), want.z.to_numpy(), atol=1e-9)
    assert (stored.gi_bin.to_numpy() == want.gi_bin.to_numpy()).all() and set(stored.t) == {"ST_Polygon"}
    assert (stored.gi_bin == 3).sum() > 0
    row = conn.execute(text("SELECT kind, params, data_from, finished_at FROM analysis_runs WHERE id = :r"),
                       {"r": run}).one()
    assert row.kind == "hotspots" and row.params["res"] == 9 and row.finished_at is not None
    # same inputs, same results
    run2, _ = run_hotspots(conn, Window(), res=9, k=1)
    z2 = conn.execute(text("SELECT z FROM hotspot_cells WHERE run_id = :r ORDER BY cell"), {"r": run2}).scalars().all()
    assert np.array_equal(np.array(z2), stored.z.to_numpy())


def test_automatic_scale_and_window_filters(city_conn):
    run, summary = run_hotspots(city_conn, Window(categories=["theft"]))
    assert summary["incidents"] < 8_000 and "scale" in summary and summary["res"] in (7, 8, 9, 10)


def test_emerging_clusters_and_patterns_are_stored(city_conn, tmp_path):
    conn = city_conn
    run, summary = run_emerging(conn, Window(), res=8, k=1, period="M")
    n = conn.execute(text("SELECT count(*) FROM emerging_cells WHERE run_id = :r"), {"r": run}).scalar()
    assert n == summary["cells"] > 0
    run, summary = run_clusters(conn, Window(), min_cluster_size=40)
    n = conn.execute(text("SELECT count(*) FROM clusters WHERE run_id = :r AND ST_IsValid(geom)"), {"r": run}).scalar()
    assert n == summary["clusters"] > 0
    run, summary = run_patterns(conn, Window(), tmp_path / "patterns")
    doc = json.loads((tmp_path / "patterns" / "patterns.json").read_text(encoding="utf-8"))
    assert "neighbour_dispute" in doc["groups"] and (tmp_path / "patterns" / "citywide.png").stat().st_size > 1000
    assert "peak" in summary["groups"]["neighbour_dispute"]["en"]


def test_forecast_is_stored_with_flags_and_uses_only_the_past(city_conn):
    from geogrid.runs import run_forecast

    conn = city_conn
    run, summary = run_forecast(conn, Window(), horizons=(7,), methods=("kde", "last_period"), res=8,
                                cutoff="2025-07-01", flag_share=0.1)
    rows = pd.DataFrame(conn.execute(text(
        "SELECT method, count(*) AS n, sum(flagged::int) AS flagged FROM forecast_cells WHERE run_id = :r GROUP BY 1"),
        {"r": run}).mappings().all()).set_index("method")
    assert set(rows.index) == {"kde", "last_period"} and (rows.n == summary["cells"]).all()
    assert (rows.flagged == summary["flagged_per_forecast"]).all()
    data_to = conn.execute(text("SELECT data_to FROM analysis_runs WHERE id = :r"), {"r": run}).scalar()
    assert data_to is not None
    # reported-only training sees fewer incidents than all origins
    _, rep = run_forecast(conn, Window(origin="reported"), horizons=(7,), res=8, cutoff="2025-07-01")
    assert rep["incidents"] < summary["incidents"]


def test_forecast_run_records_a_learned_method_that_could_not_fit(city_conn):
    from geogrid.runs import run_forecast

    # half a year of history before the cut-off: too little for the stack's first training origin
    run, summary = run_forecast(city_conn, Window(), horizons=(7,), methods=("kde", "stacked"), res=8,
                                cutoff="2025-07-01")
    assert list(summary["fallbacks"]) == ["stacked 7 d"] and "52-week counts" in summary["fallbacks"]["stacked 7 d"]
    stored = city_conn.execute(text("SELECT summary FROM analysis_runs WHERE id = :r"), {"r": run}).scalar()
    assert stored["fallbacks"] == summary["fallbacks"]
