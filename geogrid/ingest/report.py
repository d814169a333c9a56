"""The reject report: every rejected row with its row number, field and reason, written next to the input."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd


class RejectLog:
    """Collects rejected rows (streamed to ``<input>.rejected.csv``) and warnings (counted)."""

    FIELDS = ("row", "field", "reason", "value")

    def __init__(self, input_path: str | Path | None):
        self.path = Path(f"{input_path}.rejected.csv") if input_path else None
        self.rows: list[tuple[int, str, str, str]] = []
        self.rejected_rows: set[int] = set()
        self.reasons: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.rejected_rows)

    def reject(self, rows: np.ndarray, field: str, reason: str | np.ndarray, values=None) -> None:
        """Record rejections; ``reason`` may be one string or one per row."""
        rows = np.asarray(rows)
        if rows.size == 0:
            return
        reasons = np.broadcast_to(np.asarray(reason, dtype=object), rows.shape)
        vals = [""] * rows.size if values is None else ["" if pd.isna(v) else str(v)[:200] for v in values]
        for r, why, v in zip(rows.tolist(), reasons, vals):
            self.rows.append((int(r), field, str(why), v))
            self.rejected_rows.add(int(r))
            self.reasons[f"{field}: {why.split(':')[0]}"] += 1

    def warn(self, message: str, count: int = 1) -> None:
        self.warnings[message] += count

    def write(self) -> Path | None:
        """Write the report (sorted by row); remove a stale one when nothing was rejected."""
        if self.path is None:
            return None
        if not self.rows:
            self.path.unlink(missing_ok=True)
            return None
        self.rows.sort()
        with self.path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(self.FIELDS)
            w.writerows(self.rows)
        return self.path

    def first(self, n: int = 5) -> list[tuple[int, str, str, str]]:
        return sorted(self.rows)[:n]


class ChunkRejects:
    """Rejections within one chunk of rows: the first reason found for a row is the one reported.

    Call it with a boolean mask, the field, a reason (one string, or one per row) and optionally the
    offending values; ``bad`` (updated in place) marks every row rejected so far.
    """

    def __init__(self, log: RejectLog, rows: np.ndarray):
        self.log = log
        self.rows = np.asarray(rows)
        self.bad = np.zeros(len(self.rows), bool)

    def __call__(self, mask, field: str, reason, values=None) -> None:
        mask = np.asarray(mask, bool) & ~self.bad
        if mask.any():
            why = reason[mask] if isinstance(reason, np.ndarray) else reason
            vals = None if values is None else np.asarray(values, dtype=object)[mask]
            self.log.reject(self.rows[mask], field, why, vals)
            self.bad |= mask
