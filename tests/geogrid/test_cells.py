"""cells.ring_pairs (vectorised) agrees with h3-py's own neighbours and grid distances."""
import h3
import numpy as np
import pytest

from geogrid.cells import cell_to_str, k_ring_neighbours, points_to_cells, ring_pairs


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
