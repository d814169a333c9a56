"""Staff: community officers, auxiliary officers and grid workers, assigned as the plan describes.

There are fewer officers than grids (860 grids, 320 officers in DOMAIN.md's provincial capital), so
officers go first to the grids with the most people and key areas; a tenth stay on station duty
with no grid. Auxiliaries go to key-area grids (+1 each), then to rural grids no officer holds
(1 officer *or* 1 auxiliary), then by population. Every grid has one grid worker (网格员).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from geogrid.generate.names import person_names

STATION_DUTY = {"officer": 0.10, "auxiliary": 0.05}


def assign_staff(rng: np.random.Generator, grids: pd.DataFrame, station_of_post: dict[str, str],
                 n_officers: int, n_auxiliaries: int) -> pd.DataFrame:
    """Staff table: ``code, name, role, post_code, grid_code`` (``grid_code`` None on station duty)."""
    codes = grids["code"].to_numpy()
    n_flags = grids["key_areas"].map(len).to_numpy()
    need = grids["population"].to_numpy(float) * (1.0 + 0.5 * n_flags)

    n_off_grid = min(n_officers - round(STATION_DUTY["officer"] * n_officers), len(grids))
    officer_grids = rng.choice(len(grids), size=n_off_grid, replace=False, p=need / need.sum())

    n_aux_grid = n_auxiliaries - round(STATION_DUTY["auxiliary"] * n_auxiliaries)
    rural_uncovered = np.setdiff1d(np.flatnonzero(grids["kind"].to_numpy() == "rural"), officer_grids)
    first = np.concatenate([np.flatnonzero(n_flags > 0), rng.permutation(rural_uncovered)])
    rest = max(0, n_aux_grid - first.size)
    aux_grids = np.concatenate([first, rng.choice(len(grids), size=rest, p=need / need.sum())])
    aux_grids = aux_grids[:n_aux_grid]

    parts = []
    for role, tag, n_total, on_grid in (
        ("officer", "O", n_officers, officer_grids),
        ("auxiliary", "A", n_auxiliaries, aux_grids),
        ("grid_worker", "W", len(grids), np.arange(len(grids))),
    ):
        grid_code = np.full(n_total, None, dtype=object)
        grid_code[: on_grid.size] = codes[on_grid]
        post = np.empty(n_total, dtype=object)
        post[: on_grid.size] = grids["post_code"].to_numpy()[on_grid]
        stations = np.array(sorted(set(station_of_post.values())), dtype=object)
        post[on_grid.size :] = rng.choice(stations, size=n_total - on_grid.size)
        parts.append(pd.DataFrame({
            "code": [f"HF-{tag}{i:04d}" for i in range(1, n_total + 1)],
            "name": person_names(rng, n_total),
            "role": role,
            "post_code": post,
            "grid_code": grid_code,
        }))
    return pd.concat(parts, ignore_index=True)
