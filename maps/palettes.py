"""Colours and bilingual labels of the classes geogrid maps show (one table per map kind)."""
from __future__ import annotations

from geogrid.emerging import pattern_labels
from maps.legend import LegendRow

GRID_OUTLINE = "#9e9e9e"  # light grey grid outlines: the base map of an offline map
NOT_SIGNIFICANT = "#e0e0e0"

# ArcGIS Hot Spot Analysis Gi_Bin colours (the scheme commanders know), key = Gi_Bin.
GI_BINS: dict[int, LegendRow] = {
    3: LegendRow("#d62f27", "热点 99% 置信", "Hot spot 99% confidence"),
    2: LegendRow("#ed7551", "热点 95% 置信", "Hot spot 95% confidence"),
    1: LegendRow("#fab984", "热点 90% 置信", "Hot spot 90% confidence"),
    0: LegendRow(NOT_SIGNIFICANT, "不显著", "Not significant"),
    -1: LegendRow("#c0ccbe", "冷点 90% 置信", "Cold spot 90% confidence"),
    -2: LegendRow("#849eba", "冷点 95% 置信", "Cold spot 95% confidence"),
    -3: LegendRow("#4575b5", "冷点 99% 置信", "Cold spot 99% confidence"),
}

# Emerging hot spot patterns, key = normalised pattern ('new hot' … 'no pattern'). The labels come from
# geogrid.emerging (one table for the analysis and the legend); only the colours live here.
# ArcGIS tells patterns apart with hatching; flat colours here, strongest for the most urgent.
EMERGING_COLOURS: dict[str, str] = {
    "new hot": "#67001f", "consecutive hot": "#b2182b", "intensifying hot": "#d6604d",
    "persistent hot": "#f4a582", "diminishing hot": "#fddbc7", "sporadic hot": "#e08214",
    "oscillating hot": "#fdb863", "historical hot": "#fee0b6",
    "new cold": "#053061", "consecutive cold": "#2166ac", "intensifying cold": "#4393c3",
    "persistent cold": "#92c5de", "diminishing cold": "#d1e5f0", "sporadic cold": "#8073ac",
    "oscillating cold": "#b2abd2", "historical cold": "#d8daeb",
    "no pattern": NOT_SIGNIFICANT,
}
EMERGING: dict[str, LegendRow] = {
    key: LegendRow(EMERGING_COLOURS[key], zh, en) for key, (en, zh) in pattern_labels().items()
}

TIERS: dict[int, LegendRow] = {
    1: LegendRow("#b30000", "一级（最复杂）", "Tier 1 (most complex)"),
    2: LegendRow("#e34a33", "二级", "Tier 2"),
    3: LegendRow("#fc8d59", "三级", "Tier 3"),
    4: LegendRow("#fdcc8a", "四级（最简单）", "Tier 4 (least complex)"),
}

# Response-time classes against the plan's 5-minute unit and 15-minute urgent deadline.
COVERAGE_LIMITS = (5.0, 15.0)  # minutes; a class holds minutes <= its limit, the last the rest
COVERAGE: tuple[LegendRow, ...] = (
    LegendRow("#1a9850", "≤5 分钟", "≤5 min"),
    LegendRow("#fee08b", "5–15 分钟", "5–15 min"),
    LegendRow("#d73027", ">15 分钟或不可达", ">15 min or unreachable"),
)
POST = LegendRow("#08306b", "警务室", "Police post", "circle")
UNCOVERED = LegendRow("#7b3294", "未覆盖区域", "Uncovered area", "outline")
PROPOSED_SITE = LegendRow("#e6550d", "拟建警务室（选址）", "Proposed post (siting)", "circle")
ROAD = LegendRow("#bdbdbd", "道路", "Road", "outline")  # the background of the web map: geogrid's own roads

# Officers per grid: none, shared (one officer for several grids, 一警多格), 1, 2, 3+.
ALLOCATION: dict[str, LegendRow] = {
    "none": LegendRow("#d73027", "无民警", "No officer"),
    "shared": LegendRow("#fee090", "共用民警（一警多格）", "Shared officer"),
    "1": LegendRow("#c6dbef", "1 名民警", "1 officer"),
    "2": LegendRow("#6baed6", "2 名民警", "2 officers"),
    "3+": LegendRow("#08519c", "3 名及以上民警", "3+ officers"),
}

RISK = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")  # YlOrRd, low → high
FLAGGED = LegendRow("#000000", "预警单元", "Flagged cell", "outline")

# Beats: a qualitative palette (ColorBrewer Set3-like, darkened for legibility of borders).
BEAT_COLOURS = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
                "#fccde5", "#bc80bd", "#ccebc5", "#ffed6f", "#d9d9d9")
BEAT_BORDER = "#333333"


def normalise_pattern(value: str) -> str:
    """'New Hot Spot', 'new_hot', 'NEW HOT' → 'new hot'; 'No Pattern Detected' → 'no pattern'."""
    s = " ".join(str(value).lower().replace("_", " ").replace("-", " ").split())
    s = s.removesuffix(" spot").removesuffix(" detected")
    return s
