"""Grid redesign of an area of the active plan, saved as a draft plan planners can preview and edit.

:class:`geogrid.redesign.GridRedesign` groups H3 cells; cells do not follow grid borders, so the
proposal is fitted back to the area before it is stored: each new grid is cut to the area, and every
piece of the area no cell covered (slivers along its border) joins the new grid it shares the longest
border with. The draft then holds the active plan's other grids unchanged plus the new ones, tiling
exactly the same jurisdiction, so ``validate`` and ``preview`` compare like with like.
"""
from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from geogrid.errors import InputError, NotFound

_NEAR_DEG = 1e-5  # ~1 m: how far past the redrawn grids' union the area reaches for their kept neighbours


def fit_to_area(proposal: gpd.GeoDataFrame, area) -> gpd.GeoDataFrame:
    """``proposal``'s polygons cut to ``area``, with the area's uncovered pieces joined to a neighbour.

    A piece touching no proposed grid (an island of the area with no cell centre) joins the nearest one.
    """
    if len(proposal) == 0:
        raise InputError("the proposal holds no grid")
    prop = proposal.to_crs(4326) if proposal.crs is not None else proposal.set_crs(4326)
    # set operations in the input's own degrees (a round trip through metres would move shared vertices
    # apart); only the border lengths compared below are measured with longitude scaled to metres' shape
    cut = shapely.intersection(prop.geometry.to_numpy(), area)
    left = shapely.get_parts(shapely.difference(area, shapely.union_all(cut)))
    left = left[shapely.area(left) > 0]
    extra: list[list] = [[] for _ in range(len(cut))]
    if len(left):
        scale = np.array([np.cos(np.radians(shapely.centroid(area).y)), 1.0])
        tree = shapely.STRtree(cut)
        piece, grid = tree.query(left, predicate="intersects")  # touching or overlapping
        shared = shapely.intersection(shapely.boundary(left[piece]), cut[grid])
        border = shapely.length(shapely.transform(shared, lambda xy: xy * scale))
        best = pd.DataFrame({"piece": piece, "grid": grid, "border": border}).sort_values(
            ["piece", "border"], ascending=[True, False]).drop_duplicates("piece")
        owner = np.full(len(left), -1)
        owner[best["piece"].to_numpy()] = best["grid"].to_numpy()
        alone = np.flatnonzero(owner < 0)
        if len(alone):
            owner[alone] = tree.query_nearest(left[alone], return_distance=False)[1]
        for p, g in enumerate(owner):
            extra[g].append(left[p])
    fitted = np.array([shapely.union_all([c, *e]) if e else c for c, e in zip(cut, extra)], dtype=object)
    out = prop.copy()
    out["geometry"] = gpd.GeoSeries(fitted, crs=4326).values
    return out.set_geometry("geometry")


def propose_redesign(conn: Connection, k: int, *, codes: Sequence[str] | None = None, res: int = 9,
                     tolerance: float = 0.05, barriers: gpd.GeoDataFrame | None = None, by_post: bool = False,
                     name: str | None = None, seed: int = 0, max_seconds: float = 60.0, window=None,
                     prefix: str = "R") -> dict:
    """Redesign the active plan's grids ``codes`` (all when None) into ``k`` grids; store a draft plan.

    Workload = incidents of ``window`` per H3 cell of resolution ``res``. Hard boundaries: post areas
    (``by_post``: the union of the area's grids of each post) and ``barriers`` (rivers, rail as lines;
    polygons too). Returns the draft plan (``id``, ``name``, ``grids``) with ``report`` (balance and
    compactness of the proposal, as :class:`GridRedesign`) and ``replaced`` (the codes redrawn).
    """
    from geogrid.planning_runs import save_redesign
    from geogrid.redesign import GridRedesign, cells_with_workload
    from geogrid.store.grids import read_grids
    from geogrid.store.plans import active_plan
    from geogrid.store.read import read_incidents

    active = active_plan(conn)
    if active is None:
        raise NotFound("no active plan to redesign; load grids first")
    grids = read_grids(conn, active["id"])
    if codes:
        codes = list(dict.fromkeys(str(c) for c in codes))
        missing = sorted(set(codes) - set(grids["code"]))
        if missing:
            raise InputError(f"codes: not grids of the active plan {active['name']!r}: {', '.join(missing[:10])}")
        area_grids = grids[grids["code"].isin(codes)]
    else:
        area_grids = grids
    area = shapely.union_all(area_grids.geometry.to_numpy())
    if len(area_grids) < len(grids):
        # the area is what the kept grids leave of the plan near it: real grid files overlap and gap by
        # fractions of a square metre, and a union of redrawn grids adds those up along a kept neighbour
        outline = shapely.union_all(grids.geometry.to_numpy())
        kept = shapely.union_all(grids.loc[~grids["code"].isin(area_grids["code"])].geometry.to_numpy())
        area = shapely.difference(shapely.intersection(shapely.buffer(area, _NEAR_DEG), outline), kept)
    w = window
    inc = read_incidents(conn, w.start if w else None, w.end if w else None, w.categories if w else None,
                         w.origin if w else None)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(inc["lon"], inc["lat"]), crs=4326)
    cells = cells_with_workload(area, points, res)
    hard = []
    if by_post:
        posts = area_grids.dropna(subset=["post_code"]).dissolve(by="post_code")
        hard.append(gpd.GeoSeries(posts.geometry.values, crs=4326))
    if barriers is not None and len(barriers):
        hard.append(gpd.GeoSeries(barriers.to_crs(4326).geometry.values, crs=4326))
    hb = gpd.GeoSeries(pd.concat(hard, ignore_index=True), crs=4326) if hard else None
    model = GridRedesign(int(k), tolerance=tolerance, seed=seed, max_seconds=max_seconds).fit(cells, hb)
    proposal = fit_to_area(model.grids_, area)
    replaced = area_grids["code"].tolist()
    plan = save_redesign(conn, proposal, name or f"redesign-{active['name']}-{len(replaced)}to{k}",
                         parent_plan_id=active["id"], prefix=prefix,
                         note=f"redesign of {len(replaced)} grids into {k}", replaces=replaced)
    return {**plan, "replaced": replaced, "report": model.report_}



def read_barriers(path, crs: str | None = None) -> gpd.GeoDataFrame:
    """Hard boundaries from a vector file (rivers, rail as lines; station areas as polygons), in WGS-84.

    ``crs`` (an EPSG code, ``gcj02`` or ``bd09``) overrides the file's own; a file without one is WGS-84.
    """
    from geogrid.crs import geoms_to_wgs84

    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as e:  # pyogrio raises its own DataSourceError family, and OSError
        raise InputError(f"{path}: not a readable vector file ({e})") from None
    geoms = frame.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.all():
        raise InputError(f"{path}: no geometry to use as a boundary")
    src = crs or (frame.crs.to_string() if frame.crs is not None else "EPSG:4326")
    return gpd.GeoDataFrame(geometry=geoms_to_wgs84(geoms[~bad], src), crs=4326)
