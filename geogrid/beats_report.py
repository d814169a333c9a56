"""Figures of a beat plan, from geometry: any labelling (ours, spopt's, the official map) is judged alike."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.compactness import polsby_popper_values, to_metres
from geogrid.errors import InputError


def evaluate_beats(grids: gpd.GeoDataFrame, labels: pd.Series | np.ndarray,
                   officers: pd.Series | None = None,
                   workload_col: str = "workload") -> tuple[gpd.GeoDataFrame, dict]:
    """Dissolve grids into beats and measure balance, contiguity and compactness.

    Parameters
    ----------
    grids
        Grid polygons with a workload column.
    labels
        Beat of each grid (aligned with ``grids`` by position).
    officers
        Officers per beat, indexed by beat; one each when omitted.
    workload_col
        Workload column of ``grids``.

    Returns
    -------
    beats
        GeoDataFrame indexed by beat (CRS of ``grids``): ``geometry`` (dissolved), ``workload``,
        ``officers``, ``workload_per_officer``, ``deviation`` (from the mean per officer), ``n_grids``,
        ``contiguous`` (the dissolved beat is one polygon: corner touches do not count) and
        ``polsby_popper`` (in metres).
    report
        ``n_beats, officers, workload_cv, max_abs_dev, max_min_ratio, contiguous_share,
        mean_polsby_popper, worst_polsby_popper, mean_grids_per_beat``.
    """
    labels = np.asarray(labels)
    if len(labels) != len(grids):
        raise InputError("labels must have one entry per grid")
    metric = to_metres(grids)
    w = pd.to_numeric(grids[workload_col]).to_numpy(dtype=float)
    frame = pd.DataFrame({"beat": labels, "w": w})
    agg = frame.groupby("beat").agg(workload=("w", "sum"), n_grids=("w", "size"))
    if officers is None:
        agg["officers"] = 1
    else:
        agg["officers"] = pd.Series(officers).reindex(agg.index).fillna(1).astype(int).to_numpy()
    geoms_m = np.asarray(metric.geometry.values, dtype=object)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1], True])
    # unions in metres: geographic coordinates would make Polsby–Popper latitude-dependent
    dissolved = [shapely.union_all(geoms_m[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]
    dissolved = np.asarray(dissolved, dtype=object)
    mu = agg["workload"].sum() / agg["officers"].sum() if agg["workload"].sum() > 0 else 1.0
    agg["workload_per_officer"] = agg["workload"] / agg["officers"]
    agg["deviation"] = agg["workload_per_officer"] / mu - 1
    agg["contiguous"] = shapely.get_type_id(dissolved) == 3
    agg["polsby_popper"] = polsby_popper_values(dissolved)
    beats = gpd.GeoDataFrame(agg, geometry=gpd.GeoSeries(dissolved, index=agg.index, crs=metric.crs))
    if grids.crs is not None and metric.crs != grids.crs:
        beats = beats.to_crs(grids.crs)
    wpo = agg["workload_per_officer"].to_numpy()
    report = {
        "n_beats": int(len(agg)),
        "officers": int(agg["officers"].sum()),
        "workload_cv": round(float(wpo.std() / wpo.mean()) if wpo.mean() > 0 else 0.0, 4),
        "max_abs_dev": round(float(np.abs(agg["deviation"]).max()), 4),
        "max_min_ratio": round(float(wpo.max() / wpo.min()) if wpo.min() > 0 else float("inf"), 4),
        "contiguous_share": round(float(agg["contiguous"].mean()), 4),
        "mean_polsby_popper": round(float(agg["polsby_popper"].mean()), 4),
        "worst_polsby_popper": round(float(agg["polsby_popper"].min()), 4),
        "mean_grids_per_beat": round(float(agg["n_grids"].mean()), 2),
    }
    return beats, report


def summary_line(report: dict) -> str:
    """One line for people: max deviation against the goal and the proven lower bound, and why."""
    line = (f"max deviation {100 * report['max_abs_dev']:.1f} % (goal ±{100 * report['goal']:.0f} %), "
            f"CV {report['workload_cv']:.3f}")
    lb = report.get("lower_bound_dev")
    if lb is not None:
        line += f", lower bound {100 * lb:.1f} %"
        if lb > 0:
            line += f" because {report.get('lower_bound_reason', 'of the proofs above')}"
    return line
