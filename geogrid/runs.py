"""Analyses run against the store: read incidents and grids, compute with the pure modules, save results.

This is the application ring shared by the CLI and the API: no HTTP, no printing.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from geogrid.cells import cells_to_polygons
from geogrid.errors import NotFound
from geogrid.store import results
from geogrid.store.grids import read_grids
from geogrid.store.plans import active_plan
from geogrid.store.read import read_incidents


@dataclass
class Window:
    """Which incidents an analysis looks at."""

    start: str | None = None
    end: str | None = None
    categories: list[str] | None = None
    origin: str | None = None
    timezone: str = "Asia/Shanghai"

    def params(self) -> dict:
        return {"start": self.start, "end": self.end, "categories": self.categories, "origin": self.origin}


def _inputs(conn: Connection, window: Window):
    plan = active_plan(conn)
    if plan is None:
        raise NotFound("no active plan: load grids first (geogrid ingest grids …)")
    grids = read_grids(conn, plan["id"])
    inc = read_incidents(conn, window.start, window.end, window.categories, window.origin)
    inc["occurred_at"] = inc["occurred_at"].dt.tz_convert(window.timezone)  # hours of day are local
    return plan, grids, inc


def _bounds(inc: pd.DataFrame):
    if not len(inc):
        return None, None
    return inc["occurred_at"].min().to_pydatetime(), inc["occurred_at"].max().to_pydatetime()


def run_hotspots(conn: Connection, window: Window, res: int | None = None, k: int | None = None,
                 fdr: bool = True) -> tuple[int, dict]:
    """Gi* hot spots on H3 cells of the jurisdiction; ``res``/``k`` None = the automatic scale rule."""
    from geogrid.counts import cell_counts
    from geogrid.hotspots import choose_scale, hotspots

    plan, grids, inc = _inputs(conn, window)
    scale = None
    if res is None or k is None:
        scale = choose_scale(inc, grids)
        res, k = res or scale.res, k or scale.k
    counts = cell_counts(inc, res, study_area=grids, population=grids if grids["population"].notna().any() else None)
    hs = hotspots(counts, k=k, fdr=fdr)
    hs["geometry"] = cells_to_polygons(hs["cell"]).to_numpy()
    params = {**window.params(), "res": res, "k": k, "fdr": fdr, "auto_scale": scale is not None}
    run = results.start_run(conn, "hotspots", params, *_bounds(inc), plan_id=plan["id"])
    results.save(conn, "hotspot_cells", run, hs)
    summary = {"incidents": int(len(inc)), "cells": int(len(hs)), "res": res, "k": k,
               "bins": {int(b): int(n) for b, n in hs["gi_bin"].value_counts().items()}}
    if scale is not None:
        summary["scale"] = json.loads(json.dumps(asdict(scale), default=results._jsonable))
    results.finish_run(conn, run, summary)
    return run, summary


def run_emerging(conn: Connection, window: Window, res: int = 9, k: int = 1, period: str = "W") -> tuple[int, dict]:
    """Emerging hot spots: Gi* per time slice + Mann–Kendall trend per cell, ArcGIS pattern classes."""
    from geogrid.emerging import EmergingHotspots

    plan, grids, inc = _inputs(conn, window)
    est = EmergingHotspots(period=period, k=k, res=res).fit(inc, grids)
    pats = est.patterns_.copy()
    pats["geometry"] = cells_to_polygons(pats["cell"]).to_numpy()
    run = results.start_run(conn, "emerging", {**window.params(), "res": res, "k": k, "period": period},
                            *_bounds(inc), plan_id=plan["id"])
    results.save(conn, "emerging_cells", run, pats)
    summary = {"incidents": int(len(inc)), "cells": int(len(pats)),
               "patterns": {str(p): int(n) for p, n in pats["label"].value_counts().items()}}
    results.finish_run(conn, run, summary)
    return run, summary


def run_clusters(conn: Connection, window: Window, method: str = "hdbscan", min_cluster_size: int = 25,
                 seed: int = 0) -> tuple[int, dict]:
    """Density clusters (HDBSCAN/DBSCAN on projected metres) as polygons."""
    from geogrid.clusters import DensityClusters

    plan, grids, inc = _inputs(conn, window)
    est = DensityClusters(method=method, min_cluster_size=min_cluster_size, seed=seed).fit(inc)
    cl = est.clusters_
    run = results.start_run(conn, "clusters", {**window.params(), "method": method,
                                               "min_cluster_size": min_cluster_size, "seed": seed},
                            *_bounds(inc), plan_id=plan["id"])
    results.save(conn, "clusters", run, cl)
    summary = {"incidents": int(len(inc)), "clusters": int(len(cl)),
               "clustered_share": float((est.labels_ >= 0).mean()) if len(inc) else 0.0}
    results.finish_run(conn, run, summary)
    return run, summary


def run_patterns(conn: Connection, window: Window, out: Path, by: str = "category") -> tuple[int, dict]:
    """Hour × weekday matrices with named peaks: JSON and heatmap PNGs in ``out``; summary stored."""
    from geogrid.categories import CategoryMap
    from geogrid.patterns import plot_heatmap, time_matrix, time_patterns

    plan, grids, inc = _inputs(conn, window)
    cmap = CategoryMap.default()
    if by == "grid":
        inc = inc.assign(grid=inc["grid_id"].map(dict(zip(grids["id"], grids["code"]))))
        labels = {c: {"en": f"grid {c}", "zh-CN": f"网格 {c}"} for c in grids["code"]}
        by_col = "grid"
    else:
        labels = {c: {"en": cmap.label(c, "en"), "zh-CN": cmap.label(c, "zh")} for c in cmap.codes}
        by_col = "category"
    doc = time_patterns(inc, by=by_col, labels=labels)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "patterns.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    plot_heatmap(time_matrix(inc), out / "citywide.png", "All incidents (local time)",
                 doc["citywide"].get("peaks"))
    if by_col == "category":
        mats = time_matrix(inc, by_col)
        for key, mat in mats.items():
            plot_heatmap(mat, out / f"{key}.png", labels.get(key, {}).get("en", key), doc["groups"][key].get("peaks"))
    run = results.start_run(conn, "patterns", {**window.params(), "by": by_col}, *_bounds(inc), plan_id=plan["id"])
    summary = {"incidents": int(len(inc)), "citywide": doc["citywide"]["text"],
               "groups": {k: v["text"] for k, v in doc["groups"].items()}}
    results.finish_run(conn, run, {**summary, "document": doc})
    return run, summary


def run_forecast(conn: Connection, window: Window, horizons=(7, 28), methods=("kde",), res: int = 9,
                 cutoff=None, flag_share: float = 0.05) -> tuple[int, dict]:
    """Next-period risk per cell and per grid for each horizon and method, from incidents before ``cutoff``.

    ``cutoff`` defaults to the day after the last incident. ``window.origin='reported'`` trains on
    calls from the public only (the guard against patrol feedback loops). The top ``flag_share`` of
    cells by score are flagged for early warning, and likewise the top ``flag_share`` of grids (at
    least one) by grid score, the sum of the scores of the grid's cells (centroid policy, as
    everywhere a grid is turned into cells): expected incidents for count-scaled methods, a ranking
    for kernel ones. Results go to ``forecast_cells`` and ``forecast_grids``. A learned method with too
    little history to fit scores by the 52-week counts, and the summary's ``fallbacks`` says so.
    """
    from geogrid.cells import grids_to_cells, points_to_cells, study_area_cells
    from geogrid.forecast import History, make_method, scores_to_grids

    plan, grids, inc = _inputs(conn, window)
    if not len(inc):
        raise NotFound("no incidents in the window to forecast from")
    cells = study_area_cells(grids, res)
    cell_grid = grids_to_cells(grids, res, by="code")
    inc = inc.assign(h3=points_to_cells(inc["lon"].to_numpy(), inc["lat"].to_numpy(), res))
    cut = pd.Timestamp(cutoff) if cutoff is not None else inc["occurred_at"].max().normalize() + pd.Timedelta(days=1)
    if cut.tzinfo is None:
        cut = cut.tz_localize(window.timezone)
    history = History(inc, cells, cut)
    cell_frames, grid_frames, fallbacks = [], [], {}
    for h in horizons:
        for m in methods:
            fitted = make_method(m).fit(history, int(h))
            if fitted.fallback_:
                fallbacks[f"{m} {int(h)} d"] = fitted.fallback_
            s = fitted.predict().reindex(cells).fillna(0.0)
            cell_frames.append(_ranked(pd.DataFrame({"cell": cells, "score": s.to_numpy()}), flag_share)
                               .assign(horizon_days=int(h), method=m))
            g = scores_to_grids(s, cell_grid).reindex(grids["code"]).fillna(0.0)  # grids without a cell centre: 0
            grid_frames.append(_ranked(pd.DataFrame({"code": grids["code"].to_numpy(), "score": g.to_numpy()}),
                                       flag_share).assign(horizon_days=int(h), method=m))
    out = pd.concat(cell_frames, ignore_index=True)
    polys = cells_to_polygons(cells)
    out["geometry"] = polys.reindex(out["cell"]).to_numpy()
    by_code = grids.set_index("code")
    per_grid = pd.concat(grid_frames, ignore_index=True)
    per_grid["grid_id"] = by_code["id"].reindex(per_grid["code"]).to_numpy()
    per_grid["geometry"] = by_code.geometry.reindex(per_grid["code"]).to_numpy()
    run = results.start_run(conn, "forecast", {**window.params(), "horizons": list(horizons), "methods": list(methods),
                                               "res": res, "cutoff": cut.isoformat(), "flag_share": flag_share},
                            *_bounds(inc), plan_id=plan["id"])
    results.save(conn, "forecast_cells", run, out)
    results.save(conn, "forecast_grids", run, per_grid)
    summary = {"incidents": int(len(inc)), "cells": int(len(cells)), "grids": int(len(grids)),
               "cutoff": cut.isoformat(), "flagged_per_forecast": _n_flag(len(cells), flag_share),
               "flagged_grids_per_forecast": _n_flag(len(grids), flag_share),
               "fallbacks": fallbacks}
    results.finish_run(conn, run, summary)
    return run, summary


def _n_flag(n: int, share: float) -> int:
    return max(1, int(round(share * n)))


def _ranked(frame: pd.DataFrame, flag_share: float) -> pd.DataFrame:
    """Rank by ``score`` (1 = riskiest; ties by order) and flag the top ``flag_share``."""
    rank = frame["score"].rank(ascending=False, method="first").astype(int).to_numpy()
    return frame.assign(rank=rank, flagged=rank <= _n_flag(len(frame), flag_share))
