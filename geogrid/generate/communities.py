"""Communities, grid names and codes, and key-area flags (老旧小区, 商业街区, 城中村)."""
from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import shapely
from scipy.cluster.vq import kmeans2

from geogrid.generate.hotspots import Hotspot
from geogrid.generate.names import place_names

GRIDS_PER_COMMUNITY = {"urban": 4, "rural": 2}  # a community has a few grids, a village one or two
#: Target share of urban grids carrying each key-area flag (they overlap a little: ~15 % in all).
KEY_AREA_SHARES = {"old_compound": 0.07, "commercial_street": 0.04, "urban_village": 0.05}


def name_grids(rng: np.random.Generator, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Group grids into communities/villages within each (district, post, kind) and name them.

    Adds ``community``, ``name`` and ``code`` and returns the grids sorted by code (the index is
    kept, so callers can map positions from before the sort).
    """
    xy = shapely.get_coordinates(grids.geometry.centroid.values)
    community = np.empty(len(grids), dtype=object)
    number = np.zeros(len(grids), dtype=np.int64)
    groups = grids.groupby(["district", "post", "kind"], sort=True).indices
    for (_, _, kind), idx in groups.items():
        k = int(np.ceil(len(idx) / GRIDS_PER_COMMUNITY[kind]))
        labels = _cluster(rng, xy[idx], k)
        names = place_names(rng, k, rural=kind == "rural")
        for c in range(k):
            members = idx[labels == c]
            members = members[np.lexsort((xy[members, 0], -xy[members, 1]))]  # north-west first
            community[members] = names[c]
            number[members] = np.arange(1, members.size + 1)
    out = grids.assign(community=community, grid_no=number)
    out = out.sort_values(["district", "post", "community", "grid_no"], kind="stable")
    out["name"] = out["district"] + " " + out["community"] + " 第" + out["grid_no"].astype(str) + "网格"
    out["code"] = [f"HF-{i:04d}" for i in range(1, len(out) + 1)]
    return out.drop(columns="grid_no")


def _cluster(rng: np.random.Generator, xy: np.ndarray, k: int) -> np.ndarray:
    """k-means labels of a few dozen points (scipy's kmeans2: sklearn's per-call overhead is ~50 ms)."""
    if k <= 1:
        return np.zeros(len(xy), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty cluster just means one community fewer
        _, labels = kmeans2(xy - xy.mean(axis=0), k, minit="++", rng=rng)
    return labels


def flag_key_areas(rng: np.random.Generator, grids: gpd.GeoDataFrame,
                   hotspots: list[Hotspot], core_radius: float) -> list[list[str]]:
    """Key-area flags per grid, placed where they would be in a real city.

    Commercial streets are the grids under the street and market hotspots (topped up near the
    centre); old compounds cluster in the old centre and under the burglary-prone estates; urban
    villages sit on the fringe of the core.
    """
    urban = np.flatnonzero(grids["kind"].to_numpy() == "urban")
    geoms = grids.geometry.values
    r = grids["dist_m"].to_numpy() / core_radius
    flags: list[list[str]] = [[] for _ in range(len(grids))]

    def under(kinds: tuple[str, ...]) -> np.ndarray:
        polys = [h.half_peak() for h in hotspots if h.kind in kinds]
        if not polys:
            return np.empty(0, dtype=int)
        return urban[shapely.intersects(geoms[urban], shapely.union_all(polys))]

    plan = {
        "commercial_street": (under(("street", "market")), np.exp(-2.0 * r[urban])),
        "old_compound": (under(("estate",)), np.exp(-3.0 * r[urban])),
        "urban_village": (np.empty(0, dtype=int), np.clip(r[urban] - 0.6, 0.0, None) ** 2),
    }
    for flag, (seeded, weight) in plan.items():
        target = round(KEY_AREA_SHARES[flag] * urban.size)
        chosen = list(seeded[:target])
        rest = target - len(chosen)
        w = np.where(np.isin(urban, chosen), 0.0, weight)
        if rest > 0 and w.sum() > 0:
            chosen += list(rng.choice(urban, size=min(rest, int((w > 0).sum())), replace=False,
                                      p=w / w.sum()))
        for i in chosen:
            flags[i].append(flag)
    return flags
