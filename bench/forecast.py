"""Forecast backtest on the Chicago aggravated assaults (2010–2019), the published protocol.

Cells: H3 res 9 whose centroid lies in the union of the police beats. Test periods: the 52 ISO weeks of
2019 (horizon 7 days) and the thirteen 28-day blocks from 2019-01-01 (horizon 28 days); each forecast uses
only incidents before its period starts. Area shares 1 %, 5 %, 10 % of the cells; metrics averaged over
the periods. Writes bench/results/forecast.json and the table section of docs/forecast.md.

    /work/main/.venv/bin/python bench/forecast.py          # (also run by `make bench`)
    /work/main/.venv/bin/python bench/forecast.py --tune   # every 4th week of 2018 only, for tuning

Methods are tuned on 2018 (``--tune``), never on the 2019 test year; ``--tune`` writes nothing.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from threadpoolctl import threadpool_limits

from geogrid.cells import points_to_cells, study_area_cells
from geogrid.forecast import KDE, Learned, LastPeriod, LongWindow, Prospective, backtest, block_periods, summarise, weekly_periods

ROOT = Path(__file__).resolve().parents[1]
CHICAGO = ROOT / ".." / "shared" / "data" / "real" / "chicago"
DATASET = "chicago_aggravated_assaults"
BASELINES = ["last_period", "long_window", "long_window_5y", "kde", "prospective"]
MARK_START, MARK_END = "<!-- forecast-table:start -->", "<!-- forecast-table:end -->"


def load() -> tuple[pd.DataFrame, np.ndarray]:
    raw = pd.read_csv(CHICAGO / "raw" / "crimemappingdata" / "chicago_aggravated_assaults.csv.gz")
    incidents = pd.DataFrame({
        "occurred_at": pd.to_datetime(raw["date"], format="%Y-%m-%d %H:%M"),
        "h3": points_to_cells(raw["longitude"].to_numpy(), raw["latitude"].to_numpy(), 9),
        "category": raw["loc_cat"],  # location category: the only "category mix" this file has
    })
    beats = gpd.read_file(CHICAGO / "converted" / "police_beats.geojson")
    return incidents, study_area_cells(beats, 9)


def methods() -> dict:
    return {"last_period": LastPeriod(), "long_window": LongWindow(364), "long_window_5y": LongWindow(1820),
            "kde": KDE(), "prospective": Prospective(), "learned": Learned(seed=0)}


def compare(results: pd.DataFrame, horizon: int, share: float = 0.05) -> dict:
    """Learned vs the best baseline at one area share: means and the paired standard error over periods."""
    sub = results[(results.horizon_days == horizon) & (results.area_share == share)]
    per = sub.pivot(index="period_start", columns="method", values="pai")
    best = per[BASELINES].mean().idxmax()
    diff = per["learned"] - per[best]
    return {"horizon_days": horizon, "area_share": share, "best_baseline": best,
            "best_baseline_pai": float(per[best].mean()), "learned_pai": float(per["learned"].mean()),
            "ratio": float(per["learned"].mean() / per[best].mean()),
            "diff": float(diff.mean()), "diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            "learned_wins_periods": int((diff > 0).sum()), "n_periods": int(len(diff))}


def markdown(summary: pd.DataFrame, comparisons: list[dict], seconds: float) -> str:
    lines = [f"Reproduce: `/work/main/.venv/bin/python bench/forecast.py` (run by `make bench`; {seconds:.0f} s here).", ""]
    for horizon, sub in summary.groupby("horizon_days"):
        n = int(sub["n_periods"].iloc[0])
        lines += [f"**Horizon {horizon} days** ({n} test periods of 2019; mean over periods)", "",
                  "| method | area | hit rate | PAI | PEI* | warning accuracy | ceiling |", "|---|---|---|---|---|---|---|"]
        for r in sub.itertuples():
            lines.append(f"| {r.method} | {r.area_share:.0%} | {r.hit_rate:.3f} | {r.pai:.2f} | {r.pei_star:.3f} "
                         f"| {r.warning_accuracy:.3f} | {r.warning_ceiling:.3f} |")
        lines.append("")
    lines += ["**Learned model against the best baseline, PAI at 5 % of the area**", "",
              "| horizon | best baseline | its PAI | learned PAI | ratio | difference ± paired SE | periods learned wins |",
              "|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c['horizon_days']} d | {c['best_baseline']} | {c['best_baseline_pai']:.2f} | {c['learned_pai']:.2f} "
                     f"| {c['ratio']:.3f} | {c['diff']:+.2f} ± {c['diff_se']:.2f} | {c['learned_wins_periods']}/{c['n_periods']} |")
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    doc = ROOT / "docs" / "forecast.md"
    text = doc.read_text(encoding="utf-8")
    if MARK_START not in text or MARK_END not in text:
        print(f"{doc} has no table markers; table not written", file=sys.stderr)
        return
    head, rest = text.split(MARK_START, 1)
    tail = rest.split(MARK_END, 1)[1]
    doc.write_text(f"{head}{MARK_START}\n{section}{MARK_END}{tail}", encoding="utf-8")


def main(tune: bool = False) -> None:
    console = Console()
    t0 = time.perf_counter()
    incidents, cells = load()
    console.print(f"{len(incidents):,} incidents, {len(cells):,} res-9 cells in the beats")
    if tune:  # the tuning year, reduced: 13 weeks and 4 blocks of 28 days
        protocol = [weekly_periods(2018)[::4], block_periods("2018-01-01", 13, 28)[::3]]
    else:
        protocol = [weekly_periods(2019), block_periods("2019-01-01", 13, 28)]
    parts = []
    # one thread: the machines are shared and OpenMP oversubscription made boosting 2x slower
    with threadpool_limits(1), Progress(console=console) as progress:
        for periods in protocol:
            task = progress.add_task(f"{len(periods)} periods", total=len(periods))
            parts.append(backtest(incidents, cells, periods, methods(),
                                  on_period=lambda i, n, task=task: progress.update(task, completed=i)))
    results = pd.concat(parts, ignore_index=True)
    seconds = time.perf_counter() - t0
    summary = summarise(results)
    comparisons = [compare(results, h) for h in (7, 28)]

    year = 2018 if tune else 2019
    table = Table(title=f"Chicago aggravated assaults, {year} backtest ({seconds:.0f} s)")
    for col in ["horizon", "method", "area", "hit rate", "PAI", "PEI*", "warn. acc."]:
        table.add_column(col, justify="right")
    for r in summary.itertuples():
        table.add_row(str(r.horizon_days), r.method, f"{r.area_share:.0%}", f"{r.hit_rate:.3f}",
                      f"{r.pai:.2f}", f"{r.pei_star:.3f}", f"{r.warning_accuracy:.3f}")
    console.print(table)
    for c in comparisons:
        console.print(f"{c['horizon_days']} d, PAI@5%: learned {c['learned_pai']:.2f} vs {c['best_baseline']} "
                      f"{c['best_baseline_pai']:.2f} (ratio {c['ratio']:.3f}, diff {c['diff']:+.2f} ± {c['diff_se']:.2f})")

    if tune:
        return
    rows = []
    for r in summary.to_dict("records"):
        row = {"dataset": DATASET, **r, "horizon_days": int(r["horizon_days"]), "n_periods": int(r["n_periods"])}
        if r["method"] == "learned" and r["area_share"] == 0.05:
            c = next(c for c in comparisons if c["horizon_days"] == r["horizon_days"])
            row.update({"best_baseline": c["best_baseline"], "best_baseline_pai": c["best_baseline_pai"],
                        "ratio_to_best_baseline": c["ratio"], "diff_se": c["diff_se"]})
        rows.append(row)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "forecast.json").write_text(json.dumps(rows, indent=1))
    write_docs(markdown(summary, comparisons, seconds))
    console.print(f"wrote {out / 'forecast.json'} and docs/forecast.md")


if __name__ == "__main__":
    main(tune="--tune" in sys.argv[1:])
