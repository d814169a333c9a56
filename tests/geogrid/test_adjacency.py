"""Rook adjacency: shared edges of positive length, never corner-only touches."""
from pathlib import Path

import geopandas as gpd
import libpysal
import pytest
from shapely.geometry import box

from geogrid.adjacency import rook_adjacency
from geogrid.errors import InputError

CHICAGO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "chicago" / "converted"
CHICAGO_QUEEN_ONLY = 97  # corner-only touches among Chicago's 277 beats (stated in the issue)


@pytest.fixture(scope="module")
def chicago_beats():
    """The 277 real CPD beats: clean shared vertices, 97 corner-only touches."""
    return gpd.read_file(CHICAGO / "police_beats.geojson")


@pytest.fixture
def corner_squares():
    """Three squares: 0–1 share an edge, 1–2 touch only at a corner."""
    return gpd.GeoSeries([box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 100, 300, 200)], crs=3857)


@pytest.fixture
def sliver_squares():
    """Two squares digitised 5 cm apart (a sliver gap): the same border for a planner."""
    return gpd.GeoSeries([box(0, 0, 100, 100), box(100.05, 0, 200, 100)], crs=3857)


def test_corner_touch_is_not_a_link(corner_squares):
    adj = rook_adjacency(corner_squares)
    assert adj.pairs.tolist() == [[0, 1]]
    assert adj.queen_only.tolist() == [[1, 2]]
    assert adj.shared_m[0] == pytest.approx(100.0, abs=0.5)


@pytest.mark.parametrize("tol, linked", [(0.1, True), (0.01, False)], ids=["snaps-10cm", "strict-1cm"])
def test_snapping_tolerance_bridges_slivers(sliver_squares, tol, linked):
    assert (rook_adjacency(sliver_squares, tolerance_m=tol).n_links == 1) is linked


def test_chicago_excludes_corner_only_touches(chicago_beats):
    adj = rook_adjacency(chicago_beats)
    assert len(adj.queen_only) == CHICAGO_QUEEN_ONLY
    # independent reference: libpysal's vertex-based rook gives the same links on these clean borders
    ref = libpysal.weights.Rook.from_dataframe(chicago_beats, use_index=False)
    ref_pairs = {(i, j) for i, nb in ref.neighbors.items() for j in nb if i < j}
    assert {tuple(p) for p in adj.pairs.tolist()} == ref_pairs
    assert len(set(adj.components())) == 1


def test_rejects_points():
    pts = gpd.GeoSeries.from_xy([0, 1], [0, 1], crs=3857)
    with pytest.raises(InputError, match="Polygon"):
        rook_adjacency(pts)
