"""Police stations (派出所) and posts (警务室), and the contiguous areas they answer for.

Posts are sited where people are (weighted k-means over grid centroids, 70 % population, 30 % area,
so the core gets more posts but villages are not left without one). Each grid belongs to the post
nearest along the grid adjacency graph, and each post to the station nearest along the post
adjacency graph: a graph Voronoi partition, whose regions are contiguous by construction (every
grid's shortest path to its post runs through grids of the same post).
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from libpysal.graph import Graph
from scipy.sparse import coo_array
from scipy.sparse.csgraph import dijkstra
from sklearn.cluster import KMeans

POSTS_PER_STATION = 4


@dataclass
class Siting:
    """Post points (metres) and the assignment of grids to posts, and of posts to stations."""

    xy: np.ndarray  # n_posts × 2
    grid: np.ndarray  # index of the grid each post stands in
    is_station: np.ndarray  # bool per post
    station: np.ndarray  # index (into posts) of each post's station; a station is its own
    grid_post: np.ndarray  # index (into posts) of each grid's post


def grid_adjacency(grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """Rook (shared edge) neighbour pairs ``focal, neighbor`` by position, both directions."""
    g = Graph.build_contiguity(grids.reset_index(drop=True), rook=True)
    adj = g.adjacency.reset_index()
    return adj.loc[adj["weight"] > 0, ["focal", "neighbor"]].reset_index(drop=True)


def site_posts(rng: np.random.Generator, grids: gpd.GeoDataFrame, adjacency: pd.DataFrame,
               n_posts: int, seed: int) -> Siting:
    """Place ``n_posts`` posts (a quarter of them stations) and partition the grids among them."""
    n_posts = min(n_posts, len(grids))
    centroids = shapely.get_coordinates(grids.geometry.centroid.values)
    pop, area = grids["population"].to_numpy(float), grids.area.to_numpy()
    weight = 0.7 * pop / pop.sum() + 0.3 * area / area.sum()
    km = KMeans(n_posts, n_init=1, random_state=seed).fit(centroids, sample_weight=weight)
    post_grid = _nearest_distinct(centroids, km.cluster_centers_)
    # a post stands inside its grid, a little off the centroid (a street address, not a centre)
    anchor = shapely.point_on_surface(grids.geometry.values[post_grid])
    xy = shapely.get_coordinates(anchor) + rng.normal(0, 30, (n_posts, 2))
    inside = shapely.contains_xy(grids.geometry.values[post_grid], xy[:, 0], xy[:, 1])
    xy[~inside] = shapely.get_coordinates(anchor)[~inside]

    n_grid = len(grids)
    grid_post = _graph_voronoi(centroids, adjacency, post_grid, n_grid)

    n_st = max(1, round(n_posts / POSTS_PER_STATION))
    # weight posts by the people they serve, so the core gets stations of its own
    served = np.bincount(grid_post, weights=pop, minlength=n_posts)
    km2 = KMeans(n_st, n_init=1, random_state=seed).fit(xy, sample_weight=served)
    stations = _nearest_distinct(xy, km2.cluster_centers_)
    pairs = pd.DataFrame({"a": grid_post[adjacency["focal"]], "b": grid_post[adjacency["neighbor"]]})
    pairs = pairs[pairs["a"] != pairs["b"]].drop_duplicates()
    post_adj = pd.DataFrame({"focal": pairs["a"].to_numpy(), "neighbor": pairs["b"].to_numpy()})
    station = stations[_graph_voronoi(xy, post_adj, stations, n_posts)]
    is_station = np.zeros(n_posts, dtype=bool)
    is_station[stations] = True
    return Siting(xy, post_grid, is_station, station, grid_post)


def _nearest_distinct(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each centre, the index of the nearest point not already taken by an earlier centre."""
    taken: list[int] = []
    for c in centres:
        order = np.argsort(np.hypot(*(points - c).T))
        taken.append(int(next(i for i in order if i not in taken)))
    return np.array(taken)


def _graph_voronoi(xy: np.ndarray, pairs: pd.DataFrame, sources: np.ndarray, n: int) -> np.ndarray:
    """Index (into ``sources``) of the source nearest each node along the graph.

    Nodes the graph cannot reach (an island touching the rest only at a corner) fall back to the
    nearest source in a straight line.
    """
    f, t = pairs["focal"].to_numpy(), pairs["neighbor"].to_numpy()
    length = np.hypot(*(xy[f] - xy[t]).T) + 1e-6  # zero-length edges would read as "no edge"
    graph = coo_array((length, (f, t)), shape=(n, n)).tocsr()
    _, _, src = dijkstra(graph, directed=False, indices=sources, min_only=True,
                         return_predecessors=True)
    label = np.full(n, -1)
    reached = src >= 0
    label[reached] = np.searchsorted(np.sort(sources), src[reached])
    label[reached] = np.argsort(sources)[label[reached]]
    for i in np.flatnonzero(~reached):
        label[i] = int(np.argmin(np.hypot(*(xy[sources] - xy[i]).T)))
    return label
