"""Benchmark: the whole hot spot pipeline on 1,000,000 incidents at H3 resolution 9.

Pipeline = ``cell_counts`` (validation, H3 indexing, study-area cells with zeros) + ``hotspots``
(k-ring weights, analytical Gi*, FDR, bins). Reference, in the same run: bare h3ronpy indexing of
the same points plus a pandas ``value_counts``. Goal: pipeline <= 2x reference.

Run: ``/work/main/.venv/bin/python bench/hotspots.py`` → ``bench/results/hotspots.json``.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from h3ronpy.vector import coordinates_to_cells
from rich.console import Console
from rich.table import Table
from shapely.geometry import box

from geogrid.counts import cell_counts
from geogrid.hotspots import gi_star, hotspots, kring_weights

N = 1_000_000
RES = 9
REPEATS = 3
SEED = 20240601
# ~38 km x 44 km around central Chicago: ~15,000 res-9 cells, like the field-notes figure
AREA = box(-87.90, 41.70, -87.45, 42.10)
GOAL = 2.0


def make_incidents(n: int, seed: int) -> pd.DataFrame:
    """60 % uniform background, 40 % in 40 Gaussian blobs (sigma 300 m); one year of times."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = AREA.bounds
    nb = int(n * 0.6)
    lon, lat = [rng.uniform(x0, x1, nb)], [rng.uniform(y0, y1, nb)]
    centres = np.column_stack([rng.uniform(x0 + 0.02, x1 - 0.02, 40), rng.uniform(y0 + 0.02, y1 - 0.02, 40)])
    pick = rng.integers(0, 40, n - nb)
    lon.append(rng.normal(centres[pick, 0], 0.0036))
    lat.append(rng.normal(centres[pick, 1], 0.0027))
    lon = np.clip(np.concatenate(lon), x0, x1)
    lat = np.clip(np.concatenate(lat), y0, y1)
    t0 = pd.Timestamp("2024-01-01", tz="America/Chicago")
    return pd.DataFrame({
        "lon": lon,
        "lat": lat,
        "occurred_at": t0 + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
        "category": rng.choice(["theft", "dispute", "fraud"], n),
    })


def _time(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> dict:
    console = Console()
    inc = make_incidents(N, SEED)
    lat = inc["lat"].to_numpy()
    lon = inc["lon"].to_numpy()

    def reference():
        cells = np.asarray(coordinates_to_cells(lat, lon, RES)).astype(np.int64)
        return pd.Series(cells).value_counts()

    def pipeline():
        return hotspots(cell_counts(inc, RES, AREA), k=1, fdr=True)

    ref_s, pipe_s, parts = [], [], []
    for _ in range(REPEATS):  # interleaved, so machine noise hits both alike
        ref_s.append(_time(reference)[0])
        t_pipe, result = _time(pipeline)
        pipe_s.append(t_pipe)
        t_counts, counts = _time(lambda: cell_counts(inc, RES, AREA))
        t_w, w = _time(lambda: kring_weights(counts["cell"].to_numpy(), 1))
        t_gi, _ = _time(lambda: gi_star(counts["count"].to_numpy(float), w))
        parts.append((t_counts, t_w, t_gi))
    pipeline_s, h3_groupby_s = statistics.median(pipe_s), statistics.median(ref_s)
    t_counts, t_w, t_gi = (statistics.median(x) for x in zip(*parts))
    out = {
        "incidents": N,
        "resolution": RES,
        "cells": int(len(result)),
        "hot_cells": int((result["gi_bin"] > 0).sum()),
        "cold_cells": int((result["gi_bin"] < 0).sum()),
        "pipeline_s": round(pipeline_s, 4),
        "h3_groupby_s": round(h3_groupby_s, 4),
        "ratio": round(pipeline_s / h3_groupby_s, 3),
        "goal_ratio": GOAL,
        "counts_s": round(t_counts, 4),
        "kring_weights_s": round(t_w, 4),
        "gi_star_s": round(t_gi, 4),
        "repeats": REPEATS,
    }
    table = Table(title=f"hot spot pipeline, {N:,} incidents, res {RES}, {out['cells']:,} cells (median of {REPEATS})")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for key in ("h3_groupby_s", "pipeline_s", "counts_s", "kring_weights_s", "gi_star_s"):
        table.add_row(key, f"{out[key]:.3f}")
    table.add_row("ratio pipeline / reference", f"{out['ratio']:.2f} (goal <= {GOAL})")
    console.print(table)
    path = Path(__file__).resolve().parent / "results" / "hotspots.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    console.print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
