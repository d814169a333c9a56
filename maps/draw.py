"""Drawing steps shared by the map builders: input checks, GeoJSON properties, polygon layers."""
from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.cells import cell_to_str
from geogrid.errors import InputError
from maps.palettes import GRID_OUTLINE


def check_frame(gdf: gpd.GeoDataFrame, name: str, columns: Sequence[str]) -> gpd.GeoDataFrame:
    """``gdf`` in EPSG:4326 without empty geometries, after checking type, columns and CRS."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{name} must be a GeoDataFrame, got {type(gdf).__name__}")
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise InputError(f"{name} lacks column(s) {missing}; it needs {list(columns)} and a geometry")
    if gdf.crs is None:
        raise InputError(f"{name} has no CRS: set it with .set_crs('EPSG:4326') (or the CRS it is in)")
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if gdf.empty:
        raise InputError(f"{name} has no features with a geometry")
    return gdf if gdf.crs.equals("EPSG:4326") else gdf.to_crs("EPSG:4326")


def total_bounds(*frames: gpd.GeoDataFrame | None) -> tuple[float, float, float, float]:
    """(west, south, east, north) over the frames that are not None."""
    b = np.array([f.total_bounds for f in frames if f is not None])
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


def cell_ids(values: pd.Series) -> pd.Series:
    """H3 ids as hex strings: int64 ids exceed JavaScript's 2**53 and would be rounded."""
    if pd.api.types.is_integer_dtype(values):
        return values.map(cell_to_str)
    return values.astype(str)


def fmt(values: pd.Series, spec: str) -> pd.Series:
    """Numbers as display strings (``spec`` as in :func:`format`), missing as '–'."""
    v = pd.to_numeric(values, errors="coerce")
    return pd.Series([("–" if pd.isna(x) else format(float(x), spec)) for x in v], index=values.index)


def to_geojson(gdf: gpd.GeoDataFrame, props: Mapping[str, pd.Series | Sequence]) -> dict:
    """FeatureCollection with only ``props`` as properties; text is HTML-escaped (tooltips use innerHTML).

    Coordinates are rounded to 6 decimals (about 0.1 m), which shrinks the page by a third.
    """
    cols = {}
    for key, val in props.items():
        s = val if isinstance(val, pd.Series) else pd.Series(val, index=gdf.index)
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            s = s.map(lambda x: "" if x is None or (isinstance(x, float) and np.isnan(x))
                      else html.escape(str(x)))
        else:
            s = s.astype(object).where(s.notna(), None)
        cols[key] = [v.item() if isinstance(v, np.generic) else v for v in s]
    # shapely's vectorised writer: geopandas' to_json builds the features in a Python loop.
    geoms = shapely.transform(gdf.geometry.to_numpy(), lambda xy: np.round(xy, 6))
    geometries = json.loads("[" + ",".join(shapely.to_geojson(geoms)) + "]")
    keys = list(cols)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": dict(zip(keys, values)), "geometry": geom}
        for geom, values in zip(geometries, zip(*cols.values()) if keys else ([()] * len(geometries)))
    ]}


def add_polygons(
    m: folium.Map,
    gdf: gpd.GeoDataFrame,
    fill: pd.Series,
    tooltip: Mapping[str, tuple[str, pd.Series]],
    *,
    name: str,
    line: str | pd.Series = "#ffffff",
    weight: float = 0.5,
    fill_opacity: float = 0.75,
) -> folium.GeoJson:
    """Filled polygons coloured by ``fill``; ``tooltip`` maps field → (bilingual alias, values)."""
    props = {k: v for k, (_, v) in tooltip.items()}
    props["_fill"] = fill
    props["_line"] = line if isinstance(line, pd.Series) else pd.Series(line, index=gdf.index)
    data = to_geojson(gdf, props)

    def style(feature: dict) -> dict:
        p = feature["properties"]
        return {"fillColor": p["_fill"], "color": p["_line"], "weight": weight,
                "fillOpacity": fill_opacity, "opacity": 0.9}

    layer = folium.GeoJson(
        data, name=name, style_function=style,
        highlight_function=lambda _: {"weight": weight + 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(fields=list(tooltip), aliases=[a for a, _ in tooltip.values()],
                                      sticky=True),
    )
    return layer.add_to(m)


def add_outlines(m: folium.Map, gdf: gpd.GeoDataFrame, *, name: str, color: str = GRID_OUTLINE,
                 weight: float = 1.0, dash: str | None = None) -> folium.GeoJson:
    """Unfilled, non-interactive outlines (grid boundaries, flagged cells) that let hovers through."""
    style = {"color": color, "weight": weight, "fill": False, "dashArray": dash}
    layer = folium.GeoJson(to_geojson(gdf, {}), name=name, style_function=lambda _: style,
                           interactive=False)
    return layer.add_to(m)


def grid_fields(grids: gpd.GeoDataFrame) -> dict[str, tuple[str, pd.Series]]:
    """Tooltip fields naming a grid: code and name when the frame has them."""
    out = {}
    if "code" in grids:
        out["code"] = ("编码 Code", grids["code"])
    if "name" in grids:
        out["name"] = ("名称 Name", grids["name"])
    return out
