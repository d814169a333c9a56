"""How much room is there above the best baseline? Oracles that read the future, on 2016–2019 (not part of `make bench`).

The Chicago protocol (H3 res 9 in the beats; ISO weeks for 7 days, thirteen 28-day blocks for 28 days;
PAI at 5 % of the cells, mean over periods) for:

* the bench's strongest baselines, ``long_window_5y`` (trailing 5-year counts) and ``kde``;
* the chosen learned model, the stacked GLM (:func:`forecast_search.stacked` with ``Stacked()``'s
  defaults, the fast re-implementation checked equal to the library);
* two **oracles that read the future** and so are not methods: ``oracle_5y_centred`` ranks cells by
  their counts in the five years *centred* on the test period, and ``oracle_all_but_test`` by all ten
  years 2010–2019; both leave the test period itself out. They estimate each cell's long-run rate
  better than any forecast can, so they bound what ranking by a long-run rate can reach;

and the stack against each baseline over the four years pooled (paired over the 208 weeks / 52 blocks).

    /work/main/.venv/bin/python bench/research/forecast_ceiling.py   # about 2 minutes
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import forecast_search as fs  # noqa: E402

from geogrid.forecast import block_periods, evaluate, weekly_periods  # noqa: E402

YEARS = (2016, 2017, 2018, 2019)
STACK = {"T": 28, "n": 52, "step": 14}  # Stacked() defaults


def main() -> None:
    d = fs.Data()
    end = d.S.shape[1] - 1
    stack = fs.stacked(d, STACK)
    rows = []
    with threadpool_limits(1):
        for year in YEARS:
            for horizon, periods in ((7, weekly_periods(year)), (28, block_periods(f"{year}-01-01", 13, 28))):
                for start, stop in periods:
                    a, b = int((start - fs.T0).days), int((stop - fs.T0).days)
                    test = d.S[:, b] - d.S[:, a]
                    scores = {
                        "long_window_5y": d.win(a, 1820), "kde": d.kde(a), "stacked": stack(a),
                        "oracle_5y_centred": d.S[:, min(b + 910, end)] - d.S[:, max(a - 910, 0)] - test,
                        "oracle_all_but_test": d.S[:, end] - test,
                    }
                    for name, s in scores.items():
                        (r,) = evaluate(s, d.X[:, a:b].sum(1), (0.05,))
                        rows.append({"method": name, "year": year, "horizon_days": horizon, "start": a, "pai": r["pai"]})
    res = pd.DataFrame(rows)
    for horizon in (7, 28):
        sub = res[res.horizon_days == horizon]
        table = sub.groupby(["method", "year"])["pai"].mean().unstack()
        print(f"PAI at 5 %, horizon {horizon} d\n{table.round(3).to_string()}\n")
        per = sub.pivot_table(index=["year", "start"], columns="method", values="pai")
        for base in ("long_window_5y", "kde"):
            diff = per["stacked"] - per[base]
            print(f"  stacked - {base}, 2016-2019 pooled: {diff.mean():+.3f} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.3f}"
                  f" ({len(diff)} periods)")
        print()


if __name__ == "__main__":
    main()
