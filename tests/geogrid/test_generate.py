"""Tests of the generated demo city (geogrid.generate): shape, determinism and planted structure."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from geogrid.errors import InputError
from geogrid.generate import CATEGORY_SHARES, City, generate_city, generate_incidents_csv

METRIC = "EPSG:32650"  # UTM 50N, Hefei's zone: areas and distances in metres
SIZES = dict(n_incidents=20_000, n_grids=300, n_posts=16, n_officers=110, n_auxiliaries=210)
SEED = 3

# named tolerances
AREA_REL_TOL = 1e-9  # total grid area vs union area: floating noise only
MIX_TOL = 0.02  # ±2 percentage points on each category share
HOTSPOT_MIN_RATIO = 5.0  # planted hotspot density / city-average density, at least
DISCOVERED_TOL = 0.03
KNOX_MIN_RATIO = 1.5  # close-in-space-and-time burglary pairs vs the same with shuffled times
KNOX_BAND = (100.0, 3.0)  # metres, days: the closest band of a Knox near-repeat table

# reference shares quoted in DOMAIN.md (2023 grassroots calls)
DOMAIN_SHARES = {"disputes": (("邻里纠纷",), 0.286), "theft": (("盗窃", "入室盗窃"), 0.192),
                 "fraud": (("电信诈骗",), 0.158)}


@pytest.fixture(scope="module")
def city() -> City:
    """A small city (300 grids, 20k incidents): big enough for every planted pattern to show."""
    return generate_city(seed=SEED, **SIZES)


@pytest.fixture(scope="module")
def grids_m(city: City) -> gpd.GeoDataFrame:
    """The grids in metres."""
    return city.grids.to_crs(METRIC)


@pytest.fixture(scope="module")
def incidents_m(city: City) -> gpd.GeoDataFrame:
    """The incidents in metres."""
    return city.incidents.to_crs(METRIC)


def _frames(c: City) -> dict[str, pd.DataFrame]:
    return {"grids": c.grids, "posts": c.posts, "staff": c.staff, "incidents": c.incidents,
            "planted": c.planted}


def test_same_seed_gives_identical_frames(city: City) -> None:
    again = generate_city(seed=SEED, **SIZES)
    for name, frame in _frames(city).items():
        pd.testing.assert_frame_equal(frame, _frames(again)[name], obj=name)


def test_different_seeds_give_different_cities(city: City) -> None:
    other = generate_city(seed=SEED + 1, **SIZES)
    assert not city.grids.geometry.geom_equals(other.grids.geometry).all()
    assert not np.array_equal(city.incidents.geometry.x, other.incidents.geometry.x)
    assert not city.incidents["occurred_at"].equals(other.incidents["occurred_at"])


def test_grids_are_valid_polygons_near_the_asked_count(city: City) -> None:
    g = city.grids
    assert (g.geom_type == "Polygon").all() and g.is_valid.all()
    assert abs(len(g) - SIZES["n_grids"]) <= 0.02 * SIZES["n_grids"]
    assert g["code"].is_unique and g.crs == "EPSG:4326"
    assert set(g["kind"]) == {"urban", "rural"}


def test_grids_tile_the_jurisdiction_without_overlaps_or_gaps(grids_m: gpd.GeoDataFrame) -> None:
    union = shapely.union_all(grids_m.geometry.values)
    total = grids_m.area.sum()
    assert abs(total - union.area) / union.area < AREA_REL_TOL  # no overlaps
    assert union.geom_type == "Polygon" and len(union.interiors) == 0  # one piece, no holes
    assert shapely.coverage_is_valid(grids_m.geometry.values)  # neighbours share exact edges


def test_urban_core_is_dense_and_rural_ring_is_coarse(grids_m: gpd.GeoDataFrame) -> None:
    km2 = grids_m.area / 1e6
    centre = shapely.union_all(grids_m.geometry.values).centroid
    dist = grids_m.centroid.distance(centre)
    urban = grids_m["kind"] == "urban"
    assert 0.2 <= km2[urban].median() <= 0.6
    assert km2[~urban].median() >= 2.0
    assert dist[urban].median() < 0.5 * dist[~urban].median()
    density = grids_m["population"] / km2
    assert density[urban].median() > 10 * density[~urban].median()


def test_key_areas_flag_about_fifteen_percent_of_urban_grids(city: City) -> None:
    g = city.grids
    flagged = g["key_areas"].map(len) > 0
    allowed = {"old_compound", "commercial_street", "urban_village"}
    assert set(g["key_areas"].explode().dropna()) <= allowed
    assert 0.10 <= flagged[g["kind"] == "urban"].mean() <= 0.20
    assert not flagged[g["kind"] == "rural"].any()


def test_every_incident_lies_inside_the_jurisdiction(city: City) -> None:
    joined = gpd.sjoin(city.incidents[["geometry"]], city.grids[["geometry"]], predicate="intersects")
    assert joined.index.nunique() == len(city.incidents)


def test_incident_columns_and_times(city: City) -> None:
    inc = city.incidents
    assert len(inc) == SIZES["n_incidents"] and inc["external_id"].is_unique
    assert str(inc["occurred_at"].dt.tz) == "Asia/Shanghai"
    start = pd.Timestamp("2025-01-01", tz="Asia/Shanghai")
    assert inc["occurred_at"].min() >= start
    assert inc["occurred_at"].max() < start + pd.Timedelta(days=365)
    assert set(inc["priority"]) == {"urgent", "normal"}


def test_category_mix_matches_targets(city: City) -> None:
    share = city.incidents["category"].value_counts(normalize=True)
    for label, target in CATEGORY_SHARES.items():
        assert abs(share.get(label, 0.0) - target) <= MIX_TOL, label
    for name, (labels, target) in DOMAIN_SHARES.items():
        assert abs(share.reindex(list(labels)).sum() - target) <= MIX_TOL, name


@pytest.mark.parametrize(
    ("label", "lo", "hi"),
    [("邻里纠纷", 19, 23), ("盗窃", 10, 17), ("电信诈骗", 9, 17)],
    ids=["disputes-evening", "theft-daytime", "fraud-office-hours"],
)
def test_peak_hour_of_category(city: City, label: str, lo: int, hi: int) -> None:
    t = city.incidents.loc[city.incidents["category"] == label, "occurred_at"]
    assert lo <= t.dt.hour.value_counts().idxmax() <= hi


def test_disputes_peak_on_friday_and_saturday_evenings(city: City) -> None:
    t = city.incidents.loc[city.incidents["category"] == "邻里纠纷", "occurred_at"]
    evening = t.dt.hour.between(19, 23)
    per_day = evening.groupby(t.dt.day_of_week).mean()
    assert per_day.loc[[4, 5]].min() > per_day.loc[[0, 1, 2, 3]].max()


def test_fraud_is_a_weekday_matter(city: City) -> None:
    t = city.incidents.loc[city.incidents["category"] == "电信诈骗", "occurred_at"]
    assert (t.dt.day_of_week < 5).mean() > 5 / 7 + 0.05


def test_planted_hotspots_are_much_denser_than_the_city(city: City, incidents_m, grids_m) -> None:
    planted = city.planted.to_crs(METRIC)
    assert 8 <= len(planted) <= 12
    assert {"round", "street", "ring"} <= set(planted["shape"])
    assert {"growing", "fading"} <= set(planted["trend"])
    city_density = len(incidents_m) / grids_m.area.sum()
    counts = gpd.sjoin(incidents_m[["geometry"]], planted[["id", "geometry"]],
                       predicate="within")["id"].value_counts()
    density = counts.reindex(planted["id"], fill_value=0).to_numpy() / planted.area.to_numpy()
    assert (density >= HOTSPOT_MIN_RATIO * city_density).all(), density / city_density


@pytest.mark.parametrize("trend", ["growing", "fading"], ids=["growing", "fading"])
def test_hotspot_trend_shows_between_the_two_halves_of_the_year(city: City, trend: str) -> None:
    planted = city.planted[city.planted["trend"] == trend]
    joined = gpd.sjoin(city.incidents, planted[["id", "geometry"]], predicate="within")
    late = joined["occurred_at"] >= pd.Timestamp("2025-07-02", tz="Asia/Shanghai")
    by_half = late.groupby(joined["id"]).agg(["sum", "size"])
    second, first = by_half["sum"], by_half["size"] - by_half["sum"]
    assert len(by_half) == len(planted)
    assert ((second > first) if trend == "growing" else (second < first)).all()


def test_burglaries_come_in_near_repeat_bursts(incidents_m: gpd.GeoDataFrame) -> None:
    b = incidents_m[incidents_m["category"] == "入室盗窃"]
    days = (b["occurred_at"] - b["occurred_at"].min()).dt.total_seconds().to_numpy() / 86400
    metres, lag = KNOX_BAND
    pairs = cKDTree(np.c_[b.geometry.x, b.geometry.y]).query_pairs(metres, output_type="ndarray")
    close = int((np.abs(days[pairs[:, 0]] - days[pairs[:, 1]]) <= lag).sum())
    rng = np.random.default_rng(0)
    shuffled = [np.abs(np.subtract(*rng.permutation(days)[pairs.T])) <= lag for _ in range(20)]
    assert close > KNOX_MIN_RATIO * np.mean([s.sum() for s in shuffled])


def test_patrols_discover_about_fifteen_percent_near_posts(city: City, incidents_m) -> None:
    discovered = (city.incidents["origin"] == "discovered").to_numpy()
    assert abs(discovered.mean() - 0.15) <= DISCOVERED_TOL
    posts = city.posts.to_crs(METRIC)
    dist, _ = cKDTree(np.c_[posts.geometry.x, posts.geometry.y]).query(
        np.c_[incidents_m.geometry.x, incidents_m.geometry.y])
    assert np.median(dist[discovered]) < 0.8 * np.median(dist[~discovered])


def test_posts_stations_and_their_contiguous_areas(city: City) -> None:
    posts, grids = city.posts, city.grids
    assert len(posts) == SIZES["n_posts"] and set(posts["kind"]) == {"station", "post"}
    stations = set(posts.loc[posts["kind"] == "station", "code"])
    assert set(posts["station_code"]) == stations
    assert set(grids["post_code"]) == set(posts["code"])  # every post has an area
    station = grids["post_code"].map(dict(zip(posts["code"], posts["station_code"])))
    for key in (grids["post_code"], station):
        parts = grids.geometry.groupby(key.to_numpy()).apply(shapely.union_all)
        assert (parts.map(lambda g: g.geom_type) == "Polygon").all()


def test_staff_counts_and_assignments(city: City) -> None:
    staff, grids = city.staff, city.grids
    role = staff["role"].value_counts()
    assert role["officer"] == SIZES["n_officers"] and role["auxiliary"] == SIZES["n_auxiliaries"]
    assert role["grid_worker"] > 0 and staff["code"].is_unique
    assert set(staff["grid_code"].dropna()) <= set(grids["code"])
    assert set(staff["post_code"]) <= set(city.posts["code"])
    officer_grids = staff.loc[staff["role"] == "officer", "grid_code"]
    assert officer_grids.dropna().is_unique and officer_grids.notna().sum() < len(grids)


def test_summary_counts(city: City) -> None:
    s = city.summary()
    assert s["grids"] == len(city.grids) and s["incidents"] == SIZES["n_incidents"]
    assert s["officers"] == SIZES["n_officers"] and s["planted_hotspots"] == len(city.planted)


@pytest.mark.parametrize(
    "bad",
    [{"n_grids": 10}, {"n_incidents": 0}, {"days": -1}, {"n_posts": 2.5}],
    ids=["too-few-grids", "no-incidents", "negative-days", "float-posts"],
)
def test_bad_sizes_raise_input_error(bad: dict) -> None:
    with pytest.raises(InputError, match=next(iter(bad))):
        generate_city(**{**SIZES, **bad})


def test_incident_csv_streams_in_chunks(tmp_path) -> None:
    path = generate_incidents_csv(tmp_path / "incidents.csv", n=2_500, seed=5, chunk=1_000)
    df = pd.read_csv(path)
    assert list(df.columns) == ["id", "lon", "lat", "time", "category"]
    assert len(df) == 2_500 and df["id"].is_unique
    assert set(df["category"]) <= set(CATEGORY_SHARES)
    boundary = generate_city(seed=5, n_incidents=1).boundary
    assert shapely.intersects_xy(boundary, df["lon"], df["lat"]).all()
    assert pd.to_datetime(df["time"]).dt.tz is not None
