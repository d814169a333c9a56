"""Plan checks: hairlines where two files draw one border differently are noise, real overlaps are not."""
import geopandas as gpd
import shapely

from geogrid.plan_checks import plan_problems

DEG_PER_M = 1 / 111_320  # a metre of latitude, near enough at 31°N


def _pair(shift_m: float) -> gpd.GeoDataFrame:
    """Two 1 km × 1 km squares side by side, the right one reaching ``shift_m`` into the left one."""
    w = 1000 * DEG_PER_M / 0.857  # 1 km of longitude at 31°N
    h = 1000 * DEG_PER_M
    x0, y0 = 117.0, 31.0
    left = shapely.box(x0, y0, x0 + w, y0 + h)
    right = shapely.box(x0 + w - shift_m * DEG_PER_M / 0.857, y0, x0 + 2 * w, y0 + h)
    return gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[left, right], crs=4326)


def test_a_hairline_overlap_along_a_kilometre_is_not_a_problem():
    # 2 mm along 1 km: 2 m², above the area floor, but no grid is assigned twice in any real sense
    assert [p for p in plan_problems(_pair(0.002)) if p["kind"] == "overlap"] == []


def test_a_metre_wide_overlap_is_reported_with_its_area():
    (p,) = [p for p in plan_problems(_pair(1.0)) if p["kind"] == "overlap"]
    assert p["codes"] == ["A", "B"] and 900 < p["area_m2"] < 1100


def test_the_hairline_width_is_a_parameter():
    assert [p["kind"] for p in plan_problems(_pair(0.002), hairline_m=0.0) if p["kind"] == "overlap"] == ["overlap"]
