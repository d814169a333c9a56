"""Spatial kernels over H3 cells as sparse cell × cell matrices (time-independent, so cached per cell set)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from geogrid.cells import cell_centroids
from geogrid.cells import ring_pairs as cells_ring_pairs

EARTH_RADIUS_M = 6_371_008.8


def ring_pairs(cells: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j) of positions in ``cells`` within ``k`` rings, with ring number and centroid distance (m).

    Includes the pairs (i, i) at ring 0. ``cells`` must be sorted (as :class:`History` keeps them).
    """
    return _ring_pairs(np.asarray(cells, dtype=np.int64).tobytes(), int(k))


@lru_cache(maxsize=8)
def _ring_pairs(cells_bytes: bytes, k: int):
    cells = np.frombuffer(cells_bytes, dtype=np.int64)
    i, j, ring = cells_ring_pairs(cells, k)
    lon, lat = cell_centroids(cells)
    lon, lat = np.radians(lon), np.radians(lat)
    # equirectangular distance: exact enough within a few rings (< 2 km)
    x = (lon[j] - lon[i]) * np.cos((lat[i] + lat[j]) / 2)
    y = lat[j] - lat[i]
    dist = EARTH_RADIUS_M * np.hypot(x, y)
    return i, j, ring, dist


def gaussian_kernel(cells: np.ndarray, bandwidth_m: float, k: int) -> sp.csr_matrix:
    """Row i spreads weight exp(-d²/2h²) over cells within ``k`` rings of cell i (row sums not normalised)."""
    i, j, _, d = ring_pairs(cells, k)
    w = np.exp(-0.5 * (d / bandwidth_m) ** 2)
    return sp.csr_matrix((w, (i, j)), shape=(len(cells), len(cells)))


def inverse_ring_kernel(cells: np.ndarray, k: int) -> sp.csr_matrix:
    """Weight 1/(1 + ring) within ``k`` rings — the spatial part of prospective hotspotting."""
    i, j, ring, _ = ring_pairs(cells, k)
    return sp.csr_matrix((1.0 / (1.0 + ring), (i, j)), shape=(len(cells), len(cells)))


def ring_sum(cells: np.ndarray, ring: int) -> sp.csr_matrix:
    """0/1 matrix selecting the cells exactly ``ring`` rings away (for neighbour-count features)."""
    i, j, r, _ = ring_pairs(cells, ring)
    sel = r == ring
    return sp.csr_matrix((np.ones(sel.sum()), (i[sel], j[sel])), shape=(len(cells), len(cells)))
