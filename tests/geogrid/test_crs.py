"""Tests for geogrid.crs: reference pairs, round trips, the outside-China rule, pyproj CRSs, errors."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from geogrid.crs import (
    BD09, GCJ02, WGS84, CRSSpec, from_wgs84, geoms_to_wgs84, in_china, parse_crs, to_wgs84,
)
from geogrid.errors import InputError, UnknownCRS

GEOD = pyproj.Geod(ellps="WGS84")
CHICAGO = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "chicago"
           / "converted" / "crimes_2019_sample50k.csv")

# Tolerances, named once.
REF_DEG = 1e-9          # forward formulas against published values (same algorithm, float noise)
REF_BD_INV_DEG = 1e-6   # published BD-09 inverse is Baidu's closed form, ~0.2 m off the exact one
ONE_STEP_M = 5.0        # the published one-step GCJ-02 inverse is within a few metres of ours
ROUND_TRIP_M = 1.0      # the task's bound; measured values are ~1e-7 m
PYPROJ_M = 0.01         # pyproj round trips

# (wgs_lon, wgs_lat, gcj_lon, gcj_lat)
WGS_GCJ_PAIRS = [
    # googollee/eviltransform @ 3416646abc64972e899118271bd98030224d9d6c, python/test.py (TESTS)
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),      # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),      # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),      # Beijing
    # wandergis/coordtransform @ 242324636adb54f9d1ef571035dc61f0ac8f0e8c, test/app.js
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]
# wandergis/coordtransform @ 242324636adb54f9d1ef571035dc61f0ac8f0e8c, test/app.js
GCJ_TO_BD = ((116.404, 39.915), (116.41036949371029, 39.92133699351021))
BD_TO_GCJ = ((116.404, 39.915), (116.39762729119315, 39.90865673957631))
GCJ_TO_WGS_ONE_STEP = ((116.404, 39.915), (116.39775550083061, 39.91359571849836))


def metres(lon0, lat0, lon1, lat1) -> np.ndarray:
    return np.asarray(GEOD.inv(lon0, lat0, lon1, lat1)[2])


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    """10,000 seeded random WGS-84 points spread over China (inside the offset box)."""
    rng = np.random.default_rng(20240601)
    return rng.uniform(73.5, 135.0, 10_000), rng.uniform(18.0, 53.5, 10_000)


# --- parse_crs -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "name"),
    [("gcj02", "GCJ-02"), ("GCJ-02", "GCJ-02"), ("bd09", "BD-09"), ("BD-09", "BD-09"),
     ("wgs84", "EPSG:4326"), ("WGS-84", "EPSG:4326"), ("cgcs2000", "EPSG:4490"),
     (4326, "EPSG:4326"), (np.int64(3857), "EPSG:3857"), ("EPSG:4490", "EPSG:4490"),
     ("epsg:3435", "EPSG:3435"), ("4326", "EPSG:4326"), (pyproj.CRS.from_epsg(32650), "EPSG:32650"),
     ("OGC:CRS84", "EPSG:4326")],
    ids=lambda v: str(v),
)
def test_parse_crs_accepts_names_codes_and_pyproj(value, name):
    assert parse_crs(value).name == name


def test_parse_crs_kinds():
    assert parse_crs("gcj02") is GCJ02 and GCJ02.kind == "offset" and GCJ02.crs is None
    assert parse_crs("bd09") is BD09
    spec = parse_crs(4490)
    assert spec.kind == "pyproj" and spec.crs == pyproj.CRS.from_epsg(4490)
    assert parse_crs(spec) is spec
    assert isinstance(WGS84, CRSSpec) and WGS84.is_wgs84


@pytest.mark.parametrize("value", ["gcj03", "", "EPSG:999999", 999999, True, None, 3.5],
                         ids=["typo", "empty", "bad-epsg-str", "bad-epsg-int", "bool", "none", "float"])
def test_unknown_crs_raises_listing_accepted_forms(value):
    with pytest.raises(UnknownCRS, match="accepted: 'gcj02'"):
        parse_crs(value)


# --- reference pairs -----------------------------------------------------------------------------

@pytest.mark.parametrize("pair", WGS_GCJ_PAIRS, ids=["shanghai", "shenzhen", "beijing", "coordtransform"])
def test_wgs84_to_gcj02_matches_published_pairs(pair):
    wlon, wlat, glon, glat = pair
    x, y = from_wgs84([wlon], [wlat], "gcj02")
    np.testing.assert_allclose([x[0], y[0]], [glon, glat], rtol=0, atol=REF_DEG)
    lon, lat = to_wgs84([glon], [glat], "gcj02")
    np.testing.assert_allclose([lon[0], lat[0]], [wlon, wlat], rtol=0, atol=REF_DEG)


def test_bd09_against_published_pairs():
    (gx, gy), (bx, by) = GCJ_TO_BD
    _, bd_lat = from_wgs84(*to_wgs84([gx], [gy], "gcj02"), "bd09")
    np.testing.assert_allclose(bd_lat, [by], rtol=0, atol=REF_DEG)
    (bx0, by0), (gx1, gy1) = BD_TO_GCJ
    wlon, wlat = to_wgs84([bx0], [by0], "bd09")
    glon, glat = from_wgs84(wlon, wlat, "gcj02")
    np.testing.assert_allclose([glon[0], glat[0]], [gx1, gy1], rtol=0, atol=REF_BD_INV_DEG)
    # and the exact inverse is really exact: forward again gives the BD-09 input back
    rx, ry = from_wgs84(wlon, wlat, "bd09")
    np.testing.assert_allclose([rx[0], ry[0]], [bx0, by0], rtol=0, atol=REF_DEG)


def test_gcj02_inverse_is_exact_where_one_step_is_metres_off():
    (gx, gy), (ox, oy) = GCJ_TO_WGS_ONE_STEP
    lon, lat = to_wgs84([gx], [gy], "gcj02")
    assert metres(lon, lat, [ox], [oy])[0] < ONE_STEP_M
    fx, fy = from_wgs84(lon, lat, "gcj02")
    np.testing.assert_allclose([fx[0], fy[0]], [gx, gy], rtol=0, atol=REF_DEG)
    # the one-step value does not map back onto its input: that is the error iteration removes
    sx, sy = from_wgs84([ox], [oy], "gcj02")
    assert max(abs(sx[0] - gx), abs(sy[0] - gy)) > 100 * REF_DEG


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_round_trip_within_one_metre_over_china(china_points, crs):
    lon, lat = china_points
    x, y = from_wgs84(lon, lat, crs)
    assert metres(lon, lat, x, y).min() > 10.0  # the offset really was applied
    back_lon, back_lat = to_wgs84(x, y, crs)
    assert metres(lon, lat, back_lon, back_lat).max() < ROUND_TRIP_M


@pytest.mark.parametrize(
    ("crs", "lon", "lat"),
    [("EPSG:4490", 116.39, 39.91), (3857, 116.39, 39.91), ("EPSG:32650", 116.39, 39.91),
     ("EPSG:3435", -87.63, 41.88)],
    ids=["cgcs2000", "web-mercator", "utm50n", "illinois-east-ftus"],
)
def test_pyproj_round_trip(crs, lon, lat):
    lons, lats = np.array([lon, lon + 0.05]), np.array([lat, lat - 0.05])
    x, y = from_wgs84(lons, lats, crs)
    back = to_wgs84(x, y, crs)
    assert metres(lons, lats, *back).max() < PYPROJ_M


def test_cgcs2000_is_wgs84_to_centimetres():
    lon, lat = to_wgs84([116.39], [39.91], 4490)
    assert metres([116.39], [39.91], lon, lat)[0] < PYPROJ_M


def test_epsg3435_matches_chicago_published_coordinates():
    """The Chicago sample carries both lon/lat and EPSG:3435 x/y (ftUS) for each incident."""
    df = pd.read_csv(CHICAGO, usecols=["x_coordinate", "y_coordinate", "longitude", "latitude"],
                     nrows=2000).dropna()
    lon, lat = to_wgs84(df["x_coordinate"], df["y_coordinate"], "EPSG:3435")
    # the portal rounds x/y to whole feet, so agreement is to about a foot
    assert metres(df["longitude"].to_numpy(), df["latitude"].to_numpy(), lon, lat).max() < 1.0


# --- outside China, NaN, shapes ------------------------------------------------------------------

@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
@pytest.mark.parametrize(("lon", "lat"), [(-87.63, 41.88), (2.35, 48.86), (151.2, -33.87), (140.0, 36.0)],
                         ids=["chicago", "paris", "sydney", "east-of-box"])
def test_outside_china_unchanged(crs, lon, lat):
    assert not in_china([lon], [lat])[0]
    for convert in (from_wgs84, to_wgs84):
        np.testing.assert_array_equal(np.concatenate(convert([lon], [lat], crs)), [lon, lat])


def test_in_china_box():
    got = in_china([116.4, 72.0, 137.9, 100.0, np.nan], [39.9, 30.0, 30.0, 56.0, 30.0])
    assert got.tolist() == [True, False, False, False, False]


@pytest.mark.parametrize(
    ("crs", "x", "y"),
    [("gcj02", 116.4, 39.9), ("bd09", 116.4, 39.9), ("wgs84", 116.4, 39.9), (4490, 116.4, 39.9),
     (3435, 1176000.0, 1900000.0)],
    ids=["gcj02", "bd09", "wgs84", "cgcs2000", "epsg3435"],
)
def test_nan_passes_through(crs, x, y):
    for convert in (to_wgs84, from_wgs84):
        if convert is from_wgs84:
            x, y = -87.6 if crs == 3435 else x, 41.9 if crs == 3435 else y
        ox, oy = convert([np.nan, x], [np.nan, y], crs)
        assert np.isnan(ox[0]) and np.isnan(oy[0])
        assert np.isfinite(ox[1]) and np.isfinite(oy[1])


def test_untransformable_point_gives_nan():
    x, y = to_wgs84([1e30], [1e30], 3435)
    assert np.isnan(x[0]) and np.isnan(y[0])


def test_shape_mismatch_raises():
    with pytest.raises(InputError, match="same shape"):
        to_wgs84([1.0, 2.0], [1.0], "gcj02")


def test_geoms_to_wgs84_moves_every_vertex():
    """A GCJ-02 square drawn on AMap: every vertex converted like a point."""
    square = shapely.box(116.40, 39.90, 116.41, 39.91)
    out = geoms_to_wgs84(gpd.GeoSeries([square], index=[7]), "gcj02")
    assert out.crs == "EPSG:4326" and out.index.tolist() == [7]
    xy = shapely.get_coordinates(square)
    expected = np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], "gcj02"))
    np.testing.assert_allclose(shapely.get_coordinates(out.iloc[0]), expected, rtol=0, atol=REF_DEG)
