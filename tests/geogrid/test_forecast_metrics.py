"""Forecast metrics on hand-made examples whose answers are worked out in the comments."""
import numpy as np
import pytest

from geogrid.errors import InputError
from geogrid.forecast.metrics import evaluate, flag_top, n_flagged

EXACT = 1e-12


@pytest.fixture
def ten_cells():
    """Ten cells, strictly ranked scores on the first five; 6 incidents in three cells (one unflagged at 20 %)."""
    scores = np.array([5, 4, 3, 2, 1, 0, 0, 0, 0, 0], dtype=float)
    actual = np.array([2, 0, 1, 0, 0, 3, 0, 0, 0, 0], dtype=float)
    return scores, actual


# k = 2 flags cells 0, 1: 2 of 6 incidents; best 2 cells hold 3 + 2 = 5; 3 cells had crime (a* = 2).
AT_20 = dict(n_flagged=2, hit_rate=2 / 6, pai=(2 / 6) / 0.2, pei=2 / 5, pei_star=2 / 5,
             warning_accuracy=1 / 2, warning_ceiling=1.0)
# k = 5 flags cells 0–4: 3 of 6; best 5 cells hold 6; a* = min(5, 3) = 3 so PEI* = 0.5 × 3/5;
# PAI* = (6/6)/(3/10) = 10/3 and PAI = 1, so PEI* = 0.3 both ways.
AT_50 = dict(n_flagged=5, hit_rate=0.5, pai=1.0, pei=0.5, pei_star=0.3,
             warning_accuracy=2 / 5, warning_ceiling=3 / 5)


@pytest.mark.parametrize("share, expected", [(0.2, AT_20), (0.5, AT_50)], ids=["20pct", "50pct"])
def test_metrics_match_hand_computation(ten_cells, share, expected):
    scores, actual = ten_cells
    (row,) = evaluate(scores, actual, (share,))
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=EXACT), key


def test_ties_are_broken_by_seed_not_by_position():
    """All-equal scores: the flagged set has exactly k cells, repeats with a seed, and is not just the first k."""
    scores = np.zeros(100)
    a, b = flag_top(scores, 0.1, seed=1), flag_top(scores, 0.1, seed=1)
    assert a.sum() == 10 and np.array_equal(a, b)
    assert not a[:10].all()


def test_strict_leaders_always_flagged_before_ties():
    scores = np.array([9.0, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    for seed in range(5):
        assert flag_top(scores, 0.2, seed=seed)[0]


def test_period_without_incidents_gives_nan_hit_rate():
    (row,) = evaluate(np.arange(10.0), np.zeros(10), (0.1,))
    assert np.isnan(row["hit_rate"]) and np.isnan(row["pei_star"]) and row["warning_accuracy"] == 0.0


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1], ids=["zero", "above_one", "negative"])
def test_bad_area_share_is_refused(bad):
    with pytest.raises(InputError, match="area share"):
        n_flagged(100, bad)


def test_nan_scores_are_refused():
    with pytest.raises(InputError, match="NaN"):
        evaluate(np.array([1.0, np.nan]), np.array([1.0, 0.0]), (0.5,))


def test_at_least_one_cell_is_flagged():
    assert n_flagged(10, 0.01) == 1
