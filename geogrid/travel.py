"""Travel time from posts to places: a straight-line model and a road-network model.

Both models answer the same three questions over point GeoSeries/GeoDataFrames in any CRS
(EPSG:4326 by default) and work in metres in a local UTM CRS:

* ``times_from(posts, points)`` — minutes from every post to every point, shape ``(points, posts)``;
* ``nearest(posts, points)`` — the index of the quickest post and its minutes, per point;
* ``within(sites, points, minutes)`` — a sparse boolean ``(points, sites)`` matrix of the pairs
  reachable within ``minutes`` (the coverage matrix of the siting models), built without a dense
  matrix.

:class:`StraightLineTravel` is always available; :class:`NetworkTravel` needs a road graph from
:func:`roads_graph` (from :mod:`geogrid.roads`, re-exported here) (or any graph of the same shape). See ``docs/coverage.md`` for the
defaults and why they were chosen.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from geogrid.errors import InputError
from geogrid.roads import generate_roads, roads_graph  # noqa: F401  (part of this module's API)

# Road distance / straight-line distance. Measured means sit at 1.2-1.4 for urban road
# networks (Ballou et al. 2002; Boscoe et al. 2012 report 1.417 for US routes, lower for long trips).
DEFAULT_CIRCUITY = 1.3
# Average emergency driving speeds including junctions and congestion, not speed limits.
DEFAULT_URBAN_KMH = 30.0
DEFAULT_RURAL_KMH = 60.0
# Speed on the unmapped leg between a point and its nearest road node (lanes, yards, on foot).
DEFAULT_ACCESS_KMH = 15.0
_EPS_MIN = 1e-9  # csgraph drops zero-weight edges: floor every edge at a nanominute.


def _kmh_to_m_per_min(kmh):
    return np.asarray(kmh, dtype=float) * 1000.0 / 60.0


def points_xy(points, crs) -> np.ndarray:
    """``(n, 2)`` coordinates of point geometries in ``crs``; a missing CRS is taken as EPSG:4326."""
    if isinstance(points, gpd.GeoDataFrame):
        points = points.geometry
    if not isinstance(points, gpd.GeoSeries):
        raise InputError(f"points must be a GeoSeries or GeoDataFrame of Points, got {type(points).__name__}")
    if points.crs is None:
        points = points.set_crs(4326)
    if len(points) and not (points.geom_type == "Point").all():
        raise InputError("points must all be Point geometries (use .centroid for polygons)")
    points = points.to_crs(crs)
    return np.column_stack([points.x.to_numpy(), points.y.to_numpy()]) if len(points) else np.empty((0, 2))


def _local_crs(points) -> CRS:
    s = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if s.crs is None:
        s = s.set_crs(4326)
    if s.crs.is_projected:
        return s.crs
    return s.estimate_utm_crs()


class TravelModel(ABC):
    """Minutes from posts to points. Subclasses implement :meth:`times_from` and :meth:`within`."""

    @abstractmethod
    def times_from(self, posts, points) -> np.ndarray:
        """Minutes from each post to each point, shape ``(len(points), len(posts))``."""

    @abstractmethod
    def within(self, sites, points, minutes: float) -> sparse.csr_matrix:
        """Sparse boolean ``(len(points), len(sites))``: True where the site reaches the point in time."""

    def nearest(self, posts, points) -> tuple[np.ndarray, np.ndarray]:
        """Index (into ``posts``) of the quickest post for each point, and its minutes."""
        if len(posts) == 0:
            raise InputError("posts is empty: coverage needs at least one post")
        t = self.times_from(posts, points)
        idx = np.argmin(t, axis=1) if len(t) else np.empty(0, int)
        return idx, t[np.arange(len(t)), idx]


class StraightLineTravel(TravelModel):
    """Straight-line distance × circuity at an urban or a rural speed.

    Parameters
    ----------
    circuity : float
        Road distance over straight-line distance (default 1.3).
    urban_kmh, rural_kmh : float
        Average driving speeds. A trip takes the speed of the area its *destination* lies in.
    urban_area : shapely geometry, GeoSeries or GeoDataFrame, optional
        Where the urban speed applies (EPSG:4326 unless the GeoSeries says otherwise). ``None``:
        the urban speed everywhere (the cautious choice for a city). See :meth:`from_grids`.
    crs : optional
        Metric CRS to measure in; default a UTM zone estimated from the points.
    """

    def __init__(self, circuity: float = DEFAULT_CIRCUITY, urban_kmh: float = DEFAULT_URBAN_KMH,
                 rural_kmh: float = DEFAULT_RURAL_KMH, urban_area=None, crs=None):
        for name, v in (("circuity", circuity), ("urban_kmh", urban_kmh), ("rural_kmh", rural_kmh)):
            if not np.isfinite(v) or v <= 0:
                raise InputError(f"{name} must be a positive number, got {v!r}")
        if circuity < 1:
            raise InputError(f"circuity must be >= 1 (roads are never shorter than a straight line), got {circuity}")
        self.circuity, self.urban_kmh, self.rural_kmh = float(circuity), float(urban_kmh), float(rural_kmh)
        if isinstance(urban_area, (gpd.GeoDataFrame, gpd.GeoSeries)):
            s = urban_area.geometry if isinstance(urban_area, gpd.GeoDataFrame) else urban_area
            urban_area = gpd.GeoSeries([s.union_all()], crs=s.crs or 4326)
        elif urban_area is not None:
            urban_area = gpd.GeoSeries([urban_area], crs=4326)
        self.urban_area = urban_area
        self.crs = crs

    @classmethod
    def from_grids(cls, grids: gpd.GeoDataFrame, **kwargs) -> StraightLineTravel:
        """Model whose urban area is the union of the grids with ``kind == "urban"``."""
        if "kind" not in grids:
            raise InputError("grids needs a 'kind' column (urban/rural) to derive the urban area")
        return cls(urban_area=grids[grids["kind"] == "urban"], **kwargs)

    def _setup(self, points):
        crs = self.crs or _local_crs(points)
        xy = points_xy(points, crs)
        speed = np.full(len(xy), self.urban_kmh)
        if self.urban_area is not None:
            area = self.urban_area.to_crs(crs).iloc[0]
            speed = np.where(shapely.intersects_xy(area, xy[:, 0], xy[:, 1]), self.urban_kmh, self.rural_kmh)
        return crs, xy, _kmh_to_m_per_min(speed) / self.circuity

    def times_from(self, posts, points) -> np.ndarray:
        crs, xy, mpm = self._setup(points)
        return cdist(xy, points_xy(posts, crs)) / mpm[:, None]

    def nearest(self, posts, points) -> tuple[np.ndarray, np.ndarray]:
        # The speed depends on the destination only, so the nearest post is the quickest one.
        if len(posts) == 0:
            raise InputError("posts is empty: coverage needs at least one post")
        crs, xy, mpm = self._setup(points)
        dist, idx = cKDTree(points_xy(posts, crs)).query(xy)
        return np.asarray(idx, dtype=int), dist / mpm

    def within(self, sites, points, minutes: float) -> sparse.csr_matrix:
        crs, xy, mpm = self._setup(points)
        sxy = points_xy(sites, crs)
        radius = minutes * mpm.max(initial=0.0)
        # output_type="ndarray" keeps zero distances (a point on a site), which the coo output drops.
        pairs = cKDTree(xy).sparse_distance_matrix(cKDTree(sxy), radius, output_type="ndarray")
        keep = pairs["v"] / mpm[pairs["i"]] <= minutes
        i, j = pairs["i"][keep], pairs["j"][keep]
        return sparse.csr_matrix((np.ones(len(i), bool), (i, j)), shape=(len(xy), len(sxy)))


class NetworkTravel(TravelModel):
    """Shortest driving time over a road graph, plus a slow off-network leg at each end.

    Points and posts are snapped to the nearest node of the graph's largest connected component
    (a KD-tree); the leg to that node is straight-line at ``access_kmh``. Shortest paths run in
    scipy's C Dijkstra (``scipy.sparse.csgraph``) over the graph's adjacency: the same answer as
    networkx's multi-source Dijkstra at a fraction of the time, and it labels each node with its
    nearest source in the same pass.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes with ``x``, ``y`` in ``graph.graph["crs"]`` (metres); edges with ``minutes``.
    access_kmh : float
        Speed of the off-network leg (default 15 km/h).
    """

    def __init__(self, graph: nx.Graph, access_kmh: float = DEFAULT_ACCESS_KMH):
        if "crs" not in graph.graph:
            raise InputError("graph.graph['crs'] is missing: build the graph with roads_graph()")
        if graph.number_of_nodes() == 0:
            raise InputError("the road graph has no nodes")
        if not np.isfinite(access_kmh) or access_kmh <= 0:
            raise InputError(f"access_kmh must be a positive number, got {access_kmh!r}")
        self.graph, self.access_kmh, self.crs = graph, float(access_kmh), CRS(graph.graph["crs"])
        nodes = list(graph.nodes)
        pos = {n: i for i, n in enumerate(nodes)}
        try:
            self._xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in nodes], dtype=float)
        except KeyError as exc:
            raise InputError("every graph node needs 'x' and 'y' attributes (metres)") from exc
        u, v, w = [], [], []
        for a, b, d in graph.edges(data=True):
            u.append(pos[a]), v.append(pos[b]), w.append(max(float(d["minutes"]), _EPS_MIN))
        u, v, w = np.array(u, int), np.array(v, int), np.array(w)
        n = len(nodes)
        self._adj = sparse.coo_matrix((np.r_[w, w], (np.r_[u, v], np.r_[v, u])), shape=(n, n)).tocsr()
        _, labels = connected_components(self._adj, directed=False)
        self._main = np.flatnonzero(labels == np.bincount(labels).argmax())
        self._tree = cKDTree(self._xy[self._main])

    def snap(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Graph node index (row of the adjacency) of each point and minutes of the access leg."""
        dist, k = self._tree.query(points_xy(points, self.crs))
        return self._main[np.asarray(k, dtype=int)], dist / _kmh_to_m_per_min(self.access_kmh)

    def _augmented(self, posts):
        """Adjacency with one extra source node per post, joined to its snapped node by the access leg."""
        node, access = self.snap(posts)
        n, p = self._adj.shape[0], len(node)
        extra = sparse.coo_matrix((access + _EPS_MIN, (n + np.arange(p), node)), shape=(n + p, n + p))
        base = sparse.block_diag([self._adj, sparse.csr_matrix((p, p))], format="coo")
        return (base + extra).tocsr(), n + np.arange(p)

    def times_from(self, posts, points) -> np.ndarray:
        graph, sources = self._augmented(posts)
        node, access = self.snap(points)
        d = dijkstra(graph, directed=True, indices=sources)
        return d[:, node].T + access[:, None]

    def nearest(self, posts, points) -> tuple[np.ndarray, np.ndarray]:
        if len(posts) == 0:
            raise InputError("posts is empty: coverage needs at least one post")
        graph, sources = self._augmented(posts)
        node, access = self.snap(points)
        d, _, src = dijkstra(graph, directed=True, indices=sources, min_only=True, return_predecessors=True)
        return src[node] - sources[0], d[node] + access

    def within(self, sites, points, minutes: float, chunk: int = 64) -> sparse.csr_matrix:
        graph, sources = self._augmented(sites)
        node, access = self.snap(points)
        rows, cols = [], []
        for start in range(0, len(sources), chunk):  # chunks bound memory at chunk × nodes floats
            d = dijkstra(graph, directed=True, indices=sources[start:start + chunk], limit=minutes)
            j, i = np.nonzero(d[:, node] + access[None, :] <= minutes)
            rows.append(i), cols.append(j + start)
        i, j = (np.concatenate(rows), np.concatenate(cols)) if rows else (np.empty(0, int),) * 2
        return sparse.csr_matrix((np.ones(len(i), bool), (i, j)), shape=(len(node), len(sources)))
