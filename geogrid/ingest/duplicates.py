"""Ids repeated inside one file, found while the file streams past in chunks.

Within a chunk the check is exact (pandas). Across chunks only a 64-bit hash and the row number
of every id already loaded are kept (16 bytes a row, not the rows): a row whose hash was seen is
held back, and at the end checked exactly against what was loaded; a hash collision is then loaded
after all. The first occurrence of an id wins; later ones are rejected as duplicates.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd


class DuplicateIds:
    """Filter chunks of validated rows (``row_no``, ``external_id``, …) down to first occurrences."""

    def __init__(self) -> None:
        self._hashes = np.empty(0, np.uint64)  # sorted
        self._rows = np.empty(0, np.int64)  # row number of each hash's first loaded occurrence
        self._held: list[pd.DataFrame] = []
        self.duplicates: list[tuple[int, str, int]] = []  # (row, id, row of its first occurrence)

    def filter(self, clean: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``clean`` to load now; later occurrences are recorded or held back."""
        n = len(clean)
        if n == 0:
            return clean
        ext = clean["external_id"].to_numpy(dtype=object)
        rows = clean["row_no"].to_numpy(np.int64)
        h = _hash(ext)
        order = np.argsort(h, kind="stable")  # equal hashes stay in row order
        hs = h[order]
        held = np.zeros(n, bool)
        held[order] = self._seen(hs)  # resolved once the whole file is loaded
        dup = np.zeros(n, bool)
        same = np.flatnonzero(hs[1:] == hs[:-1])
        if len(same):  # rows sharing a hash inside the chunk (rare): compare the ids themselves
            firsts: dict[str, int] = {}
            for i in order[np.unique(np.concatenate([same, same + 1]))]:
                if held[i]:
                    continue
                if ext[i] in firsts:
                    dup[i] = True
                    self.duplicates.append((int(rows[i]), ext[i], int(rows[firsts[ext[i]]])))
                else:
                    firsts[ext[i]] = i
        keep = ~held & ~dup
        if held.any():
            self._held.append(clean[held])
        hashes = np.concatenate([self._hashes, hs[keep[order]]])
        merged = np.argsort(hashes, kind="stable")  # two sorted runs: a merge
        self._hashes = hashes[merged]
        self._rows = np.concatenate([self._rows, rows[order][keep[order]]])[merged]
        return clean[keep]

    def finish(self, loaded: Callable[[list[str]], Mapping[str, int | None]]) -> pd.DataFrame:
        """Resolve held rows; ``loaded(ids)`` maps the ids already loaded to their row (None: unknown).

        Returns the rows still to load. Where the row is unknown it is looked up by hash: only a 64-bit
        collision among the loaded ids could make that name the wrong first row.
        """
        if not self._held:
            return pd.DataFrame()
        held = pd.concat(self._held).sort_values("row_no")
        self._held = []
        ids = held["external_id"].to_numpy(dtype=object)
        found = dict(loaded(sorted(set(ids))))
        firsts: dict[str, int] = {}
        extra = np.zeros(len(held), bool)
        for i, (row, ext) in enumerate(zip(held["row_no"].to_numpy(), ids)):
            if ext in found:
                first = found[ext]
                self.duplicates.append((int(row), ext, int(first) if first is not None else self._first_row(ext)))
            elif ext in firsts:
                self.duplicates.append((int(row), ext, firsts[ext]))
            else:  # its hash matched another id's: not a duplicate after all
                firsts[ext] = int(row)
                extra[i] = True
        return held[extra]

    def _seen(self, h: np.ndarray) -> np.ndarray:
        """Whether each of the sorted hashes ``h`` was loaded before (sorted look-ups stay in cache)."""
        if not len(self._hashes):
            return np.zeros(len(h), bool)
        pos = np.minimum(np.searchsorted(self._hashes, h), len(self._hashes) - 1)
        return self._hashes[pos] == h

    def _first_row(self, ext: str) -> int:
        h = _hash(np.array([ext], dtype=object))[0]
        return int(self._rows[np.searchsorted(self._hashes, h)])


def _hash(ids: np.ndarray) -> np.ndarray:
    return pd.util.hash_array(ids, categorize=False)
