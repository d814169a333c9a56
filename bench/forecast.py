"""Forecast backtest on the Chicago aggravated assaults (2010–2019), the published protocol.

Cells: H3 res 9 whose centroid lies in the union of the police beats. Test periods: the 52 ISO weeks of
2019 (horizon 7 days) and the thirteen 28-day blocks from 2019-01-01 (horizon 28 days); each forecast uses
only incidents before its period starts. Area shares 1 %, 5 %, 10 % of the cells; metrics averaged over
the periods. Writes bench/results/forecast.json and the table section of docs/forecast.md.

    /work/main/.venv/bin/python bench/forecast.py             # the 2019 test year (also run by `make bench`)
    /work/main/.venv/bin/python bench/forecast.py --validate  # the same protocol on 2016, 2017 and 2018

Every choice (methods, their parameters, which model is `learned`) is made on the validation years
2016–2018 (``--validate``, which writes bench/results/forecast_validation.json and the validation table
of docs/forecast.md), never on the 2019 test year. Two learned models are reported: `learned`, the
gradient-boosting model the product runs as ``--method learned`` (:class:`geogrid.forecast.Learned`),
and `stacked`, the Poisson GLM stacked over the baselines (:class:`geogrid.forecast.Stacked`), the
learned model that did best on validation.
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
from geogrid.forecast import (
    KDE, LastPeriod, Learned, LongWindow, Prospective, Stacked, backtest, block_periods, evaluate, summarise,
    weekly_periods,
)

ROOT = Path(__file__).resolve().parents[1]
CHICAGO = ROOT / ".." / "shared" / "data" / "real" / "chicago"
DATASET = "chicago_aggravated_assaults"
BASELINES = ["last_period", "long_window", "long_window_5y", "kde", "prospective"]
LEARNED = ["learned", "stacked"]
ORACLES = ["oracle_5y_centred", "oracle_all_but_test"]  # read the future: bounds, not methods
MARK_START, MARK_END = "<!-- forecast-table:start -->", "<!-- forecast-table:end -->"
VAL_START, VAL_END = "<!-- forecast-validation:start -->", "<!-- forecast-validation:end -->"
VALIDATION_YEARS = (2016, 2017, 2018)


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
            "kde": KDE(), "prospective": Prospective(), "learned": Learned(seed=0), "stacked": Stacked()}


def oracles(incidents: pd.DataFrame, cells: np.ndarray, periods, area_shares=(0.01, 0.05, 0.10)) -> pd.DataFrame:
    """Rankings that read the future, scored like the methods: cells by their counts in the five years
    centred on the test period, or in every year of the file, the test period itself left out.

    They know each cell's long-run rate better than any forecast can, so they bound what ranking by a
    long-run rate reaches (docs/forecast.md). Written by hand: a backtest's History refuses the future.
    """
    pos = np.searchsorted(cells, incidents["h3"].to_numpy())
    pos = np.minimum(pos, len(cells) - 1)
    inside = cells[pos] == incidents["h3"].to_numpy()
    t, pos = incidents["occurred_at"].to_numpy()[inside], pos[inside]

    def counts(lo, hi) -> np.ndarray:
        keep = (t >= np.datetime64(lo)) & (t < np.datetime64(hi))
        return np.bincount(pos[keep], minlength=len(cells)).astype(np.float64)

    half, everything = pd.Timedelta(days=910), np.bincount(pos, minlength=len(cells)).astype(np.float64)
    rows = []
    for start, end in periods:
        actual = counts(start, end)
        scores = {"oracle_5y_centred": counts(start - half, end + half) - actual,
                  "oracle_all_but_test": everything - actual}
        for name, score in scores.items():
            for r in evaluate(score, actual, area_shares):
                rows.append({"period_start": start, "period_end": end, "horizon_days": int((end - start).days),
                             "method": name, "n_incidents": int(actual.sum()), **r})
    return pd.DataFrame(rows)


def compare(results: pd.DataFrame, horizon: int, share: float = 0.05, model: str = "learned") -> dict:
    """A learned ``model`` vs the best baseline at one area share: means and the paired SE over periods."""
    sub = results[(results.horizon_days == horizon) & (results.area_share == share)]
    per = sub.pivot(index="period_start", columns="method", values="pai")
    best = per[BASELINES].mean().idxmax()
    diff = per[model] - per[best]
    return {"model": model, "horizon_days": horizon, "area_share": share, "best_baseline": best,
            "best_baseline_pai": float(per[best].mean()), "learned_pai": float(per[model].mean()),
            "ratio": float(per[model].mean() / per[best].mean()),
            "diff": float(diff.mean()), "diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            "learned_wins_periods": int((diff > 0).sum()), "n_periods": int(len(diff))}


def markdown(summary: pd.DataFrame, comparisons: list[dict], seconds: float) -> str:
    lines = [f"Reproduce: `/work/main/.venv/bin/python bench/forecast.py` (run by `make bench`; {seconds:.0f} s here).", ""]
    for horizon, sub in summary.groupby("horizon_days"):
        n = int(sub["n_periods"].iloc[0])
        lines += [f"**Horizon {horizon} days** ({n} test periods of 2019; mean over periods)", "",
                  "| method | area | hit rate | PAI | PEI* | warning accuracy | ceiling |", "|---|---|---|---|---|---|---|"]
        for r in sub.itertuples():
            name = f"{r.method} (oracle: reads the future)" if r.method in ORACLES else r.method
            lines.append(f"| {name} | {r.area_share:.0%} | {r.hit_rate:.3f} | {r.pai:.2f} | {r.pei_star:.3f} "
                         f"| {r.warning_accuracy:.3f} | {r.warning_ceiling:.3f} |")
        lines.append("")
    lines += ["**Learned models against the best baseline, PAI at 5 % of the area** (`learned`: gradient "
              "boosting, `--method learned`; `stacked`: the Poisson GLM over the baselines, chosen on 2016–2018)", "",
              "| model | horizon | best baseline | its PAI | model PAI | ratio | difference ± paired SE | periods model wins |",
              "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c['model']} | {c['horizon_days']} d | {c['best_baseline']} | {c['best_baseline_pai']:.2f} | {c['learned_pai']:.2f} "
                     f"| {c['ratio']:.3f} | {c['diff']:+.2f} ± {c['diff_se']:.2f} | {c['learned_wins_periods']}/{c['n_periods']} |")
    return "\n".join(lines) + "\n"


def write_docs(section: str, start: str = MARK_START, end: str = MARK_END) -> None:
    doc = ROOT / "docs" / "forecast.md"
    text = doc.read_text(encoding="utf-8")
    if start not in text or end not in text:
        print(f"{doc} has no {start} markers; table not written", file=sys.stderr)
        return
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    doc.write_text(f"{head}{start}\n{section}{end}{tail}", encoding="utf-8")


def run(incidents: pd.DataFrame, cells: np.ndarray, year: int, console: Console) -> pd.DataFrame:
    """The protocol on one year: its ISO weeks (7 d) and thirteen 28-day blocks from 1 January (28 d)."""
    parts = []
    # one thread: the machines are shared and OpenMP/BLAS oversubscription made fits several times slower
    with threadpool_limits(1), Progress(console=console) as progress:
        for periods in (weekly_periods(year), block_periods(f"{year}-01-01", 13, 28)):
            task = progress.add_task(f"{year}: {len(periods)} periods", total=len(periods))
            parts.append(backtest(incidents, cells, periods, methods(),
                                  on_period=lambda i, n, task=task: progress.update(task, completed=i)))
    return pd.concat(parts, ignore_index=True).assign(year=year)


def validation_markdown(results: pd.DataFrame, seconds: float) -> str:
    """PAI at 5 % per validation year, and learned against the best baseline of each year."""
    lines = [f"Reproduce: `/work/main/.venv/bin/python bench/forecast.py --validate` ({seconds:.0f} s here).", ""]
    for horizon in (7, 28):
        sub = results[(results.horizon_days == horizon) & (results.area_share == 0.05)]
        table = sub.groupby(["method", "year"])["pai"].mean().unstack()
        table["mean"] = table.mean(axis=1)
        years = [c for c in table.columns if c != "mean"]
        lines += [f"**Horizon {horizon} days, PAI at 5 % of the area** (mean over the periods of each year)", "",
                  "| method | " + " | ".join(str(y) for y in years) + " | mean |", "|---" * (len(years) + 2) + "|"]
        for method, r in table.iterrows():
            lines.append(f"| {method} | " + " | ".join(f"{r[y]:.3f}" for y in years) + f" | {r['mean']:.3f} |")
        lines.append("")
        lines += ["| model | year | best baseline | its PAI | model PAI | difference ± paired SE | periods model wins |",
                  "|---|---|---|---|---|---|---|"]
        for model, year in ((m, y) for m in LEARNED for y in years):
            c = compare(results[results.year == year], horizon, model=model)
            lines.append(f"| {model} | {year} | {c['best_baseline']} | {c['best_baseline_pai']:.3f} | {c['learned_pai']:.3f} "
                         f"| {c['diff']:+.3f} ± {c['diff_se']:.3f} | {c['learned_wins_periods']}/{c['n_periods']} |")
        lines.append("")
    return "\n".join(lines)


def main(validate: bool = False) -> None:
    console = Console()
    t0 = time.perf_counter()
    incidents, cells = load()
    console.print(f"{len(incidents):,} incidents, {len(cells):,} res-9 cells in the beats")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    if validate:
        results = pd.concat([run(incidents, cells, y, console) for y in VALIDATION_YEARS], ignore_index=True)
        seconds = time.perf_counter() - t0
        section = validation_markdown(results, seconds)
        console.print(section)
        rows = [{"dataset": DATASET, "year": year, **r, "horizon_days": int(r["horizon_days"]),
                 "n_periods": int(r["n_periods"])}
                for year in VALIDATION_YEARS for r in summarise(results[results.year == year]).to_dict("records")]
        (out / "forecast_validation.json").write_text(json.dumps(rows, indent=1))
        write_docs(section, VAL_START, VAL_END)
        console.print(f"wrote {out / 'forecast_validation.json'} and docs/forecast.md")
        return

    results = run(incidents, cells, 2019, console).drop(columns="year")
    results = pd.concat([results, oracles(incidents, cells, weekly_periods(2019)),
                         oracles(incidents, cells, block_periods("2019-01-01", 13, 28))], ignore_index=True)
    seconds = time.perf_counter() - t0
    summary = summarise(results)
    comparisons = [compare(results, h, model=m) for m in LEARNED for h in (7, 28)]

    table = Table(title=f"Chicago aggravated assaults, 2019 backtest ({seconds:.0f} s)")
    for col in ["horizon", "method", "area", "hit rate", "PAI", "PEI*", "warn. acc."]:
        table.add_column(col, justify="right")
    for r in summary.itertuples():
        table.add_row(str(r.horizon_days), r.method, f"{r.area_share:.0%}", f"{r.hit_rate:.3f}",
                      f"{r.pai:.2f}", f"{r.pei_star:.3f}", f"{r.warning_accuracy:.3f}")
    console.print(table)
    for c in comparisons:
        console.print(f"{c['horizon_days']} d, PAI@5%: {c['model']} {c['learned_pai']:.2f} vs {c['best_baseline']} "
                      f"{c['best_baseline_pai']:.2f} (ratio {c['ratio']:.3f}, diff {c['diff']:+.2f} ± {c['diff_se']:.2f})")
    at5 = summary[summary.area_share == 0.05].set_index(["horizon_days", "method"])["pai"]
    for h in (7, 28):
        console.print(f"{h} d, PAI@5%, oracles that read the future: " + ", ".join(
            f"{m} {at5[(h, m)]:.2f}" for m in ORACLES) + f" (best baseline {max(at5[(h, b)] for b in BASELINES):.2f})")

    rows = []
    for r in summary.to_dict("records"):
        row = {"dataset": DATASET, **r, "horizon_days": int(r["horizon_days"]), "n_periods": int(r["n_periods"]),
               **({"oracle": True} if r["method"] in ORACLES else {})}
        if r["method"] in LEARNED and r["area_share"] == 0.05:
            c = next(c for c in comparisons if c["horizon_days"] == r["horizon_days"] and c["model"] == r["method"])
            row.update({"best_baseline": c["best_baseline"], "best_baseline_pai": c["best_baseline_pai"],
                        "ratio_to_best_baseline": c["ratio"], "diff_se": c["diff_se"]})
        rows.append(row)
    (out / "forecast.json").write_text(json.dumps(rows, indent=1))
    write_docs(markdown(summary, comparisons, seconds))
    console.print(f"wrote {out / 'forecast.json'} and docs/forecast.md")


if __name__ == "__main__":
    main(validate=bool({"--validate", "--tune"} & set(sys.argv[1:])))
