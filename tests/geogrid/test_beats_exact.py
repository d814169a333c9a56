"""Exact pieces of the beats solver against brute force: connected sets, re-splits, the trapped-grid bound."""
import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geogrid.beat_bounds import trapped_grid_bound
from geogrid.beats import BalancedBeats
from geogrid.regions import Graph, Partition
from geogrid.resplit import best_split, connected_sets, is_connected, repair


def lattice(rows: int, cols: int) -> list[list[int]]:
    """Rook neighbours of a rows × cols lattice, row-major positions."""
    out = [[] for _ in range(rows * cols)]
    for r, c in itertools.product(range(rows), range(cols)):
        for dr, dc in ((0, 1), (1, 0)):
            if r + dr < rows and c + dc < cols:
                a, b = r * cols + c, (r + dr) * cols + c + dc
                out[a].append(b)
                out[b].append(a)
    return out


def masks(nbrs: list[list[int]]) -> list[int]:
    return [sum(1 << j for j in nb) for nb in nbrs]


def brute_connected(nbr: list[int], n: int) -> set[int]:
    return {m for m in range(1, 1 << n) if is_connected(nbr, m)}


def brute_minimax(nbr: list[int], w: list[float], targets: list[float]) -> float:
    """Least worst |W/t − 1| over all labellings of the nodes into connected parts, one per target."""
    n, k, best = len(w), len(targets), np.inf
    for lab in itertools.product(range(k), repeat=n):
        ms = [sum(1 << i for i in range(n) if lab[i] == p) for p in range(k)]
        if all(is_connected(nbr, m) for m in ms):
            best = min(best, max(abs(sum(w[i] for i in range(n) if lab[i] == p) / targets[p] - 1) for p in range(k)))
    return best


def test_connected_sets_are_all_and_only_the_connected_sets_under_the_cap():
    nbr = masks(lattice(3, 3))
    w = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0]
    full = (1 << 9) - 1
    everything = brute_connected(nbr, 9)
    for root, cap in [(0, 1e9), (4, 12.0), (8, 7.0)]:
        got = [m for m, _ in connected_sets(nbr, w, root, full, cap)]
        assert len(got) == len(set(got))  # each set once
        want = {m for m in everything if m >> root & 1 and sum(w[i] for i in range(9) if m >> i & 1) <= cap}
        assert set(got) == want


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_split_equals_brute_force(seed):
    """3 × 3 lattice (and a 2 × 4 one) split into 3 connected parts with unequal targets."""
    rng = np.random.default_rng(seed)
    for rows, cols in [(3, 3), (2, 4)]:
        n = rows * cols
        nbr = masks(lattice(rows, cols))
        w = rng.integers(1, 20, n).astype(float).tolist()
        targets = [sum(w) / 4, sum(w) / 4, sum(w) / 2]  # a two-officer part among them
        want = brute_minimax(nbr, w, targets)
        splits, worst = best_split(nbr, w, targets, band=0.0, bound=10.0)
        assert worst == pytest.approx(want)
        for lab in splits:  # every returned split is a real one: connected parts at that deviation
            for p in range(3):
                m = sum(1 << i for i in range(n) if lab[i] == p)
                assert is_connected(nbr, m)
                assert abs(sum(w[i] for i in range(n) if lab[i] == p) / targets[p] - 1) <= want + 1e-9


def test_repair_reaches_the_optimum_of_a_small_plan():
    """A bad but connected plan of a 3 × 3 lattice in 3 beats: the repair re-cuts all three jointly."""
    nbrs = lattice(3, 3)
    w = [9.0, 1.0, 1.0, 8.0, 2.0, 1.0, 7.0, 3.0, 1.0]
    shared = [{j: 1.0 for j in nb} for nb in nbrs]
    g = Graph(nbrs, shared, w, [1.0] * 9, [4.0] * 9)
    mu = sum(w) / 3
    part = Partition(g, [0, 1, 2] * 3, [mu] * 3, band=0.0, gamma=0.0)  # three columns
    before = np.abs(part.deviations()).max()
    repair(part, deadline=float("inf"), lns_radii=())
    after = np.abs(part.deviations()).max()
    assert after == pytest.approx(brute_minimax(masks(nbrs), w, [mu] * 3))
    assert after < before
    assert all(part.region_connected(r) for r in range(3))


def path_city(weights: list[float]) -> gpd.GeoDataFrame:
    """Unit squares (1 km) in a row: grid i touches only i − 1 and i + 1, by a full edge."""
    polys = [shapely.box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(len(weights))]
    return gpd.GeoDataFrame({"workload": weights}, geometry=polys, crs=32650)


def test_trapped_grid_bound_on_a_path():
    """Path 60 | 100 | 100 | 40 with 3 officers (mean 100): grid 0 alone is −40 %, with its only neighbour
    +60 %; grid 3 alone −60 %, with its neighbour +40 %. So some beat deviates ≥ 40 %: {0} {1} {2,3}
    reaches it, and nothing does better (brute force over the 3 cuts agrees)."""
    w = np.array([60.0, 100.0, 100.0, 40.0])
    nbrs = [[1], [0, 2], [1, 3], [2]]
    tb = trapped_grid_bound(nbrs, w, mu=100.0, goal=0.15)
    assert tb.value == pytest.approx(0.4)
    assert tb.grid in (0, 3)
    best = min(max(abs(sum(w[a:b]) / 100 - 1) for a, b in zip((0,) + cut, cut + (4,)))
               for cut in itertools.combinations(range(1, 4), 2))
    assert best == pytest.approx(0.4)
    # with two-officer beats allowed grid 3 gets closer, yet not within the band: alone −60 %, with 2
    # 140 (+40 % or −30 %), with 1 and 2 240 / 2 (+20 %), with all 300 / 2 (+50 %)
    assert trapped_grid_bound(nbrs, w, mu=100.0, goal=0.15, max_team=2).value == pytest.approx(0.2)
    # a heavy grid next door can take any neighbour into a multi-officer beat: no proof
    assert trapped_grid_bound(nbrs, np.array([60.0, 300.0, 100.0, 40.0]), mu=100.0, goal=0.15).value < 0.4


def test_fit_reaches_and_reports_the_trapped_bound():
    grids = path_city([60.0, 100.0, 100.0, 40.0])
    bb = BalancedBeats(3, seed=0, max_seconds=5).fit(grids)
    assert bb.report_["lower_bound_dev"] == pytest.approx(0.4)
    assert bb.report_["max_abs_dev"] == pytest.approx(0.4)
    assert bb.report_["lower_bound_reason"].startswith(("grid 0 is trapped", "grid 3 is trapped"))
    assert "lower bound 40.0 %" in bb.report_["summary"]


def test_two_grids_competing_for_one_small_neighbour():
    """Path 114 | 70 | 30 | 70 | 100 | 10 | 106, 5 officers (mean 100). Each 70 alone can reach the mean with the
    30 between them, so no single grid is trapped; but only one of them can have it, and both in one
    beat make 170. Some beat is ≥ 30 % off; {0} {1, 2} {3} {4, 5} {6} reaches it."""
    w = [114.0, 70.0, 30.0, 70.0, 100.0, 10.0, 106.0]
    nbrs = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5]]
    assert trapped_grid_bound(nbrs, np.array(w), mu=100.0, goal=0.15).value == 0.0
    from geogrid.beat_bounds import trapped_pair_bound
    tp = trapped_pair_bound(nbrs, np.array(w), mu=100.0, goal=0.15)
    assert tp.value == pytest.approx(0.3)
    assert set(tp.best_set) == {1, 3}
    best = min(max(abs(sum(w[a:b]) / 100 - 1) for a, b in zip((0,) + cut, cut + (7,)))
               for cut in itertools.combinations(range(1, 7), 4))
    assert best == pytest.approx(0.3)
    bb = BalancedBeats(5, seed=0, max_seconds=5).fit(path_city(w))
    assert bb.report_["lower_bound_dev"] == pytest.approx(0.3)
    assert bb.report_["max_abs_dev"] == pytest.approx(0.3)
    assert "compete" in bb.report_["lower_bound_reason"]
