"""Grid-level forecasts are stored next to the cell forecasts: sums of their cells, ranked and flagged."""
from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from geogrid.runs import Window, run_forecast

CUTOFF = "2025-07-01"


@pytest.fixture(scope="module")
def city():
    """120 grids, 8,000 incidents: every grid holds res-8 cell centres."""
    from geogrid.generate import generate_city

    return generate_city(seed=5, n_incidents=8_000, n_grids=120, n_posts=8, n_officers=50, n_auxiliaries=90)


@pytest.fixture
def stored(conn, city, tmp_path):
    from geogrid.demo import load_city_files, write_city

    load_city_files(conn, write_city(tmp_path / "city", city=city))
    run, summary = run_forecast(conn, Window(), horizons=(7, 28), methods=("last_period", "kde"), res=8,
                                cutoff=CUTOFF, flag_share=0.1)
    grids = pd.DataFrame(conn.execute(text(
        "SELECT g.code, g.id, f.grid_id, f.horizon_days, f.method, f.score, f.rank, f.flagged, "
        "ST_Equals(f.geom, g.geom) AS same_geom, ST_GeometryType(f.geom) AS t "
        "FROM forecast_grids f JOIN grids g ON g.code = f.code AND g.plan_id = "
        "(SELECT id FROM plans WHERE status = 'active') WHERE f.run_id = :r"), {"r": run}).mappings().all())
    return conn, run, summary, grids


def test_one_row_per_grid_horizon_and_method_with_the_grid_geometry(stored):
    conn, run, summary, grids = stored
    n_grids = conn.execute(text("SELECT count(*) FROM grids g JOIN plans p ON p.id = g.plan_id "
                                "WHERE p.status = 'active'")).scalar()
    assert summary["grids"] == n_grids == 120
    assert len(grids) == n_grids * 2 * 2
    assert (grids.grid_id == grids.id).all() and grids.same_geom.all() and set(grids.t) == {"ST_MultiPolygon"}


def test_flags_are_the_top_share_by_score(stored):
    _, _, summary, grids = stored
    for _, g in grids.groupby(["horizon_days", "method"]):
        assert g.flagged.sum() == summary["flagged_grids_per_forecast"] == 12
        assert sorted(g["rank"]) == list(range(1, len(g) + 1))
        assert g.loc[g.flagged, "score"].min() >= g.loc[~g.flagged, "score"].max()
        assert g.loc[g["rank"] == 1, "score"].iloc[0] == g.score.max() > 0


def test_last_period_grid_score_counts_the_grid_incidents(stored):
    """Independent check in SQL: incidents of the last 7 days whose res-8 cell centre lies in the grid."""
    conn, _, _, grids = stored
    from geogrid.cells import cell_centroids, points_to_cells

    inc = pd.DataFrame(conn.execute(text(
        "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents "
        "WHERE occurred_at >= CAST(:c AS timestamptz) - interval '7 days' AND occurred_at < CAST(:c AS timestamptz)"),
        {"c": f"{CUTOFF} 00:00+08:00"}).mappings().all())
    lon, lat = cell_centroids(points_to_cells(inc.lon.to_numpy(), inc.lat.to_numpy(), 8))
    pts = pd.DataFrame({"lon": lon, "lat": lat})
    conn.execute(text("CREATE TEMP TABLE centres (lon float8, lat float8) ON COMMIT DROP"))
    conn.execute(text("INSERT INTO centres VALUES (:lon, :lat)"), pts.to_dict("records"))
    want = dict(conn.execute(text(
        "SELECT g.code, count(*) FROM centres c JOIN grids g ON ST_Contains(g.geom, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326)) "
        "JOIN plans p ON p.id = g.plan_id AND p.status = 'active' GROUP BY g.code")).all())
    got = grids[(grids.method == "last_period") & (grids.horizon_days == 7)].set_index("code")["score"]
    assert got.sum() > 0
    assert got.to_dict() == {c: float(want.get(c, 0)) for c in got.index}
