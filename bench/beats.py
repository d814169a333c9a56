"""Beats benchmark: geogrid's BalancedBeats vs spopt on the same inputs, in the same run.

Cases: synthetic Voronoi cities of 860 grids / 320 officers and 5,000 grids / 1,500 officers (seeded,
lognormal workload), and Chicago's 277 beats grouped into 22 regions (2019 sample incidents).
Ours runs twice: one officer per beat (``geogrid``) and with beats that miss the band allowed to pair
up into two-officer beats (``geogrid-team2``, ``max_team=2``); its rows add ``lower_bound`` (the least
max deviation any plan of that kind can reach, :mod:`geogrid.beat_bounds`) and ``lower_bound_reason``.
spopt reference: Region-KMeans (balances nothing, the issue's reference) and max-p with a workload
floor of 0.85 × the mean (the closest spopt model to a band). Each spopt run is time-boxed in a child
process; a run that overruns is reported with seconds = the box and no figures.
Run: /work/main/.venv/bin/python bench/beats.py
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from geogrid.beats import BalancedBeats  # noqa: E402
from geogrid.beats_report import evaluate_beats  # noqa: E402

CHICAGO = ROOT / ".." / "shared" / "data" / "real" / "chicago" / "converted"
SPOPT_BOX_S = 120.0
OURS_BUDGET_S = {"city-860": 20.0, "city-5000": 30.0, "chicago-22": 10.0}


def voronoi_city(n: int, seed: int, side: float = 30_000.0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    frame = shapely.box(0, 0, side, side)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(rng.uniform(0, side, (n, 2))), extend_to=frame)
    polys = shapely.intersection(np.asarray(cells.geoms), frame)
    return gpd.GeoDataFrame({"workload": rng.lognormal(3, 0.8, n).round() + 1}, geometry=polys, crs=32650)


def chicago() -> gpd.GeoDataFrame:
    beats = gpd.read_file(CHICAGO / "police_beats.geojson")
    crimes = pd.read_csv(CHICAGO / "crimes_2019_sample50k.csv", usecols=["latitude", "longitude"]).dropna()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(crimes.longitude, crimes.latitude), crs=4326)
    hits = gpd.sjoin(pts, beats[["geometry"]], predicate="within")["index_right"].value_counts()
    beats["workload"] = hits.reindex(beats.index, fill_value=0).to_numpy(dtype=float)
    return beats


def _spopt_child(model: str, grids: gpd.GeoDataFrame, k: int, q: mp.Queue) -> None:
    import libpysal
    from spopt.region import MaxPHeuristic, RegionKMeansHeuristic

    w = libpysal.weights.Rook.from_dataframe(grids, use_index=False, silence_warnings=True)
    t = time.perf_counter()
    if model == "regionkmeans":
        m = RegionKMeansHeuristic(grids[["workload"]].to_numpy(), k, w, seed=0)
        m.solve()
    else:
        floor = 0.85 * grids["workload"].sum() / k
        m = MaxPHeuristic(grids, w, ["workload"], "workload", floor, top_n=2, max_iterations_construction=20)
        m.solve()
    q.put((np.asarray(m.labels_), time.perf_counter() - t))


def run_spopt(model: str, grids: gpd.GeoDataFrame, k: int) -> tuple[np.ndarray | None, float]:
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=_spopt_child, args=(model, grids, k, q))
    p.start()
    p.join(SPOPT_BOX_S)
    if p.is_alive():
        p.terminate()
        p.join()
        return None, SPOPT_BOX_S
    return q.get() if not q.empty() else (None, float("nan"))


def row(case, grids, officers, method, seconds, report) -> dict:
    keys = ["workload_cv", "max_abs_dev", "contiguous_share", "mean_polsby_popper"]
    return {"case": case, "grids": len(grids), "officers": officers, "method": method,
            "seconds": round(seconds, 2), **{k: (report or {}).get(k) for k in keys}}


def main() -> None:
    console = Console(width=170)
    cases = [("city-860", voronoi_city(860, 1), 320), ("city-5000", voronoi_city(5000, 2), 1500),
             ("chicago-22", chicago(), 22)]
    rows = []
    for case, grids, k in cases:
        console.print(f"[bold]{case}[/]: {len(grids)} grids, {k} officers")
        for method, team in (("geogrid", 1), ("geogrid-team2", 2)):
            bb = BalancedBeats(k, seed=0, max_seconds=OURS_BUDGET_S[case], max_team=team).fit(grids)
            r = row(case, grids, k, method, bb.report_["seconds"], bb.report_)
            r.update(lower_bound=bb.report_["lower_bound_dev"], lower_bound_dev=bb.report_["lower_bound_dev"],
                     lower_bound_reason=bb.report_["lower_bound_reason"], beats=bb.report_["n_beats"],
                     team_merges=bb.report_["team_merges"], recuts=bb.report_["recuts"],
                     beats_out_of_goal=int((bb.beats_["deviation"].abs() > bb.report_["goal"] + 1e-9).sum()))
            console.print(f"  {method}: {bb.report_['summary']}")
            rows.append(r)
        for model in ("regionkmeans", "maxp"):
            labels, secs = run_spopt(model, grids, k)
            rep = evaluate_beats(grids, labels)[1] if labels is not None else None
            rows.append(row(case, grids, k, f"spopt-{model}", secs, rep))
            if labels is None:
                rows[-1]["note"] = (f"time-boxed at {SPOPT_BOX_S:.0f} s" if secs == SPOPT_BOX_S
                                    else "spopt raised an error (stderr)")
    table = Table(title="Beats: geogrid vs spopt (same inputs, same run)")
    cols = ["case", "grids", "officers", "method", "seconds", "workload_cv", "max_abs_dev", "lower_bound",
            "beats", "beats_out_of_goal", "team_merges", "recuts", "contiguous_share", "mean_polsby_popper", "note"]
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(r.get(c, "")) for c in cols])
    console.print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "beats.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
