"""Planted hot spots on the demo city, scored at the resolution Gi* works at: the k-ring neighbourhood.

Gi* with k rings tests each cell's *neighbourhood* sum, so a cell one ring from a planted spot has a
neighbourhood dominated by it and is rightly hot: counted against the bare planted cells it is a
false positive (cell-level precision ≈ 0.4 here), counted against the planted footprint grown by the
k rings Gi* looks through it is not. The remaining false positives are dense residential blocks of the
population-driven background.
"""
from __future__ import annotations

import numpy as np
import pytest

from geogrid.cells import polygon_to_cells, ring_pairs
from geogrid.counts import cell_counts
from geogrid.hotspots import hotspots

K = 1
RES = 10


@pytest.fixture(scope="module")
def demo_hotspots():
    """Demo city seed 3, 30,000 incidents, urban grids as study area (as test_hotspots does)."""
    from geogrid.generate import generate_city

    city = generate_city(seed=3, n_incidents=30_000)
    urban = city.grids[city.grids["kind"] == "urban"]
    res = hotspots(cell_counts(city.incidents, RES, urban), k=K)
    planted = set().union(*(polygon_to_cells(g, RES).tolist() for g in city.planted.geometry))
    return res, planted


def _grow(cells: np.ndarray, planted: set[int], k: int) -> set[int]:
    """``planted`` plus every study-area cell within ``k`` rings of it."""
    cells = np.sort(cells)
    i, j, _ = ring_pairs(cells, k)
    seed = np.isin(cells, list(planted))
    return set(cells[j[seed[i]]].tolist()) | planted


def test_precision_against_the_k_ring_footprint(demo_hotspots):
    res, planted = demo_hotspots
    found = set(res.loc[res["gi_bin"] == 3, "cell"].tolist())
    footprint = _grow(res["cell"].to_numpy(), planted, K)
    cell_precision = len(found & planted) / len(found)
    footprint_precision = len(found & footprint) / len(found)
    recall = len(found & planted) / len(planted)
    print(f"cell precision {cell_precision:.2f}, k-ring footprint precision {footprint_precision:.2f}, "
          f"recall {recall:.2f}")
    assert recall >= 0.9
    assert footprint_precision >= 0.75
    assert footprint_precision > cell_precision + 0.3  # the ring explains most cell-level "misses"
