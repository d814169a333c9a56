"""Travel models: straight-line arithmetic, network times against networkx, road generation."""
from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, box

from geogrid.errors import InputError
from geogrid.travel import NetworkTravel, StraightLineTravel, generate_roads, roads_graph

ABS_MIN = 1e-6  # minutes: both sides do the same float arithmetic
UTM = 32648  # the toy places sit near 104.06 E, 30.66 N (Chengdu), UTM zone 48N
LON0, LAT0 = 104.06, 30.66
DLON, DLAT = 1 / (111.32 * np.cos(np.radians(LAT0))), 1 / 110.57  # degrees per km


def _pts(x_km, y_km):
    return gpd.GeoSeries(gpd.points_from_xy(LON0 + np.asarray(x_km) * DLON, LAT0 + np.asarray(y_km) * DLAT), crs=4326)


@pytest.fixture
def toy_roads():
    """A square block with a diagonal crossing it and a dangling spur, speeds differing by road.

    The diagonal crosses the block's middle road, so routing needs the crossing to be noded.
    """
    km = lambda x, y: (LON0 + x * DLON, LAT0 + y * DLAT)  # noqa: E731
    lines = [
        LineString([km(0, 0), km(2, 0), km(2, 2), km(0, 2), km(0, 0)]),
        LineString([km(0, 1), km(2, 1)]),
        LineString([km(0, 0), km(2, 2)]),
        LineString([km(2, 2), km(3, 3)]),
    ]
    return gpd.GeoDataFrame({"kind": ["local", "local", "arterial", "spur"], "speed_kmh": [20.0, 30.0, 50.0, 10.0]},
                            geometry=lines, crs=4326)


@pytest.fixture
def toy_grids():
    """A 6 × 6 km city of 1 km grids: the inner 2 × 2 km urban, the rest rural."""
    rows = []
    for i in range(-3, 3):
        for j in range(-3, 3):
            urban = -1 <= i < 1 and -1 <= j < 1
            rows.append({"code": f"G{i}{j}", "kind": "urban" if urban else "rural",
                         "geometry": box(LON0 + i * DLON, LAT0 + j * DLAT, LON0 + (i + 1) * DLON, LAT0 + (j + 1) * DLAT)})
    return gpd.GeoDataFrame(rows, crs=4326)


def test_straight_line_is_distance_times_circuity_over_speed(toy_grids):
    travel = StraightLineTravel.from_grids(toy_grids, circuity=1.4, urban_kmh=20, rural_kmh=60)
    posts = _pts([0.0], [0.0])
    points = _pts([0.5, 2.5], [0.0, 0.0])  # the first lies in the urban core, the second in a rural grid
    expected_m = points.to_crs(UTM).distance(posts.to_crs(UTM).iloc[0]).to_numpy()
    expected = expected_m * 1.4 / (np.array([20.0, 60.0]) * 1000 / 60)
    assert travel.times_from(posts, points)[:, 0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("model", ["straight", "network"], ids=["straight-line", "network"])
def test_within_and_nearest_agree_with_the_times_matrix(model, toy_roads):
    rng = np.random.default_rng(3)
    points = _pts(rng.uniform(-0.5, 3, 60), rng.uniform(-0.5, 3, 60))
    sites = points.iloc[::6]
    travel = StraightLineTravel() if model == "straight" else NetworkTravel(roads_graph(toy_roads))
    times = travel.times_from(sites, points)
    within = travel.within(sites, points, 4.0).toarray()
    assert 0 < within.sum() < within.size  # the threshold splits the pairs
    np.testing.assert_array_equal(within, times <= 4.0)
    idx, minutes = travel.nearest(sites, points)
    np.testing.assert_allclose(minutes, times.min(axis=1), atol=ABS_MIN)
    np.testing.assert_allclose(times[np.arange(len(points)), idx], minutes, atol=ABS_MIN)


def test_network_times_equal_networkx_shortest_paths(toy_roads):
    graph = roads_graph(toy_roads)
    travel = NetworkTravel(graph, access_kmh=5.0)
    posts, points = _pts([0.1, 2.9], [0.05, 2.8]), _pts([1.0, 0.2, 1.9, 2.2], [1.3, 1.9, 0.1, 2.4])
    nodes = list(graph.nodes)
    xy = np.array(nodes)

    def snap(p):  # brute force: the nearest node and the straight walk to it at 5 km/h
        d = np.hypot(*(xy - p).T)
        return nodes[int(d.argmin())], d.min() / (5000 / 60)

    got = travel.times_from(posts, points)
    for j, post in enumerate(posts.to_crs(graph.graph["crs"])):
        src, walk_src = snap([post.x, post.y])
        for i, pt in enumerate(points.to_crs(graph.graph["crs"])):
            dst, walk_dst = snap([pt.x, pt.y])
            expected = walk_src + nx.shortest_path_length(graph, src, dst, weight="minutes") + walk_dst
            assert got[i, j] == pytest.approx(expected, abs=ABS_MIN)


def test_roads_graph_joins_crossing_lines_only_when_noding(toy_roads):
    assert nx.number_connected_components(roads_graph(toy_roads)) == 1
    # without noding the diagonal meets the block only at shared corners; the middle road is cut off
    assert nx.number_connected_components(roads_graph(toy_roads, node=False)) == 2


def test_roads_graph_keeps_the_faster_of_overlapping_roads(toy_roads):
    slow_copy = toy_roads.iloc[[2]].assign(speed_kmh=5.0, kind="track")
    graph = roads_graph(pd.concat([toy_roads, slow_copy]))
    kinds = {d["kind"] for *_, d in graph.edges(data=True)}
    assert "track" not in kinds and "arterial" in kinds


def test_generated_roads_connect_every_grid(toy_grids):
    roads = generate_roads(toy_grids, seed=7)
    assert set(roads["kind"]) >= {"ring", "arterial", "local"}
    assert (roads["speed_kmh"] > 0).all() and roads.crs.to_epsg() == 4326
    graph = roads_graph(roads)
    assert nx.number_connected_components(graph) == 1
    # every grid's representative point is within 1 km of a road node
    nodes = np.array(graph.nodes)
    reps = toy_grids.representative_point().to_crs(graph.graph["crs"])
    nearest = [np.hypot(*(nodes - [p.x, p.y]).T).min() for p in reps]
    assert max(nearest) < 1000.0


def test_generated_roads_follow_the_seed(toy_grids):
    a, b, c = generate_roads(toy_grids, seed=1), generate_roads(toy_grids, seed=1), generate_roads(toy_grids, seed=2)
    assert a.geometry.geom_equals_exact(b.geometry, 1e-9).all()
    assert len(a) != len(c) or not a.geometry.geom_equals_exact(c.geometry, 1e-9).all()


@pytest.mark.parametrize("kwargs", [{"circuity": 0.9}, {"urban_kmh": 0}, {"rural_kmh": float("nan")}],
                         ids=["circuity-below-1", "zero-speed", "nan-speed"])
def test_straight_line_rejects_bad_parameters(kwargs):
    with pytest.raises(InputError):
        StraightLineTravel(**kwargs)


def test_roads_graph_needs_speeds(toy_roads):
    with pytest.raises(InputError, match="speed_kmh"):
        roads_graph(toy_roads.drop(columns="speed_kmh"))
