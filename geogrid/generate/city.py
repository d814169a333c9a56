"""The demo city: grids, posts, staff, incidents and the planted hotspots, all in EPSG:4326."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely.geometry import Polygon

from geogrid.errors import InputError
from geogrid.generate.communities import flag_key_areas, name_grids
from geogrid.generate.hotspots import Hotspot, plant_hotspots
from geogrid.generate.incidents import AreaSampler, IncidentModel, simulate
from geogrid.generate.posts import grid_adjacency, site_posts
from geogrid.generate.rhythms import LABELS, Calendar
from geogrid.generate.staff import assign_staff
from geogrid.generate.territory import LocalFrame, build_territory

CRS = "EPSG:4326"
MIN_GRIDS = 50
GRID_COLUMNS = ["code", "name", "kind", "population", "key_areas", "post_code", "district"]


@dataclass
class City:
    """A generated city. Frames are in EPSG:4326; ``boundary`` is the jurisdiction (union of grids)."""

    grids: gpd.GeoDataFrame
    posts: gpd.GeoDataFrame
    staff: pd.DataFrame
    incidents: gpd.GeoDataFrame
    planted: gpd.GeoDataFrame
    boundary: Polygon

    def summary(self) -> dict[str, int]:
        """Counts of everything generated, e.g. for a CLI line or a log."""
        role = self.staff["role"].value_counts()
        kind = self.grids["kind"].value_counts()
        return {
            "grids": len(self.grids),
            "urban_grids": int(kind.get("urban", 0)),
            "rural_grids": int(kind.get("rural", 0)),
            "key_area_grids": int(self.grids["key_areas"].map(bool).sum()),
            "stations": int((self.posts["kind"] == "station").sum()),
            "posts": int((self.posts["kind"] == "post").sum()),
            "officers": int(role.get("officer", 0)),
            "auxiliaries": int(role.get("auxiliary", 0)),
            "grid_workers": int(role.get("grid_worker", 0)),
            "incidents": len(self.incidents),
            "planted_hotspots": len(self.planted),
            "population": int(self.grids["population"].sum()),
        }


@dataclass
class Base:
    """The city without incidents, in metres, plus what the incident model needs."""

    frame: LocalFrame
    grids: gpd.GeoDataFrame  # metres, sorted by code, with a 'post' index column
    posts: gpd.GeoDataFrame  # metres
    staff: pd.DataFrame
    hotspots: list[Hotspot]
    jurisdiction: Polygon  # metres

    def incident_model(self, calendar: Calendar) -> IncidentModel:
        """The incident model of this city over ``calendar``'s period."""
        return IncidentModel(
            self.jurisdiction,
            AreaSampler(self.grids.geometry.values, self.grids["population"].to_numpy()),
            self.hotspots,
            shapely.get_coordinates(self.posts.geometry.values),
            calendar,
        )


def generate_city(seed: int = 42, n_incidents: int = 200_000, start: str = "2025-01-01",
                  days: int = 365, n_grids: int = 860, n_posts: int = 40, n_officers: int = 320,
                  n_auxiliaries: int = 600) -> City:
    """Generate the demo city around Hefei: a pure function of its arguments.

    Parameters
    ----------
    seed
        Same seed, same city (every frame identical). Grids, posts and staff do not depend on
        ``n_incidents``, ``start`` or ``days``.
    n_incidents, start, days
        Incidents over ``days`` days from local midnight of ``start`` (Asia/Shanghai).
    n_grids, n_posts, n_officers, n_auxiliaries
        Sizes; the defaults are DOMAIN.md's provincial capital (860 grids, 320 officers).

    Returns
    -------
    City
        ``grids``, ``posts``, ``staff``, ``incidents``, ``planted`` and ``boundary``.

    Examples
    --------
    >>> city = generate_city(seed=1, n_incidents=2_000, n_grids=120, n_posts=8, n_officers=40,
    ...                      n_auxiliaries=60)
    >>> city.summary()["grids"], len(city.incidents)
    (120, 2000)
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    _check(n_incidents=n_incidents, days=days, n_grids=n_grids, n_posts=n_posts,
           n_officers=n_officers, n_auxiliaries=n_auxiliaries)
    if n_grids < MIN_GRIDS:
        raise InputError(
            f"n_grids must be at least {MIN_GRIDS} (a core that holds 8–12 hotspots), got {n_grids}")
    base = build_base(seed, n_grids, n_posts, n_officers, n_auxiliaries)
    calendar = Calendar(start, days)
    model = base.incident_model(calendar)
    draw = simulate(_streams(seed)[5], model, n_incidents)
    order = np.argsort(draw.seconds, kind="stable")
    lon, lat = base.frame.to_lonlat(*draw.xy[order].T)
    incidents = gpd.GeoDataFrame(
        {
            "external_id": _serials(f"HF{seed % 10000:04d}-", n_incidents, 8),
            "category": _take(LABELS, draw.category[order]),
            "priority": _take(["normal", "urgent"], draw.urgent[order]),
            "origin": _take(["reported", "discovered"], draw.discovered[order]),
            "occurred_at": calendar.to_timestamps(draw.seconds[order]),
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs=CRS,
    )
    return City(
        grids=_to_wgs84(base.frame, base.grids[GRID_COLUMNS + ["geometry"]]),
        posts=_to_wgs84(base.frame, base.posts),
        staff=base.staff,
        incidents=incidents,
        planted=_planted(base.frame, base.hotspots),
        boundary=base.frame.geoms_to_lonlat(np.array([base.jurisdiction]))[0],
    )


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent random streams per step, so that one step's draws never shift another's."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]


def build_base(seed: int, n_grids: int, n_posts: int, n_officers: int,
               n_auxiliaries: int) -> Base:
    """Everything but the incidents: territory, hotspots, posts, names, key areas and staff."""
    rngs = _streams(seed)
    territory = build_territory(rngs[0], n_grids)
    grids = territory.grids
    hotspots = plant_hotspots(rngs[1], territory.core)
    siting = site_posts(rngs[2], grids, grid_adjacency(grids), n_posts, seed)
    core_radius = np.sqrt(territory.core.area / np.pi)
    grids = grids.assign(post=siting.grid_post,
                         key_areas=flag_key_areas(rngs[3], grids, hotspots, core_radius))
    grids = name_grids(rngs[3], grids)

    posts = _posts_frame(siting, grids)
    grids["post_code"] = posts["code"].to_numpy()[grids["post"].to_numpy()]
    posts = posts.sort_values("code").reset_index(drop=True)
    station_of_post = dict(zip(posts["code"], posts["station_code"]))
    staff = assign_staff(rngs[4], grids.reset_index(drop=True), station_of_post, n_officers,
                         n_auxiliaries)
    jurisdiction = shapely.coverage_union_all(grids.geometry.values)
    return Base(LocalFrame(), grids.reset_index(drop=True), posts, staff, hotspots, jurisdiction)


def _posts_frame(siting, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Posts named after the community they stand in; codes number stations first."""
    home = grids.loc[siting.grid]  # grids keep their pre-sort index, which is the position
    order = np.lexsort((home["code"].to_numpy(), ~siting.is_station))
    codes = np.empty(len(order), dtype=object)
    codes[order] = [f"HF-P{i:03d}" for i in range(1, len(order) + 1)]
    community = home["community"].str.replace("社区", "").str.replace("村", "")
    name = np.where(siting.is_station, home["district"] + community + "派出所",
                    home["community"] + "警务室")
    frame = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": name,
            "kind": np.where(siting.is_station, "station", "post"),
            "station_code": codes[siting.station],
            "district": home["district"].to_numpy(),
        },
        geometry=shapely.points(siting.xy),
    )
    return frame  # in siting order: row i is post i of ``siting``


def _take(labels, index: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``labels[index]`` as a pandas string array, built in Arrow (10x faster than from objects)."""
    return pd.array(pc.take(pa.array(list(labels), pa.string()), pa.array(index.astype(np.int32))),
                    dtype="str")


def _serials(prefix: str, n: int, width: int) -> pd.api.extensions.ExtensionArray:
    """``prefix`` + zero-padded 1..n, as a pandas string array."""
    digits = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), width, "0")
    return pd.array(pc.binary_join_element_wise(prefix, digits, ""), dtype="str")


def _to_wgs84(frame: LocalFrame, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geoms = frame.geoms_to_lonlat(gdf.geometry.values)
    return gpd.GeoDataFrame(gdf.drop(columns="geometry").reset_index(drop=True),
                            geometry=geoms, crs=CRS)


def _planted(frame: LocalFrame, hotspots: list[Hotspot]) -> gpd.GeoDataFrame:
    polys = np.array([h.half_peak() for h in hotspots], dtype=object)
    return gpd.GeoDataFrame(
        {
            "id": [h.id for h in hotspots],
            "shape": [h.shape for h in hotspots],
            "kind": [h.kind for h in hotspots],
            "strength": [h.strength for h in hotspots],
            "trend": [h.trend for h in hotspots],
        },
        geometry=frame.geoms_to_lonlat(polys),
        crs=CRS,
    )


def _check(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
