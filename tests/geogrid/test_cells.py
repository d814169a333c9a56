"""cells.ring_pairs (vectorised) agrees with h3-py's own neighbours and grid distances."""
import h3
import pandas as pd
import shapely
import numpy as np
import pytest

from geogrid.cells import cell_to_str, k_ring_neighbours, points_to_cells, ring_pairs, str_to_cell


@pytest.mark.parametrize("k", [1, 2, 3], ids=lambda k: f"k{k}")
def test_ring_pairs_equal_h3_loop(k):
    """A ragged patch of cells: edge cells have fewer neighbours inside the set."""
    rng = np.random.default_rng(k)
    cells = np.unique(points_to_cells(117.2 + rng.uniform(0, 0.02, 300), 31.8 + rng.uniform(0, 0.02, 300), 9))
    i, j, ring = ring_pairs(cells, k)
    got = {(int(cells[a]), int(cells[b])): int(r) for a, b, r in zip(i, j, ring)}
    nbrs = k_ring_neighbours(cells, k)
    want = {(c, n): h3.grid_distance(cell_to_str(c), cell_to_str(n)) for c in nbrs for n in nbrs[c]}
    want.update({(int(c), int(c)): 0 for c in cells})
    assert got == want


@pytest.fixture(scope="module")
def grids():
    """Eight generated grids (rural and urban, irregular shapes) and their population."""
    from geogrid.generate import generate_city

    g = generate_city(seed=3, n_incidents=10, n_grids=50, n_posts=2, n_officers=10, n_auxiliaries=10).grids
    return g.iloc[:8].reset_index(drop=True).assign(population=lambda d: d["population"].fillna(0).astype(float))


def test_cells_to_polygons_equal_one_polygon_per_cell(grids):
    """The vectorised build gives exactly the polygons of h3's boundaries, pentagons included."""
    from shapely.geometry import Polygon

    from geogrid.cells import cells_to_polygons, study_area_cells

    cells = np.r_[study_area_cells(grids, 9), [str_to_cell(h3.get_pentagons(9)[0])]]
    got = cells_to_polygons(cells)
    want = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell_to_str(c))]) for c in cells]
    assert got.index.tolist() == cells.tolist() and got.crs.to_epsg() == 4326
    assert all(shapely.equals_exact(got.to_numpy(), np.asarray(want, dtype=object), 0))
    # more than one vertex count is built (hexagons; the res-9 pentagon has 10 vertices, edges crossed)
    assert len({len(shapely.get_coordinates(p)) for p in got}) > 1


def test_grids_to_cells_equal_a_loop_and_cached_results_are_copies(grids):
    from geogrid.cells import grids_to_cells, polygon_to_cells

    got = grids_to_cells(grids, 9, by="code")
    want = pd.concat([pd.DataFrame({"cell": sorted(str_to_cell(c) for c in h3.geo_to_cells(g.__geo_interface__, 9)),
                                    "grid": code}) for code, g in zip(grids["code"], grids.geometry)],
                     ignore_index=True).drop_duplicates("cell").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want.astype({"cell": np.int64}))
    first = polygon_to_cells(grids.geometry[0], 9)
    first[:] = 0  # a caller's change must not reach the remembered cells
    own = want.loc[want["grid"] == grids["code"][0], "cell"]
    np.testing.assert_array_equal(polygon_to_cells(grids.geometry[0], 9), own)


def test_apportion_to_cells_equals_the_per_grid_loop(grids):
    """Each grid's population spread over the cells it overlaps by intersected area (a plain loop as the oracle)."""
    from geogrid.cells import apportion_to_cells, cells_to_polygons

    g = grids.copy()
    g.loc[1, "population"] = 0.0  # skipped, contributes nothing
    utm = g.estimate_utm_crs()
    proj = g.to_crs(utm)
    want: dict[int, float] = {}
    for geom, geom_m, v in zip(g.geometry, proj.geometry, g["population"]):
        if v == 0:
            continue
        # every cell within 3 rings of the grid's representative point's cell (generous), by exact overlap
        seed = points_to_cells(np.array([geom.representative_point().x]), np.array([geom.representative_point().y]), 9)
        disk = set()
        for c in h3.geo_to_cells(geom.__geo_interface__, 9) + [cell_to_str(int(seed[0]))]:
            disk.update(h3.grid_disk(c, 1))
        cand = sorted(str_to_cell(c) for c in disk)
        inter = cells_to_polygons(cand).to_crs(utm).intersection(geom_m).area.to_numpy()
        for c, a in zip(cand, inter):
            if a > 0:
                want[c] = want.get(c, 0.0) + v * a / inter.sum()
    got = apportion_to_cells(g, "population", 9)
    assert got.index.tolist() == sorted(want)
    np.testing.assert_allclose(got.to_numpy(), [want[c] for c in sorted(want)], rtol=1e-12)
    assert got.sum() == pytest.approx(g["population"].sum(), rel=1e-12)  # totals kept
    pd.testing.assert_series_equal(apportion_to_cells(g, "population", 9, crs=utm), got)
