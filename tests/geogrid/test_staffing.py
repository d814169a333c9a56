"""Tests of geogrid.staffing: requirement rules, citywide summary, and integer allocation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geogrid.errors import InputError
from geogrid.policy import StaffingPolicy
from geogrid.staffing import allocate, requirement_summary, staffing_requirement

N_URBAN, N_RURAL = 24, 16


@pytest.fixture(scope="module")
def city() -> tuple[pd.DataFrame, pd.Series]:
    """40 grids (24 urban, 16 rural), one year, random tiers, 1 in 4 urban grids with a key area."""
    rng = np.random.default_rng(7)
    n = N_URBAN + N_RURAL
    kind = np.array(["urban"] * N_URBAN + ["rural"] * N_RURAL)
    f = pd.DataFrame({"n_theft": rng.poisson(np.where(kind == "urban", 200, 20)),
                      "n_assault": rng.poisson(np.where(kind == "urban", 30, 3)),
                      "kind": kind, "key_old_compound": (kind == "urban") & (rng.random(n) < 0.25),
                      "period_days": 365.0},
                     index=pd.Index([f"G{i:02d}" for i in range(n)], name="code"))
    tiers = pd.Series(np.where(kind == "urban", rng.integers(1, 5, n), rng.integers(2, 5, n)), index=f.index)
    return f, tiers


@pytest.fixture(scope="module")
def req(city) -> pd.DataFrame:
    return staffing_requirement(*city)


def test_requirement_rules(city, req):
    f, tiers = city
    urban, rural = req["kind"] == "urban", req["kind"] == "rural"
    assert (req.loc[urban, "officers_required"] >= 1).all()
    assert (req.loc[rural, ["officers_required", "auxiliaries_required"]].sum(axis=1) >= 1).all()
    t1 = urban & (req["tier"] == 1)
    assert (req.loc[t1, "auxiliaries_required"] >= 3 + req.loc[t1, "key_area"]).all()  # 1+3 (+1 key area)
    assert req.loc[req["key_area"], "reasons_en"].str.contains("key area").all()
    assert req.loc[req["key_area"], "reasons_zh"].str.contains("老旧小区").all()


def test_workload_binds_for_a_busy_grid():
    """One urban tier-4 grid with 2,000 assaults a year: 8,000 h, far above the tier table's 1 officer."""
    f = pd.DataFrame({"n_assault": [2000], "kind": ["urban"], "period_days": [365.0]},
                     index=pd.Index(["B"], name="code"))
    r = staffing_requirement(f, pd.Series({"B": 4})).loc["B"]
    p = StaffingPolicy.default().workload
    hours = 2000 * p.hours("assault")
    assert r["incident_hours"] == pytest.approx(hours)
    expected_off = (3 * 250 + 0.5 * hours) / 2000
    assert r["officer_fte"] == pytest.approx(expected_off)
    assert r["officers_required"] == int(np.floor(expected_off + 0.5)) > 1
    assert "workload" in r["reasons_en"] and "工作量" in r["reasons_zh"]


def test_empty_rural_grid_needs_one_auxiliary():
    f = pd.DataFrame({"n_theft": [0], "kind": ["rural"], "period_days": [365.0]}, index=pd.Index(["E"], name="code"))
    r = staffing_requirement(f, pd.Series({"E": 4})).loc["E"]
    assert (r["officers_required"], r["auxiliaries_required"]) == (0, 1)


def test_summary(req):
    s = requirement_summary(req, officers=10, auxiliaries=500)
    assert s.loc["officers", "hard_minimum"] == N_URBAN
    assert s.loc["officers", "shortfall"] == req["officers_required"].sum() - 10
    assert s.loc["auxiliaries", "shortfall"] == max(0, req["auxiliaries_required"].sum() - 500)


def _feasible(req: pd.DataFrame, officers: int, auxiliaries: int) -> bool:
    u, k, r = req["min_officers"].sum(), req["min_auxiliaries"].sum(), req["min_either"].sum()
    return officers >= u and auxiliaries >= k and officers + auxiliaries >= u + k + r


HEADCOUNTS = [(0, 0), (5, 3), (24, 2), (24, 6), (24, 21), (30, 30), (60, 120), (500, 900)]
HEADCOUNT_IDS = ["none", "far-too-few", "officers-just-enough-aux-short", "key-areas-only",
                 "exact-minimum", "some-spare", "most-needs", "surplus"]


@pytest.mark.parametrize(("officers", "auxiliaries"), HEADCOUNTS, ids=HEADCOUNT_IDS)
def test_allocation_sums_to_headcount(req, officers, auxiliaries):
    a = allocate(req, officers=officers, auxiliaries=auxiliaries)
    assert a["officers"].sum() == officers and a["auxiliaries"].sum() == auxiliaries
    assert (a[["officers", "auxiliaries"]] >= 0).all().all()
    assert a.index.equals(req.index) and a["reason_en"].str.len().gt(0).all() and a["reason_zh"].str.len().gt(0).all()


FEASIBLE = [(24, 21), (30, 30), (60, 120), (500, 900), (40, 5)]  # minimums: 24 officers, 5 key + 16 rural


@pytest.mark.parametrize(("officers", "auxiliaries"), FEASIBLE,
                         ids=["exact-minimum", "some-spare", "most-needs", "surplus", "officers-fill-rural"])
def test_minimums_honoured_whenever_staff_suffice(req, officers, auxiliaries):
    assert _feasible(req, officers, auxiliaries)
    a = allocate(req, officers=officers, auxiliaries=auxiliaries)
    assert (a["officers"] >= req["min_officers"]).all()
    assert (a["auxiliaries"] >= req["min_auxiliaries"]).all()
    assert (a["officers"] + a["auxiliaries"] >= req["min_officers"] + req["min_auxiliaries"] + req["min_either"]).all()


def test_headcounts_cover_both_cases(req):
    assert any(_feasible(req, o, x) for o, x in HEADCOUNTS) and not all(_feasible(req, o, x) for o, x in HEADCOUNTS)


@pytest.mark.parametrize("officers", [5, 12, 20], ids=["5", "12", "20"])
def test_officer_shortfall_goes_to_lowest_tiers(req, officers):
    a = allocate(req, officers=officers, auxiliaries=100)
    urban = req["kind"] == "urban"
    staffed, unstaffed = urban & (a["officers"] > 0), urban & (a["officers"] == 0)
    assert unstaffed.sum() == N_URBAN - officers
    order = req[urban].sort_values(["tier", "workload_hours"], ascending=[True, False]).index
    assert set(order[:officers]) == set(a.index[staffed])  # most complex, then busiest, served first
    assert a.loc[unstaffed, "reason_en"].str.contains("no own officer").all()
    assert a.loc[unstaffed, "reason_zh"].str.contains("警力不足").all()


def test_surplus_follows_workload(req):
    a = allocate(req, officers=500, auxiliaries=900)
    assert (a["officers"] >= req["officers_required"]).all() and (a["auxiliaries"] >= req["auxiliaries_required"]).all()
    busiest, quietest = req["officer_fte"].idxmax(), req["officer_fte"].idxmin()
    assert a.loc[busiest, "officers"] > a.loc[quietest, "officers"]
    assert a["reason_en"].str.contains("surplus").any()


def test_extra_officers_go_to_high_tiers_first(req):
    u = int(req["min_officers"].sum())
    a = allocate(req, officers=u + 3, auxiliaries=200)
    extra = a["officers"] - req["min_officers"]
    assert req.loc[extra > 0, "tier"].max() <= req.loc[(extra == 0) & (req["officers_required"] > req["min_officers"]), "tier"].min()


@pytest.mark.parametrize(("officers", "auxiliaries", "match"),
                         [(-1, 0, "officers"), (1.5, 0, "officers"), (0, True, "auxiliaries")],
                         ids=["negative", "fraction", "bool"])
def test_bad_headcount(req, officers, auxiliaries, match):
    with pytest.raises(InputError, match=match):
        allocate(req, officers=officers, auxiliaries=auxiliaries)


def test_bad_tiers(city):
    f, tiers = city
    with pytest.raises(InputError, match="tier"):
        staffing_requirement(f, tiers.replace({4: 5}))
    with pytest.raises(InputError, match="no tier"):
        staffing_requirement(f, tiers.iloc[1:])
