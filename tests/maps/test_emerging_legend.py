"""One wording for emerging patterns: every label the analysis can emit has the same legend entry."""
from __future__ import annotations

import functools
import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geogrid.cells import cells_to_polygons
from geogrid.emerging import EmergingHotspots, classify_series, pattern_label
from maps import palettes as pal
from maps.layers import emerging_map

N_SLICES = 10  # 3**10 state series (historical needs >= 90 % of >= 10), each with a rising, falling and flat trend: every rule is reached


@functools.cache
def _emitted() -> frozenset[tuple[str, str | None]]:
    out = set()
    for states in itertools.product((-1, 0, 1), repeat=N_SLICES):
        for mk_z, mk_p in ((3.0, 0.001), (-3.0, 0.001), (0.2, 0.8)):
            out.add(classify_series(np.array(states), mk_z, mk_p))
    return frozenset(out)


def test_every_emitted_pattern_has_its_legend_row():
    emitted = _emitted()
    assert len(emitted) == 17  # 8 patterns x hot/cold + no pattern: the rules reach them all
    for pattern, side in emitted:
        key = pal.normalise_pattern(pattern if side is None else f"{pattern} {side}")
        en, zh = pattern_label(pattern, side)
        assert key in pal.EMERGING, (pattern, side)
        assert (pal.EMERGING[key].label_en, pal.EMERGING[key].label_zh) == (en, zh)


def test_legend_has_no_row_the_analysis_cannot_emit():
    keys = {pal.normalise_pattern(p if s is None else f"{p} {s}") for p, s in _emitted()}
    assert set(pal.EMERGING) == keys


def test_arcgis_zh_cn_wording():
    """ArcGIS Pro zh-CN's adjectives (新增的、连续的、加强的、…、分散的), not ad-hoc synonyms."""
    assert pattern_label("intensifying", "hot") == ("Intensifying Hot Spot", "加强热点")
    assert pattern_label("sporadic", "cold") == ("Sporadic Cold Spot", "分散冷点")
    assert pattern_label("no_pattern", None) == ("No Pattern Detected", "未检测到模式")


@pytest.fixture(scope="module")
def fitted_patterns() -> pd.DataFrame:
    """A real fit: 40 weeks of uniform noise plus a cluster that switches on in the last 6 weeks."""
    rng = np.random.default_rng(4)
    n_bg, n_new = 4000, 400
    t0 = pd.Timestamp("2025-01-06", tz="Asia/Shanghai")
    bg = pd.DataFrame({"lon": rng.uniform(117.20, 117.26, n_bg), "lat": rng.uniform(31.80, 31.84, n_bg),
                       "occurred_at": t0 + pd.to_timedelta(rng.uniform(0, 40 * 7, n_bg), unit="D")})
    new = pd.DataFrame({"lon": rng.normal(117.23, 0.002, n_new), "lat": rng.normal(31.82, 0.002, n_new),
                        "occurred_at": t0 + pd.to_timedelta(rng.uniform(34 * 7, 40 * 7, n_new), unit="D")})
    inc = pd.concat([bg, new], ignore_index=True).assign(category="theft")
    area = gpd.GeoDataFrame(geometry=[shapely.box(117.20, 31.80, 117.26, 31.84)], crs=4326)
    est = EmergingHotspots(period="W", k=1, res=9).fit(inc, area)
    return est.patterns_


def test_fitted_labels_appear_in_the_map_legend(fitted_patterns, tmp_path):
    pats = fitted_patterns
    assert (pats["pattern"] != "no_pattern").any()  # the switched-on cluster is classed
    gdf = gpd.GeoDataFrame(pats, geometry=cells_to_polygons(pats["cell"]).to_numpy(), crs=4326)
    html = emerging_map(gdf, tmp_path / "e.html").get_root().render()
    for en, zh in set(zip(pats["label"], pats["label_zh"])):
        assert f"{zh} / {en}" in html
