"""Map builders: each writes an offline HTML with its bilingual legend; bad inputs are named."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from geogrid.errors import InputError
from maps.layers import (allocation_map, beats_map, coverage_map, emerging_map, forecast_map,
                         hotspot_map, tiers_map)
from maps.offline import find_external_refs

# builder name -> (call, legend texts that must appear in zh and en)
BUILDERS = {
    "hotspots": (lambda d, p: hotspot_map(d["cells"], p, grids=d["grids"]),
                 ["热点 Hotspot", "热点 99% 置信 / Hot spot 99% confidence", "不显著 / Not significant",
                  "冷点 90% 置信 / Cold spot 90% confidence"]),
    "emerging": (lambda d, p: emerging_map(d["cells"], p, grids=d["grids"]),
                 ["新热点 / New Hot Spot", "连续热点 / Consecutive Hot Spot", "加强热点 / Intensifying Hot Spot",
                  "持续冷点 / Persistent Cold Spot", "未检测到模式 / No Pattern Detected"]),
    "forecast": (lambda d, p: forecast_map(d["cells"], p, grids=d["grids"]),
                 ["风险预测 Risk forecast", "预警单元 / Flagged cell"]),
    "tiers": (lambda d, p: tiers_map(d["grids"], p),
              ["网格等级 Grid tier", "一级（最复杂） / Tier 1 (most complex)", "四级（最简单） / Tier 4 (least complex)"]),
    "allocation": (lambda d, p: allocation_map(d["grids"], p),
                   ["警力配置 Staffing", "无民警 / No officer", "共用民警（一警多格） / Shared officer",
                    "3 名及以上民警 / 3+ officers"]),
    "beats": (lambda d, p: beats_map(d["beats"], p, grids=d["grids"]),
              ["警区 Beats", "警区 B1（+20%） / Beat B1 (+20%)", "警区 B2（-20%） / Beat B2 (-20%)"]),
    "coverage": (lambda d, p: coverage_map(d["cells"], p, posts=d["posts"], uncovered=d["uncovered"],
                                           grids=d["grids"]),
                 ["响应覆盖 Response coverage", "≤5 分钟 / ≤5 min", "5–15 分钟 / 5–15 min",
                  "&gt;15 分钟或不可达 / &gt;15 min or unreachable", "警务室 / Police post",
                  "未覆盖区域 / Uncovered area"]),
}


@pytest.fixture
def layers(cells, grids, beats, posts, uncovered):
    return {"cells": cells, "grids": grids, "beats": beats, "posts": posts, "uncovered": uncovered}


def _features(html: str) -> list[dict]:
    """Every GeoJSON feature embedded in the page."""
    out = []
    for blob in re.findall(r"_add\((\{\"features\".*?)\);\n", html):
        out += json.loads(blob)["features"]
    return out


@pytest.mark.parametrize("kind", list(BUILDERS), ids=list(BUILDERS))
def test_builder_writes_offline_map_with_bilingual_legend(kind, layers, tmp_path):
    build, texts = BUILDERS[kind]
    path = tmp_path / f"{kind}.html"
    build(layers, path)
    html = path.read_text(encoding="utf-8")
    assert find_external_refs(html) == []
    assert "L.tileLayer" not in html
    missing = [t for t in texts if t not in html]
    assert not missing, f"legend texts missing from {kind} map: {missing}"


def test_hotspot_colours_follow_gi_bin(layers, tmp_path):
    path = tmp_path / "h.html"
    hotspot_map(layers["cells"], path)
    fills = {f["properties"]["class"]: f["properties"]["_fill"] for f in _features(path.read_text("utf-8"))}
    assert fills["热点 99% 置信 / Hot spot 99% confidence"] == "#d62f27"
    assert fills["不显著 / Not significant"] == "#e0e0e0"
    assert fills["冷点 99% 置信 / Cold spot 99% confidence"] == "#4575b5"


def test_cell_ids_are_hex_strings_not_rounded_ints(layers, tmp_path):
    """int64 H3 ids exceed 2**53; JavaScript would round them."""
    path = tmp_path / "h.html"
    hotspot_map(layers["cells"], path)
    ids = {f["properties"]["cell"] for f in _features(path.read_text("utf-8"))}
    assert ids == {format(int(c) & (2**64 - 1), "x") for c in layers["cells"]["cell"]}


def test_tooltips_carry_chinese_names_and_escape_html(layers, tmp_path):
    grids = layers["grids"].assign(name=["东风社区", "<script>x</script>", "老城小区", "商业街区"])
    path = tmp_path / "t.html"
    tiers_map(grids, path)
    html = path.read_text("utf-8")
    names = [f["properties"]["name"] for f in _features(html)]
    assert "东风社区" in names and "&lt;script&gt;x&lt;/script&gt;" in names
    assert "<script>x" not in html


def test_forecast_outlines_flagged_cells_and_uses_quantile_classes(layers, tmp_path):
    path = tmp_path / "f.html"
    forecast_map(layers["cells"], path, k=4)
    html = path.read_text("utf-8")
    rows = re.findall(r"<span>风险 ([0-9.]+)–([0-9.]+) / Risk", html)
    risk = layers["cells"]["risk"]
    assert len(rows) == 4
    assert float(rows[-1][0]) == pytest.approx(risk.min()) and float(rows[0][1]) == pytest.approx(risk.max())
    outlines = [f for f in _features(html) if not f["properties"]]
    assert len(outlines) == int(layers["cells"]["flagged"].sum())


def test_emerging_accepts_pattern_and_side_columns(layers, tmp_path):
    """geogrid.emerging gives pattern 'new' + hot_or_cold 'hot', and 'no_pattern' + None."""
    cells = layers["cells"].iloc[:3].assign(pattern=["new", "persistent", "no_pattern"],
                                            hot_or_cold=["hot", "cold", None])
    path = tmp_path / "e.html"
    emerging_map(cells, path)
    html = path.read_text("utf-8")
    assert all(t in html for t in ["新热点 / New Hot Spot", "持续冷点 / Persistent Cold Spot",
                                   "未检测到模式 / No Pattern Detected"])
    assert "连续热点" not in html  # absent patterns stay out of the legend


def test_beats_that_touch_get_different_colours(layers, tmp_path):
    path = tmp_path / "b.html"
    beats_map(layers["beats"].set_index("beat"), path)  # evaluate_beats' shape: indexed by beat
    fills = {f["properties"]["beat"]: f["properties"]["_fill"] for f in _features(path.read_text("utf-8"))
             if "beat" in f["properties"]}
    assert fills["B1"] != fills["B2"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda d: hotspot_map(d["cells"].drop(columns="gi_bin")), "gi_bin"),
    (lambda d: hotspot_map(d["cells"].assign(gi_bin=4)), "gi_bin"),
    (lambda d: emerging_map(d["cells"].assign(pattern="lukewarm")), "pattern"),
    (lambda d: tiers_map(d["grids"].assign(tier=5)), "tier"),
    (lambda d: allocation_map(d["grids"].assign(officers=-1)), "officers"),
    (lambda d: forecast_map(d["cells"].assign(risk=np.nan)), "risk"),
    (lambda d: coverage_map(d["cells"].set_crs(None, allow_override=True)), "CRS"),
    (lambda d: coverage_map(d["cells"].iloc[:0]), "no features"),
], ids=["no-gi-bin", "gi-bin-4", "unknown-pattern", "tier-5", "negative-officers", "nan-risk", "no-crs",
        "empty"])
def test_bad_input_names_the_problem(call, message, layers):
    with pytest.raises(InputError, match=message):
        call(layers)


def test_other_crs_is_reprojected(layers, tmp_path):
    path = tmp_path / "t.html"
    tiers_map(layers["grids"].to_crs(3857), path)
    xs = [pt[0] for f in _features(path.read_text("utf-8")) for pt in f["geometry"]["coordinates"][0]]
    assert -88 < min(xs) < max(xs) < -87
