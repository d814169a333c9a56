"""Balanced beats: contiguity judged by dissolved geometry, balance within the goal or at the proven bound."""
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geogrid.apportion import minimax_apportion
from geogrid.beat_bounds import SMALL_AREA
from geogrid.beats import BalancedBeats
from geogrid.errors import InputError

CHICAGO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "chicago" / "converted"
SLACK = 1e-6  # float slack on deviation comparisons
MOSTLY_KEPT = 0.8  # share of grids an incremental rebalance must leave in their beat
# Beats of 2.7-4.6 grids are granular: the ±15 % goal is not always met (and no bound proves it
# impossible). What the plans must still show there:
GRANULAR_SHARE_IN_GOAL = 0.75  # share of beats within the goal (measured: 0.78 city-wide, 10 s)
GRANULAR_MAX_CV = 0.12  # coefficient of variation of workload per officer


def voronoi_city(n: int, seed: int, sigma: float, side: float = 30_000.0) -> gpd.GeoDataFrame:
    """Seeded Voronoi city in metres with lognormal workload and a 4×4 grid of post areas."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, side, (n, 2))
    frame = shapely.box(0, 0, side, side)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=frame)
    polys = shapely.intersection(np.asarray(cells.geoms), frame)
    ctr = shapely.centroid(polys)
    post = (shapely.get_x(ctr) // (side / 4)).astype(int) * 4 + (shapely.get_y(ctr) // (side / 4)).astype(int)
    return gpd.GeoDataFrame({"workload": rng.lognormal(3, sigma, n).round() + 1, "post_code": post},
                            geometry=polys, crs=32650)


def assert_contiguous(grids: gpd.GeoDataFrame, labels: pd.Series) -> None:
    """Each beat's dissolved geometry is one Polygon (corner touches leave a MultiPolygon)."""
    metric = grids.to_crs(grids.estimate_utm_crs()) if grids.crs.is_geographic else grids
    for beat, geoms in metric.geometry.groupby(labels.to_numpy()):
        union = shapely.union_all(shapely.set_precision(geoms.to_numpy(), 0.001))
        assert union.geom_type == "Polygon", f"beat {beat} is {union.geom_type}"


def assert_balanced(bb: BalancedBeats) -> None:
    rep = bb.report_
    assert rep["max_abs_dev"] <= max(rep["goal"], rep["lower_bound_dev"]) + SLACK, rep


def assert_mostly_balanced(bb: BalancedBeats, beats: pd.DataFrame | None = None) -> None:
    beats = bb.beats_ if beats is None else beats
    dev = beats["deviation"].abs()
    assert (dev <= bb.report_["goal"] + SLACK).mean() >= GRANULAR_SHARE_IN_GOAL, dev.describe()
    wpo = beats["workload_per_officer"]
    assert wpo.std(ddof=0) / wpo.mean() <= GRANULAR_MAX_CV


@pytest.fixture(scope="module")
def chicago():
    """Chicago's 277 beats as grids, workload = 2019 sample incidents inside each (some beats have 0)."""
    beats = gpd.read_file(CHICAGO / "police_beats.geojson")
    crimes = pd.read_csv(CHICAGO / "crimes_2019_sample50k.csv", usecols=["latitude", "longitude"]).dropna()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(crimes.longitude, crimes.latitude), crs=4326)
    hits = gpd.sjoin(pts, beats[["geometry"]], predicate="within")["index_right"].value_counts()
    beats["workload"] = hits.reindex(beats.index, fill_value=0).to_numpy()
    return beats


@pytest.fixture(scope="module")
def city860():
    """The source plan's capital: 860 grids, 320 officers (2.7 grids per officer), moderate skew."""
    return voronoi_city(860, seed=7, sigma=0.5)


def test_chicago_22_regions(chicago):
    bb = BalancedBeats(22, seed=0, max_seconds=20).fit(chicago)
    assert bb.report_["goal"] == 0.05  # 12.6 beats per region: the ±5 % band applies
    assert_contiguous(chicago, bb.labels_)
    assert_balanced(bb)
    assert bb.labels_.nunique() == 22 and bb.officers_.sum() == 22


def test_chicago_60_regions_meet_the_goal(chicago):
    """4.6 beats a region: the issue's reference reached 27 %; the ±15 % goal is met, contiguous by geometry."""
    bb = BalancedBeats(60, seed=0, max_seconds=20).fit(chicago)
    assert bb.report_["goal"] == 0.15
    assert_contiguous(chicago, bb.labels_)
    assert bb.report_["within_goal"], bb.report_["summary"]
    assert bb.officers_.sum() == 60


def test_chicago_districts_are_never_crossed(chicago):
    bb = BalancedBeats(60, station_col="district", seed=0, max_seconds=20).fit(chicago)
    assert_contiguous(chicago, bb.labels_)
    assert (chicago.groupby(bb.labels_.to_numpy())["district"].nunique() == 1).all()
    # the airport district's zero-incident beat alone forces a -100 % beat: the bound says so
    assert bb.report_["lower_bound_dev"] == pytest.approx(1.0)
    assert_balanced(bb)
    # where a district's own officers allow the goal, its beats mostly meet it (4.6 grids a beat)
    ok = bb.beats_[bb.beats_["unit_floor"] <= bb.report_["goal"]]
    assert len(ok) > 30
    assert_mostly_balanced(bb, ok)
    # a district of at most SMALL_AREA grids is re-cut exactly: each of its beats is within the goal or
    # within the district's own exact floor (every cut into its officers' beats tried)
    beats = bb.beats_
    grids_in_unit = beats.groupby("unit")["n_grids"].transform("sum")
    small = beats[grids_in_unit <= SMALL_AREA]
    assert len(small) > 20
    assert (small["deviation"].abs() <= np.maximum(small["unit_floor"], bb.report_["goal"]) + SLACK).all(), \
        small[["unit", "n_grids", "deviation", "unit_floor"]]


def test_too_few_officers_for_stations(chicago):
    """23 districts, district 31 in 3 separate pieces: 22 officers cannot cover them."""
    with pytest.raises(InputError, match="cannot cover"):
        BalancedBeats(22, station_col="district").fit(chicago)


@pytest.mark.parametrize("station_col", [None, "post_code"], ids=["city", "posts"])
def test_city_860_grids_320_officers(city860, station_col):
    # a budget the search never reaches (it stops on its own after ~20-30 s here): the plan does not
    # depend on the machine's load
    bb = BalancedBeats(320, station_col=station_col, seed=0, max_seconds=300).fit(city860)
    assert bb.report_["seconds"] < 300
    assert_contiguous(city860, bb.labels_)
    assert_mostly_balanced(bb)
    assert bb.officers_.sum() == 320
    # one officer a beat misses ±15 % here, but only as far as a proof says any plan must (measured: a
    # trapped grid, 16.0 % city-wide and 36.4 % with posts, both reached exactly)
    assert bb.report_["lower_bound_dev"] > bb.report_["goal"]
    assert "trapped" in bb.report_["lower_bound_reason"]
    assert_balanced(bb)


def test_heavy_grid_gets_a_multi_officer_beat(city860):
    grids = city860.copy()
    mean = grids["workload"].sum() / 320
    grids.loc[100, "workload"] = 2.6 * mean  # needs 3 officers (1.15 band): ceil(2.6 / 1.15)
    bb = BalancedBeats(320, station_col="post_code", seed=0, max_seconds=5).fit(grids)
    beat = bb.labels_.loc[100]
    assert bb.officers_.loc[beat] >= 3
    assert abs(bb.beats_.loc[beat, "deviation"]) <= bb.report_["goal"] + SLACK


def test_rebalance_is_incremental(chicago):
    bb = BalancedBeats(22, seed=0, max_seconds=20).fit(chicago)
    before = bb.labels_.copy()
    changed = chicago.astype({"workload": float})
    busiest = changed["workload"].idxmax()
    changed.loc[busiest, "workload"] *= 1.8
    bb.rebalance(changed, [busiest])
    assert (bb.labels_ == before).mean() >= MOSTLY_KEPT
    assert_contiguous(changed, bb.labels_)
    assert bb.report_["within_goal"], bb.report_


def test_minimax_apportion_beats_largest_remainder():
    """Workloads 10, 10, 1 with 4 officers: the small area needs its own officer, so one big area
    is alone at +90 %; the best plan cannot do better."""
    officers, floor = minimax_apportion(np.array([10.0, 10.0, 1.0]), 4)
    assert sorted(officers.tolist()) == [1, 1, 2]
    assert floor == pytest.approx(10 / (21 / 4) - 1)


@pytest.mark.parametrize("kwargs, match", [({"n_officers": 0}, "n_officers"),
                                           ({"n_officers": 5, "workload_col": "x"}, "'x'")],
                         ids=["no-officers", "no-column"])
def test_validation(city860, kwargs, match):
    with pytest.raises(InputError, match=match):
        BalancedBeats(**kwargs).fit(city860)


def test_team_beats_meet_the_goal_where_single_beats_are_too_granular(city860):
    """2.7 grids a beat: pairing the beats that miss the band into two-officer beats meets ±15 %."""
    bb = BalancedBeats(320, seed=0, max_seconds=40, max_team=2).fit(city860)
    assert_contiguous(city860, bb.labels_)
    assert bb.officers_.sum() == 320
    assert bb.report_["within_goal"], bb.report_
    assert bb.report_["team_merges"] > 0
    # beats of more than two officers are only those a heavy grid needs
    mu = city860["workload"].sum() / 320
    heaviest = city860.groupby(bb.labels_.to_numpy())["workload"].max()
    big = bb.officers_[bb.officers_ > 2].index
    assert (heaviest.loc[big] > (1 + bb.report_["goal"]) * mu).all()


def test_team_size_is_checked(city860):
    with pytest.raises(InputError, match="max_team"):
        BalancedBeats(320, max_team=0).fit(city860)


def test_search_stops_when_it_cannot_improve():
    """Granular beats (2.9 grids each) miss the band in some areas; the search of such an area stops after
    ``patience`` perturbations without a real gain instead of spending the budget, so a fit ends long
    before a generous ``max_seconds`` and is reproducible: the same beats on a second run."""
    grids = voronoi_city(200, seed=3, sigma=0.5)
    fits = [BalancedBeats(70, station_col="post_code", seed=0, max_seconds=600).fit(grids) for _ in range(2)]
    assert not fits[0].report_["within_goal"]  # the kicks ran, and had to stop on their own
    assert fits[0].report_["seconds"] < 600
    pd.testing.assert_series_equal(fits[0].labels_, fits[1].labels_)
    assert_contiguous(grids, fits[0].labels_)
    with pytest.raises(InputError, match="patience"):
        BalancedBeats(70, patience=-1).fit(grids)
