"""Map builders behind ``geogrid map hotspots|emerging|forecast|tiers|allocation|beats|coverage``.

Each takes GeoDataFrames (any CRS; drawn in EPSG:4326), draws them over geogrid's own grid outlines
(there is no base map offline), adds a bilingual legend, and returns the :class:`folium.Map`; given
``path`` it also writes the self-contained HTML with :func:`maps.offline.save_offline`.
"""
from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import mapclassify
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geogrid.errors import InputError
from maps import palettes as pal
from maps.draw import (add_outlines, add_polygons, cell_ids, check_frame, fmt, grid_fields, to_geojson,
                       total_bounds)
from maps.legend import Legend, LegendRow
from maps.offline import offline_map, save_offline

MAX_BEAT_ROWS = 20  # legend rows for beats; the rest are summed up in one row


def _finish(m: folium.Map, legend: Legend, grids: gpd.GeoDataFrame | None,
            path: str | Path | None) -> folium.Map:
    if grids is not None:
        add_outlines(m, grids, name="网格 Grids")
    legend.add_to(m)
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    if path is not None:
        save_offline(m, path)
    return m


def _grids(grids: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    return None if grids is None else check_frame(grids, "grids", [])


def hotspot_map(cells: gpd.GeoDataFrame, path: str | Path | None = None, *,
                grids: gpd.GeoDataFrame | None = None) -> folium.Map:
    """Gi* hot and cold spots in ArcGIS Gi_Bin colours.

    Parameters
    ----------
    cells : GeoDataFrame
        Columns ``cell``, ``z``, ``p``, ``gi_bin`` (-3..3; 3 = hot at 99 % confidence).
    path : path, optional
        Where to save the offline HTML.
    grids : GeoDataFrame, optional
        Grid polygons drawn as light grey outlines.
    """
    cells, grids = check_frame(cells, "cells", ["cell", "z", "p", "gi_bin"]), _grids(grids)
    bins = pd.to_numeric(cells["gi_bin"], errors="coerce")
    if not bins.isin(list(pal.GI_BINS)).all():
        bad = sorted(set(bins) - set(pal.GI_BINS))
        raise InputError(f"cells.gi_bin must be integers from -3 to 3, got {bad}")
    bins = bins.astype(int)
    m = offline_map(bounds=total_bounds(cells, grids))
    add_polygons(m, cells, bins.map(lambda b: pal.GI_BINS[b].color), {
        "cell": ("单元 Cell", cell_ids(cells["cell"])),
        "z": ("Gi* z", fmt(cells["z"], ".2f")),
        "p": ("p", fmt(cells["p"], ".4f")),
        "class": ("类别 Class", bins.map(lambda b: pal.GI_BINS[b].label)),
    }, name="热点 Hotspots")
    shown = [pal.GI_BINS[b] for b in sorted(pal.GI_BINS, reverse=True)]
    return _finish(m, Legend("热点", "Hotspot", shown), grids, path)


def emerging_map(cells: gpd.GeoDataFrame, path: str | Path | None = None, *,
                 grids: gpd.GeoDataFrame | None = None) -> folium.Map:
    """Emerging hot spot patterns (新热点 new, 连续热点 consecutive, 加强热点 intensifying, … hot and cold).

    Labels come from :func:`geogrid.emerging.pattern_labels`, the table the analysis itself uses.

    ``cells`` has ``cell`` and ``pattern``, matched loosely ('New Hot Spot', 'new_hot'), or the
    ``patterns_`` of :class:`geogrid.emerging` (``pattern`` 'new' with ``hot_or_cold`` 'hot').
    The legend lists only the patterns present.
    """
    cells, grids = check_frame(cells, "cells", ["cell", "pattern"]), _grids(grids)
    pattern = cells["pattern"].astype(str)
    if "hot_or_cold" in cells:  # geogrid.emerging's form: pattern 'new' + hot_or_cold 'hot'
        side = cells["hot_or_cold"]
        pattern = pattern.where(side.isna(), pattern + " " + side.astype(str))
    pattern = pattern.map(pal.normalise_pattern)
    unknown = sorted(set(pattern) - set(pal.EMERGING))
    if unknown:
        raise InputError(f"cells.pattern has unknown value(s) {unknown}; "
                         f"expected one of {list(pal.EMERGING)}")
    m = offline_map(bounds=total_bounds(cells, grids))
    add_polygons(m, cells, pattern.map(lambda k: pal.EMERGING[k].color), {
        "cell": ("单元 Cell", cell_ids(cells["cell"])),
        "pattern": ("模式 Pattern", pattern.map(lambda k: pal.EMERGING[k].label)),
    }, name="时空热点 Emerging hot spots")
    rows = [row for key, row in pal.EMERGING.items() if key in set(pattern)]
    return _finish(m, Legend("时空热点", "Emerging hot spots", rows), grids, path)


def forecast_map(cells: gpd.GeoDataFrame, path: str | Path | None = None, *,
                 grids: gpd.GeoDataFrame | None = None, score: str = "risk", flag: str = "flagged",
                 k: int = 5) -> folium.Map:
    """Risk forecast in ``k`` quantile classes (mapclassify); flagged cells outlined in black.

    ``cells`` has ``cell``, the ``score`` column (higher = riskier) and the boolean ``flag`` column.
    """
    cells, grids = check_frame(cells, "cells", ["cell", score, flag]), _grids(grids)
    y = pd.to_numeric(cells[score], errors="coerce")
    if y.isna().any():
        raise InputError(f"cells.{score} must be numeric with no missing values")
    if not 1 <= k <= len(pal.RISK):
        raise InputError(f"k must be from 1 to {len(pal.RISK)}, got {k}")
    k = min(k, y.nunique())
    if k > 1:
        classes = mapclassify.Quantiles(y.to_numpy(), k=k)
        yb, upper = classes.yb, list(classes.bins)
    else:
        yb, upper = np.zeros(len(y), dtype=int), [float(y.max())]
    colours = [pal.RISK[i] for i in np.linspace(0, len(pal.RISK) - 1, len(upper)).round().astype(int)]
    lower = [float(y.min())] + upper[:-1]
    flagged = cells[flag].astype(bool).to_numpy()
    m = offline_map(bounds=total_bounds(cells, grids))
    add_polygons(m, cells, pd.Series([colours[i] for i in yb], index=cells.index), {
        "cell": ("单元 Cell", cell_ids(cells["cell"])),
        "score": ("风险 Risk", fmt(y, ".3g")),
        "flagged": ("预警 Flagged", pd.Series(np.where(flagged, "是 yes", "否 no"), index=cells.index)),
    }, name="风险预测 Risk forecast")
    if flagged.any():
        add_outlines(m, cells[flagged], name="预警 Flagged", color=pal.FLAGGED.color, weight=3)
    rows = [LegendRow(c, f"风险 {lo:.3g}–{hi:.3g}", f"Risk {lo:.3g}–{hi:.3g}")
            for c, lo, hi in zip(colours, lower, upper)]
    return _finish(m, Legend("风险预测", "Risk forecast", [*rows[::-1], pal.FLAGGED]), grids, path)


def tiers_map(grids: gpd.GeoDataFrame, path: str | Path | None = None) -> folium.Map:
    """Grid complexity tiers (一级 = most complex … 四级), tooltips with the drivers in zh and en.

    ``grids`` has ``tier`` (1..4), ``drivers_zh``, ``drivers_en`` and, when known, ``code``, ``name``.
    """
    grids = check_frame(grids, "grids", ["tier", "drivers_zh", "drivers_en"])
    tier = pd.to_numeric(grids["tier"], errors="coerce")
    if not tier.isin(list(pal.TIERS)).all():
        raise InputError(f"grids.tier must be 1, 2, 3 or 4, got {sorted(set(tier) - set(pal.TIERS))}")
    tier = tier.astype(int)
    m = offline_map(bounds=total_bounds(grids))
    add_polygons(m, grids, tier.map(lambda t: pal.TIERS[t].color), {
        **grid_fields(grids),
        "tier": ("等级 Tier", tier.map(lambda t: pal.TIERS[t].label)),
        "drivers_zh": ("主要因素", grids["drivers_zh"]),
        "drivers_en": ("Drivers", grids["drivers_en"]),
    }, name="网格等级 Grid tiers", line=pal.GRID_OUTLINE, weight=1)
    return _finish(m, Legend("网格等级", "Grid tier", list(pal.TIERS.values())), None, path)


def _allocation_class(officers: float) -> str:
    if officers <= 0:
        return "none"
    if officers < 1:
        return "shared"
    return "1" if officers < 2 else "2" if officers < 3 else "3+"


def allocation_map(grids: gpd.GeoDataFrame, path: str | Path | None = None) -> folium.Map:
    """Officers per grid (none / shared / 1 / 2 / 3+), tooltips with auxiliaries and the reason.

    ``grids`` has ``officers`` (may be fractional when one officer covers several grids),
    ``auxiliaries``, ``reason`` and, when known, ``code``, ``name``.
    """
    grids = check_frame(grids, "grids", ["officers", "auxiliaries", "reason"])
    officers = pd.to_numeric(grids["officers"], errors="coerce")
    if officers.isna().any() or (officers < 0).any():
        raise InputError("grids.officers must be numbers >= 0 with no missing values")
    cls = officers.map(_allocation_class)
    m = offline_map(bounds=total_bounds(grids))
    add_polygons(m, grids, cls.map(lambda c: pal.ALLOCATION[c].color), {
        **grid_fields(grids),
        "officers": ("民警 Officers", fmt(officers, "g")),
        "auxiliaries": ("辅警 Auxiliaries", fmt(grids["auxiliaries"], "g")),
        "reason": ("依据 Reason", grids["reason"]),
    }, name="警力配置 Allocation", line=pal.GRID_OUTLINE, weight=1)
    return _finish(m, Legend("警力配置", "Staffing", list(pal.ALLOCATION.values())), None, path)


def _beat_colours(beats: gpd.GeoDataFrame) -> list[str]:
    """Colours such that beats sharing a border differ (greedy graph colouring, networkx)."""
    geoms = beats.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    graph = nx.Graph()
    graph.add_nodes_from(range(len(geoms)))
    graph.add_edges_from((a, b) for a, b in zip(left, right) if a != b)
    colour = nx.greedy_color(graph, strategy="largest_first")
    return [pal.BEAT_COLOURS[colour[i] % len(pal.BEAT_COLOURS)] for i in range(len(geoms))]


def beats_map(beats: gpd.GeoDataFrame, path: str | Path | None = None, *,
              grids: gpd.GeoDataFrame | None = None) -> folium.Map:
    """Beats (groups of grids one officer covers) with thick borders over thin grid outlines.

    ``beats`` has ``beat`` (id), ``workload``, ``deviation`` (fraction of the mean workload,
    0.12 = 12 % above) and ``officers``.
    """
    if "beat" not in beats.columns and beats.index.name == "beat":  # evaluate_beats indexes by beat
        beats = beats.reset_index()
    beats, grids = check_frame(beats, "beats", ["beat", "workload", "deviation", "officers"]), _grids(grids)
    colours = pd.Series(_beat_colours(beats), index=beats.index)
    m = offline_map(bounds=total_bounds(beats, grids))
    add_polygons(m, beats, colours, {
        "beat": ("警区 Beat", beats["beat"]),
        "workload": ("工作量 Workload", fmt(beats["workload"], ".1f")),
        "deviation": ("偏离均值 Deviation", fmt(beats["deviation"], "+.0%")),
        "officers": ("民警 Officers", fmt(beats["officers"], "g")),
    }, name="警区 Beats", line=pal.BEAT_BORDER, weight=3, fill_opacity=0.55)
    rows = [LegendRow(c, f"警区 {b}（{d}）", f"Beat {b} ({d})")
            for c, b, d in zip(colours, beats["beat"], fmt(beats["deviation"], "+.0%"))]
    if len(rows) > MAX_BEAT_ROWS:
        n = len(rows) - MAX_BEAT_ROWS
        rows = [*rows[:MAX_BEAT_ROWS], LegendRow("#ffffff", f"另有 {n} 个警区", f"{n} more beats")]
    return _finish(m, Legend("警区", "Beats", rows), grids, path)


def coverage_map(cells: gpd.GeoDataFrame, path: str | Path | None = None, *,
                 posts: gpd.GeoDataFrame | None = None, uncovered: gpd.GeoDataFrame | None = None,
                 grids: gpd.GeoDataFrame | None = None, sites: gpd.GeoDataFrame | None = None) -> folium.Map:
    """Response time from the nearest post: ≤5, 5–15, >15 minutes; posts as circle markers.

    ``cells`` has ``cell`` and ``minutes`` (NaN or inf = unreachable); ``posts`` are points with
    ``name`` (and ``code``); ``uncovered`` are polygons outside every post's reach; ``sites`` are
    proposed new posts (``site``, ``rank``, ``gain``, ``model``; a siting run's new rows).
    """
    cells, grids = check_frame(cells, "cells", ["cell", "minutes"]), _grids(grids)
    minutes = pd.to_numeric(cells["minutes"], errors="coerce")
    cls = np.searchsorted(pal.COVERAGE_LIMITS, minutes.fillna(np.inf).to_numpy(), side="left")
    frames = [cells, grids]
    if posts is not None:
        posts = check_frame(posts, "posts", ["name"])
        frames.append(posts)
    if uncovered is not None:
        uncovered = check_frame(uncovered, "uncovered", [])
    m = offline_map(bounds=total_bounds(*frames))
    add_polygons(m, cells, pd.Series([pal.COVERAGE[i].color for i in cls], index=cells.index), {
        "cell": ("单元 Cell", cell_ids(cells["cell"])),
        "minutes": ("到达时间（分钟）Minutes", fmt(minutes, ".1f")),
    }, name="覆盖 Coverage")
    rows = list(pal.COVERAGE)
    if grids is not None:  # under the posts and the uncovered outline
        add_outlines(m, grids, name="网格 Grids")
    if uncovered is not None:
        add_outlines(m, uncovered, name="未覆盖 Uncovered", color=pal.UNCOVERED.color, weight=2.5, dash="6 4")
        rows.append(pal.UNCOVERED)
    if posts is not None:
        _add_posts(m, posts)
        rows.append(pal.POST)
    if sites is not None and len(sites):
        _add_sites(m, check_frame(sites, "sites", ["site", "rank", "gain"]))
        rows.append(pal.PROPOSED_SITE)
    return _finish(m, Legend("响应覆盖", "Response coverage", rows), None, path)


def _add_sites(m: folium.Map, sites: gpd.GeoDataFrame) -> None:
    fields = {"site": ("选址 Site", sites["site"]), "rank": ("顺序 Rank", sites["rank"]),
              "gain": ("新增覆盖警情 Incidents gained", fmt(pd.to_numeric(sites["gain"]), ".0f"))}
    if "model" in sites:
        fields["model"] = ("模型 Model", sites["model"])
    _add_points(m, sites, fields, pal.PROPOSED_SITE.color, 7, "拟建警务室 Proposed posts")


def _add_posts(m: folium.Map, posts: gpd.GeoDataFrame) -> None:
    fields = {"name": ("警务室 Post", posts["name"])}
    if "code" in posts:
        fields["code"] = ("编码 Code", posts["code"])
    _add_points(m, posts, fields, pal.POST.color, 6, "警务室 Posts")


def _add_points(m: folium.Map, frame: gpd.GeoDataFrame, fields: dict, colour: str, radius: int, name: str) -> None:
    """Circle markers with a white rim and a bilingual tooltip of ``fields`` (key → (label, values))."""
    style = {"radius": radius, "color": "#ffffff", "weight": 1.5, "fill": True, "fillColor": colour, "fillOpacity": 1}
    folium.GeoJson(
        to_geojson(frame, {k: v for k, (_, v) in fields.items()}), name=name,
        marker=folium.CircleMarker(), style_function=lambda _: style,
        tooltip=folium.GeoJsonTooltip(list(fields), [a for a, _ in fields.values()]),
    ).add_to(m)
