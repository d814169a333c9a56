"""Benchmark: MCLP for 5,000 demand cells × 500 candidate sites (sparse HiGHS), spopt as reference.

Run: /work/main/.venv/bin/python bench/coverage.py   → bench/results/coverage.json
Goal: under 20 s with a MIP gap ≤ 1 %. Reference (same run): spopt's PuLP/CBC MCLP on 2,000 × 200,
and our model on that same instance (same optimum expected).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pulp
from rich.console import Console
from rich.table import Table

from geogrid.siting import coverage_matrix, mclp
from geogrid.travel import StraightLineTravel

LON0, LAT0 = 104.06, 30.66  # a city-sized area: 30 × 30 km around Chengdu's centre
SIDE_KM, MINUTES, K, SEED = 30.0, 5.0, 20, 42
OUT = Path(__file__).resolve().parent / "results" / "coverage.json"


def _instance(n_demand: int, n_sites: int, seed: int):
    """Clustered demand (hotspots over a uniform background) with Poisson incident counts; uniform sites."""
    rng = np.random.default_rng(seed)
    dlon, dlat = 1 / (111.32 * np.cos(np.radians(LAT0))), 1 / 110.57
    centres = rng.uniform(-SIDE_KM / 2, SIDE_KM / 2, (12, 2))
    hot = centres[rng.integers(0, 12, n_demand // 2)] + rng.normal(0, 2.0, (n_demand // 2, 2))
    xy = np.clip(np.vstack([hot, rng.uniform(-SIDE_KM / 2, SIDE_KM / 2, (n_demand - len(hot), 2))]),
                 -SIDE_KM / 2, SIDE_KM / 2)
    weights = rng.poisson(np.r_[np.full(len(hot), 6.0), np.full(n_demand - len(hot), 1.5)]).astype(float)
    sxy = rng.uniform(-SIDE_KM / 2, SIDE_KM / 2, (n_sites, 2))
    pts = lambda a: gpd.GeoSeries(gpd.points_from_xy(LON0 + a[:, 0] * dlon, LAT0 + a[:, 1] * dlat), crs=4326)  # noqa: E731
    return pts(xy), pts(sxy), weights


def ours(n_demand, n_sites, k):
    demand, sites, w = _instance(n_demand, n_sites, SEED)
    t0 = time.perf_counter()
    a = coverage_matrix(StraightLineTravel(), sites, demand, MINUTES)
    t_matrix = time.perf_counter() - t0
    res = mclp(w, a, k)
    return {"demand": n_demand, "sites": n_sites, "k": k, "seconds": t_matrix + res.seconds,
            "matrix_seconds": t_matrix, "solve_seconds": res.seconds, "gap": res.gap,
            "covered_weight": res.covered_weight, "bound": res.bound, "share": res.share, "nnz": int(a.nnz)}


def spopt_reference(n_demand, n_sites, k):
    from spopt.locate import MCLP

    demand, sites, w = _instance(n_demand, n_sites, SEED)
    times = StraightLineTravel().times_from(sites, demand)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spopt 0.7 on PuLP 3.3
        t0 = time.perf_counter()
        model = MCLP.from_cost_matrix(times, w, service_radius=MINUTES, p_facilities=k)
        t1 = time.perf_counter()
        model.solve(pulp.PULP_CBC_CMD(msg=False))
        t2 = time.perf_counter()
    return {"build_seconds": t1 - t0, "solve_seconds": t2 - t1, "seconds": t2 - t0,
            "covered_weight": float(model.problem.objective.value())}


def main() -> None:
    console = Console()
    with console.status("MCLP 5,000 × 500 (HiGHS)…"):
        big = ours(5000, 500, K)
    with console.status("MCLP 2,000 × 200: ours and spopt (PuLP + CBC)…"):
        small = ours(2000, 200, K)
        ref = spopt_reference(2000, 200, K)
    table = Table(title=f"MCLP, {MINUTES:g} min straight-line coverage, k = {K}")
    for col in ("instance", "model", "seconds", "gap", "covered weight", "share"):
        table.add_column(col, justify="right")
    table.add_row("5,000 × 500", "sparse milp (HiGHS)", f"{big['seconds']:.2f}", f"{big['gap']:.2%}",
                  f"{big['covered_weight']:.0f}", f"{big['share']:.1%}")
    table.add_row("2,000 × 200", "sparse milp (HiGHS)", f"{small['seconds']:.2f}", f"{small['gap']:.2%}",
                  f"{small['covered_weight']:.0f}", f"{small['share']:.1%}")
    table.add_row("2,000 × 200", "spopt (PuLP build + CBC)", f"{ref['seconds']:.2f}", "—",
                  f"{ref['covered_weight']:.0f}", "")
    console.print(table)
    ratio = ref["seconds"] / small["seconds"]
    console.print(f"2,000 × 200: spopt build {ref['build_seconds']:.2f} s + solve {ref['solve_seconds']:.2f} s; "
                  f"ours {small['seconds']:.3f} s ({ratio:.0f}× faster), same optimum: "
                  f"{abs(ref['covered_weight'] - small['covered_weight']) < 1e-6}")
    result = {**{key: big[key] for key in ("demand", "sites", "k", "seconds", "gap")},
              "minutes": MINUTES, "matrix_seconds": big["matrix_seconds"], "solve_seconds": big["solve_seconds"],
              "covered_share": big["share"], "goal_met": big["seconds"] < 20 and big["gap"] <= 0.01,
              "reference": {"demand": 2000, "sites": 200, "k": K, "spopt_build_seconds": ref["build_seconds"],
                            "spopt_solve_seconds": ref["solve_seconds"], "spopt_objective": ref["covered_weight"],
                            "ours_seconds": small["seconds"], "ours_objective": small["covered_weight"],
                            "speedup": ratio}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
