"""The leakage guard: a view of the incidents that happened strictly before a forecast's cut-off.

Every forecasting method receives a :class:`History`, never the raw incident table. A History keeps only
rows with ``occurred_at < cutoff``, checks that it did (so a faulty slicer is caught, not trusted), and
refuses any question about time at or after the cut-off with :class:`~geogrid.errors.LeakageError`.

Incidents are binned by *age in days before the cut-off*: age 0 is the last 24 hours before the
cut-off, age 6 the first day of the last week. Methods work on the sparse cell × age count matrix, so a
window "the last 28 days" is columns ``0..27`` and a training origin ``s`` days earlier is the same
matrix shifted by ``s`` columns — no calendar arithmetic, and no column that could hold the future.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from geogrid.errors import InputError, LeakageError

DAY = pd.Timedelta(days=1)


class History:
    """Incidents before ``cutoff`` on a fixed set of cells, with leak-proof accessors.

    Parameters
    ----------
    incidents : DataFrame
        One row per incident with ``time_col`` (datetime) and the cell id in ``h3`` or ``cell`` (int64).
        Optional ``category`` and ``origin`` (``'reported'`` / ``'discovered'``) columns are kept.
    cells : array of int64
        The study-area cells, zero-count ones included; incidents in other cells are dropped.
    cutoff : Timestamp-like
        The first instant the forecast may not see.
    time_col : str
        Name of the time column.

    Attributes
    ----------
    cells : ndarray of int64, sorted
    cutoff : Timestamp
    incidents : DataFrame of the kept rows (``occurred_at < cutoff``, in ``cells``), with ``age``
        (days before the cut-off) and ``pos`` (row of the cell in ``cells``).
    """

    def __init__(self, incidents: pd.DataFrame, cells: np.ndarray, cutoff, *, time_col: str = "occurred_at"):
        self.cells = check_cells(cells)
        self.cutoff = pd.Timestamp(cutoff)
        self.time_col = time_col
        frame = check_incidents(incidents, time_col)
        past = self._select(frame)
        self._refuse_future(past)
        self.incidents = self._index(past)
        self._matrices: dict[object, sp.csr_matrix] = {}

    # -- construction -------------------------------------------------------------------------------
    def _select(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame[self.time_col] < self.cutoff]

    def _refuse_future(self, past: pd.DataFrame) -> None:
        # Checked separately from _select on purpose: the guard must not trust the slicer.
        if len(past) and past[self.time_col].max() >= self.cutoff:
            raise LeakageError(
                f"history for cut-off {self.cutoff} holds incidents up to {past[self.time_col].max()}"
            )

    def _index(self, past: pd.DataFrame) -> pd.DataFrame:
        cell = past[cell_column(past)].to_numpy(dtype=np.int64)
        pos = np.searchsorted(self.cells, cell)
        pos = np.minimum(pos, len(self.cells) - 1)
        inside = self.cells[pos] == cell
        age = np.floor((self.cutoff - past[self.time_col]) / DAY).to_numpy(dtype=np.int64)
        out = past.loc[inside].copy()
        out["pos"] = pos[inside]
        out["age"] = age[inside]
        return out.reset_index(drop=True)

    # -- accessors ----------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def n_ages(self) -> int:
        """Number of day columns: one past the oldest incident's age (at least 1)."""
        return int(self.incidents["age"].max()) + 1 if len(self.incidents) else 1

    def age_matrix(self, category: str | None = None, *, column: str = "category") -> sp.csr_matrix:
        """Sparse counts, cells × age in days (column 0 = the last day before the cut-off).

        With ``category``, only incidents whose ``column`` equals it (same shape as the total).
        """
        key = (column, category)
        if key not in self._matrices:
            rows = self.incidents
            if category is not None:
                rows = rows[rows[column].astype(str) == category]
            data = np.ones(len(rows), dtype=np.float64)
            shape = (self.n_cells, self.n_ages)
            self._matrices[key] = sp.csr_matrix(
                (data, (rows["pos"].to_numpy(), rows["age"].to_numpy())), shape=shape
            )
        return self._matrices[key]

    def counts(self, start, end) -> np.ndarray:
        """Incidents per cell (aligned with ``cells``) in ``[start, end)``; ``end`` may not pass the cut-off."""
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        if end > self.cutoff:
            raise LeakageError(f"asked for counts up to {end}, after the cut-off {self.cutoff}")
        t = self.incidents[self.time_col]
        rows = self.incidents[(t >= start) & (t < end)]
        return np.bincount(rows["pos"].to_numpy(), minlength=self.n_cells).astype(np.float64)

    def window(self, days: int, *, shift: int = 0) -> np.ndarray:
        """Incidents per cell in the ``days`` days that end ``shift`` days before the cut-off."""
        if shift < 0:
            raise LeakageError(f"a negative shift ({shift} days) would read after the cut-off")
        m = self.age_matrix()
        return np.asarray(m[:, shift : shift + days].sum(axis=1)).ravel()

    def where(self, column: str, value: str) -> History:
        """The same history restricted to rows with ``column == value`` (e.g. ``origin='reported'``)."""
        if column not in self.incidents.columns:
            raise InputError(f"incidents have no {column!r} column; add it or drop the {column}= option")
        sub = self.incidents[self.incidents[column].astype(str) == value]
        return History(sub.drop(columns=["pos", "age"]), self.cells, self.cutoff, time_col=self.time_col)

    def top_categories(self, k: int, column: str = "category") -> list[str]:
        """The ``k`` most frequent values of ``column`` (empty if the column is absent)."""
        if column not in self.incidents.columns:
            return []
        return self.incidents[column].astype(str).value_counts().index[:k].tolist()


def check_cells(cells) -> np.ndarray:
    """Sorted unique int64 cell ids, or InputError."""
    arr = np.unique(np.asarray(cells, dtype=np.int64))
    if arr.size == 0:
        raise InputError("cells is empty: pass the study-area cells (geogrid.cells.study_area_cells)")
    return arr


def cell_column(frame: pd.DataFrame) -> str:
    for name in ("h3", "cell"):
        if name in frame.columns:
            return name
    raise InputError("incidents need an int64 cell id column 'h3' (or 'cell'); use geogrid.cells.points_to_cells")


def check_incidents(incidents: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """Validate the columns a forecast needs; return the frame with a datetime ``time_col``."""
    if not isinstance(incidents, pd.DataFrame):
        raise InputError("incidents must be a pandas DataFrame")
    if time_col not in incidents.columns:
        raise InputError(f"incidents have no {time_col!r} column; pass time_col= or rename it")
    cell_column(incidents)
    if not pd.api.types.is_datetime64_any_dtype(incidents[time_col]):
        incidents = incidents.assign(**{time_col: pd.to_datetime(incidents[time_col])})
    return incidents
