"""Road networks: a routable graph from a roads table, and a plausible network for the demo city.

Split from :mod:`geogrid.travel` (which re-exports both functions) to keep each module one concept.
"""
from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import Delaunay
from shapely.geometry import LineString, Point

from geogrid.errors import InputError

# kind -> average emergency driving speed (km/h) of the generated network; see docs/coverage.md.
ROAD_SPEEDS = {"ring": 60.0, "highway": 70.0, "arterial": 40.0, "collector": 30.0, "local": 25.0, "rural": 50.0}
_MAX_SEGMENT_M = 250.0  # densify so that points snap to a node near them, not to a far junction


def roads_graph(roads: gpd.GeoDataFrame, *, node: bool = True, max_segment_m: float = _MAX_SEGMENT_M) -> nx.Graph:
    """Undirected routable graph of a roads table.

    Parameters
    ----------
    roads : GeoDataFrame
        (Multi)LineStrings with ``speed_kmh`` (> 0) and optionally ``kind``; CRS EPSG:4326 if unset.
    node : bool
        Join lines where they cross (no grade separation). With ``False`` lines meet only at shared
        vertices, as in a topologically clean roads table.
    max_segment_m : float
        Longest edge; longer segments are split so that snapping finds a node nearby.

    Returns
    -------
    networkx.Graph
        Nodes ``(x, y)`` tuples with ``x``, ``y`` attributes in a local UTM CRS (``graph.graph["crs"]``);
        edges with ``length_m``, ``minutes``, ``speed_kmh`` and ``kind``. Where two roads overlap the
        faster one is kept.
    """
    if not isinstance(roads, gpd.GeoDataFrame) or "speed_kmh" not in roads:
        raise InputError("roads must be a GeoDataFrame of LineStrings with a 'speed_kmh' column")
    roads = roads[roads.geometry.notna() & ~roads.geometry.is_empty]
    if roads.crs is None:
        roads = roads.set_crs(4326)
    if not roads.geom_type.isin(["LineString", "MultiLineString"]).all():
        raise InputError("roads geometries must be LineString or MultiLineString")
    speed = pd.to_numeric(roads["speed_kmh"], errors="coerce").to_numpy(float)
    if len(speed) == 0 or not (np.isfinite(speed) & (speed > 0)).all():
        raise InputError("roads['speed_kmh'] must be a positive number on every row (and roads non-empty)")
    crs = roads.crs if roads.crs.is_projected else roads.estimate_utm_crs()
    lines = roads.to_crs(crs).geometry.to_numpy()
    kinds = roads["kind"].astype(str).to_numpy() if "kind" in roads else np.full(len(roads), "road")
    if node:
        pieces = shapely.get_parts(shapely.union_all(lines))
        # union_all drops attributes: give each noded piece the fastest road it lies on.
        mid = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
        piece_i, line_i = shapely.STRtree(lines).query(mid, predicate="dwithin", distance=1e-3)
        best = pd.DataFrame({"p": piece_i, "s": speed[line_i], "k": kinds[line_i]}).sort_values("s")
        best = best.drop_duplicates("p", keep="last").set_index("p")
        pieces = pieces[best.index.to_numpy()]
        p_speed, p_kind = best["s"].to_numpy(), best["k"].to_numpy()
    else:
        parts, idx = shapely.get_parts(lines, return_index=True)
        pieces, p_speed, p_kind = parts, speed[idx], kinds[idx]
    graph = nx.Graph(crs=crs.to_string())
    for geom, s, k in zip(shapely.segmentize(pieces, max_segment_m), p_speed, p_kind):
        xy = np.round(shapely.get_coordinates(geom), 3)  # mm keys: shared vertices become one node
        seg = np.hypot(*np.diff(xy, axis=0).T)
        for (a, b), length in zip(zip(map(tuple, xy[:-1]), map(tuple, xy[1:])), seg):
            if length == 0:
                continue
            minutes = length / (s * 1000.0 / 60.0)
            if graph.has_edge(a, b) and graph.edges[a, b]["minutes"] <= minutes:
                continue
            graph.add_edge(a, b, length_m=float(length), minutes=float(minutes), speed_kmh=float(s), kind=str(k))
    for n in graph.nodes:
        graph.nodes[n]["x"], graph.nodes[n]["y"] = n
    return graph


def generate_roads(grids: gpd.GeoDataFrame, seed: int = 0, *, radials: int = 8) -> gpd.GeoDataFrame:
    """A plausible ring-radial road network for a city made of grids (the demo city).

    Ring roads around the urban centre, radial arterials that become highways outside the urban
    area, a rotated street lattice in the dense core, and collector/rural roads joining every grid
    to the network: a minimum spanning tree over the Delaunay triangulation of grid points and
    backbone vertices, plus a seeded share of the short non-tree Delaunay edges for redundancy.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons with ``kind`` (``urban``/``rural``).
    seed : int
        Seeds the radial angles, the lattice rotation and the extra links.
    radials : int
        Number of radial arterials.

    Returns
    -------
    GeoDataFrame
        LineStrings in EPSG:4326 with ``kind`` and ``speed_kmh`` (see ``ROAD_SPEEDS``).
    """
    if not isinstance(grids, gpd.GeoDataFrame) or "kind" not in grids or len(grids) == 0:
        raise InputError("grids must be a non-empty GeoDataFrame with a 'kind' column (urban/rural)")
    rng = np.random.default_rng(seed)
    grids = grids.set_crs(4326) if grids.crs is None else grids
    crs = grids.estimate_utm_crs()
    g = grids.to_crs(crs)
    area = g.union_all()
    is_urban = (g["kind"].astype(str) == "urban").to_numpy()
    urban = g[is_urban].union_all() if is_urban.any() else area
    centre = urban.centroid
    r_urban = max(np.sqrt(urban.area / np.pi), 500.0)
    r_all = max(np.hypot(*(shapely.get_coordinates(area.boundary) - [centre.x, centre.y]).T).max(), r_urban)
    reach = area.buffer(500.0)
    out: list[tuple[object, str]] = []

    for r in (0.5 * r_urban, r_urban, 1.6 * r_urban):
        if r < r_all:
            out.append((shapely.segmentize(centre.buffer(r, quad_segs=32).exterior, 500.0).intersection(reach), "ring"))
    angles = rng.uniform(0, 2 * np.pi / radials) + 2 * np.pi * np.arange(radials) / radials
    angles += rng.normal(0, 0.08, radials)
    inner_disc = centre.buffer(1.2 * r_urban)
    for a in angles:
        ray = shapely.segmentize(LineString([(centre.x, centre.y), (centre.x + 1.05 * r_all * np.cos(a),
                                                                    centre.y + 1.05 * r_all * np.sin(a))]), 500.0)
        out.append((ray.intersection(inner_disc).intersection(reach), "arterial"))
        out.append((ray.difference(inner_disc).intersection(reach), "highway"))
    core = centre.buffer(0.6 * r_urban)
    spacing, theta = 400.0, rng.uniform(0, np.pi / 2)
    ticks = np.arange(-0.6 * r_urban, 0.6 * r_urban + spacing, spacing)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    for t in ticks:
        for seg in (np.array([[t, -r_urban], [t, r_urban]]), np.array([[-r_urban, t], [r_urban, t]])):
            xy = seg @ rot.T + [centre.x, centre.y]
            out.append((LineString(xy).intersection(core), "local"))

    # every third backbone vertex (~1.5 km apart) is a place where grid links may join the backbone
    backbone = np.vstack([shapely.get_coordinates(geom)[::3] for geom, kind in out if kind != "local"])
    grid_pts = shapely.get_coordinates(g.geometry.representative_point())
    out += _links(grid_pts, np.unique(np.round(backbone, 3), axis=0), centre, r_urban, rng)
    roads = gpd.GeoDataFrame({"kind": [k for _, k in out]}, geometry=[geom for geom, _ in out], crs=crs)
    roads = roads[~roads.geometry.is_empty].explode(index_parts=False)
    roads = roads[roads.geom_type == "LineString"].reset_index(drop=True)
    roads["speed_kmh"] = roads["kind"].map(ROAD_SPEEDS).astype(float)
    return roads.to_crs(4326)


def _links(grid_pts: np.ndarray, backbone: np.ndarray, centre: Point, r_urban: float, rng: np.random.Generator):
    """MST over the Delaunay edges of grid and backbone points, plus ~30 % of the shorter other edges.

    Edges between two backbone points are left out: the backbone already joins them.
    """
    pts = np.vstack([grid_pts, backbone])
    if len(pts) < 3:
        return []
    tri = Delaunay(pts)
    e = np.vstack([tri.simplices[:, [0, 1]], tri.simplices[:, [1, 2]], tri.simplices[:, [0, 2]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.hypot(*(pts[e[:, 0]] - pts[e[:, 1]]).T)
    n, n_grid = len(pts), len(grid_pts)
    # backbone-backbone edges weigh ~0 so the tree treats the backbone as one connected piece
    weight = np.where(e[:, 0] >= n_grid, 1e-6, length)
    mst = minimum_spanning_tree(coo_matrix((weight, (e[:, 0], e[:, 1])), shape=(n, n))).tocoo()
    tree = set(zip(np.minimum(mst.row, mst.col).tolist(), np.maximum(mst.row, mst.col).tolist()))
    in_tree = np.array([(int(a), int(b)) in tree for a, b in e])
    extra = ~in_tree & (length < np.median(length)) & (rng.random(len(e)) < 0.3)
    out = []
    for a, b in e[(in_tree | extra) & (e[:, 0] < n_grid)]:
        mid = (pts[a] + pts[b]) / 2
        kind = "collector" if np.hypot(mid[0] - centre.x, mid[1] - centre.y) < r_urban else "rural"
        out.append((LineString([pts[a], pts[b]]), kind))
    return out


# --- the roads table -------------------------------------------------------------------------------
COVER_SHARE = 0.9  # a network "covers" a plan when at least this share of its grids touch a road
_MARGIN_DEG = 0.05  # roads read around a plan: ~5 km beyond its extent, so routes may leave and re-enter


def read_roads(conn, plan_id: int | None = None, source: str | None = None) -> gpd.GeoDataFrame:
    """Roads of the store (EPSG:4326): ``id, source, name, kind, speed_kmh, oneway, geometry``.

    With ``plan_id`` only roads within about 5 km of the plan's grids are read; with ``source`` only
    that network.
    """
    from sqlalchemy import text

    conds, binds = [], {}
    if plan_id is not None:
        conds.append("geom && (SELECT ST_Expand(ST_Extent(geom)::geometry, :m) FROM grids WHERE plan_id = :p)")
        binds.update(p=int(plan_id), m=_MARGIN_DEG)
    if source is not None:
        conds.append("source = :s")
        binds["s"] = source
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    rows = conn.execute(text(f"SELECT id, source, name, kind, speed_kmh, oneway, ST_AsBinary(geom) AS wkb "
                             f"FROM roads {where} ORDER BY id"), binds).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=["id", "source", "name", "kind", "speed_kmh", "oneway", "wkb"])
    geom = shapely.from_wkb(df.pop("wkb").map(bytes).to_numpy()) if len(df) else []
    return gpd.GeoDataFrame(df, geometry=geom, crs=4326)


def roads_cover_share(conn, plan_id: int) -> float:
    """Share of the plan's grids that a stored road crosses or touches (0 without roads or grids)."""
    from sqlalchemy import text

    v = conn.execute(text(
        "SELECT avg((EXISTS (SELECT 1 FROM roads r WHERE ST_Intersects(r.geom, g.geom)))::int) "
        "FROM grids g WHERE g.plan_id = :p"), {"p": int(plan_id)}).scalar()
    return float(v or 0.0)
