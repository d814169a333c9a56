"""The real Chicago files load through the generic ingest path with the profile in data/profiles/."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from sqlalchemy import text

from geogrid.ingest.fields import Profile
from geogrid.ingest.grids import load_grids
from geogrid.ingest.incidents import load_incidents
from geogrid.ingest.posts import load_posts

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ROOT.parent / "shared" / "data" / "real" / "chicago"

PROFILE = ROOT / "data" / "profiles" / "chicago.toml"
BEATS = CHICAGO / "converted" / "police_beats.geojson"
CRIMES = CHICAGO / "converted" / "crimes_2019_sample50k.csv"
STATIONS = CHICAGO / "raw" / "stations" / "Police_Stations.csv"
ASSAULTS = CHICAGO / "raw" / "crimemappingdata" / "chicago_aggravated_assaults.csv.gz"


@pytest.fixture
def chicago(conn, tmp_path, monkeypatch):
    """Beats as the active plan and stations as posts (reports go to tmp: ../shared is read-only)."""
    monkeypatch.setattr("geogrid.ingest.report.RejectLog.__init__", _report_in(tmp_path))
    prof = Profile.from_file(PROFILE, "grids")
    res = load_grids(conn, BEATS, prof.fields, plan=prof.source, activate=True, defaults=prof.defaults,
                     merge_parts=prof.merge_parts)
    # 277 polygons, of which beat 3100 is three parts: 275 grids
    assert (res.rows_read, res.rows_loaded, res.rejected) == (277, 275, 0)
    assert any("3100" in w for w in res.log.warnings)
    prof = Profile.from_file(PROFILE, "posts")
    res = load_posts(conn, STATIONS, prof.fields, source=prof.source, defaults=prof.defaults)
    assert (res.rows_loaded, res.rejected) == (22, 0)
    return conn


def _report_in(tmp_path):
    from geogrid.ingest.report import RejectLog

    orig = RejectLog.__init__

    def init(self, input_path):
        orig(self, None if input_path is None else tmp_path / __import__("pathlib").Path(input_path).name)
    return init


def test_crimes_sample_loads_with_expected_counts(chicago):
    conn = chicago
    prof = Profile.from_file(PROFILE, "incidents")
    res = load_incidents(conn, CRIMES, prof.fields, source=prof.source, crs=prof.crs, tz=prof.timezone)
    # expected from the file itself: 266 rows lack coordinates; the rest outside every beat are rejected
    raw = pd.read_csv(CRIMES, usecols=["id", "latitude", "longitude"])
    have = raw.dropna()
    pts = gpd.GeoDataFrame(have, geometry=gpd.points_from_xy(have.longitude, have.latitude), crs=4326)
    inside = gpd.sjoin(pts, gpd.read_file(BEATS)[["geometry"]], predicate="intersects")["id"].nunique()
    assert res.rows_read == 50_000
    assert res.rows_loaded == inside and res.rejected == 50_000 - inside
    reasons = pd.read_csv(res.report_path).groupby("reason").size()
    assert reasons[reasons.index.str.startswith("missing coordinate")].sum() == 266
    assert conn.execute(text("SELECT count(*) FROM incidents WHERE source = :s"), {"s": prof.source}).scalar() == inside
    # every Chicago primary type maps to a canonical category
    assert not any("unknown category" in w for w in res.log.warnings)
    # the beat stored for each crime matches the beat the police recorded for ~91 % (README: 91.2 %)
    agree = conn.execute(text(
        "SELECT avg((ltrim(g.code, '0') = c.beat)::int) FROM incidents i JOIN grids g ON g.id = i.grid_id "
        "JOIN (SELECT unnest(CAST(:ids AS text[])) AS id, unnest(CAST(:beats AS text[])) AS beat) c ON c.id = i.external_id"),
        {"ids": raw.id.astype(str).tolist(), "beats": pd.read_csv(CRIMES, usecols=["beat"]).beat.astype(str).tolist()}
    ).scalar()
    assert 0.89 < float(agree) < 0.94


@pytest.mark.slow
def test_all_aggravated_assaults_load(chicago):
    conn = chicago
    prof = Profile.from_file(ROOT / "data" / "profiles" / "chicago_assaults.toml", "incidents")
    res = load_incidents(conn, ASSAULTS, prof.fields, source=prof.source, crs=prof.crs, tz=prof.timezone,
                         defaults=prof.defaults)
    assert res.rows_read == 148_636
    # README: 99.9 % fall inside a beat; rows identical in time, place and category are duplicates
    assert res.rows_loaded > 0.99 * res.rows_read
    cats = dict(conn.execute(text("SELECT category, count(*) FROM incidents WHERE source = :s GROUP BY 1"),
                             {"s": prof.source}).all())
    assert cats == {"assault": res.rows_loaded}
    first = conn.execute(text("SELECT min(occurred_at) AT TIME ZONE 'America/Chicago' FROM incidents WHERE source = :s"),
                         {"s": prof.source}).scalar()
    assert str(first) == "2010-01-01 00:05:00"
