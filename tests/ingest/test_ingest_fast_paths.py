"""The ingest's fast paths give what the general ones give (Arrow timestamp parsing, categories
mapped per distinct value, H3 cells in two threads), and the incidents indexes a bulk load rebuilds
are migration 0005's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from geogrid.categories import CategoryMap
from geogrid.cells import points_to_cells
from geogrid.ingest.incidents import _H3_SPLIT, _cells, _iso_with_offsets, _map_categories, _parse_times


def _pandas_times(values, tz="Asia/Shanghai"):
    """The general path: pandas' ISO 8601 parser (naive values are local time in ``tz``)."""
    t = pd.to_datetime(pd.Series(values, dtype="string").str.strip(), errors="coerce", format="ISO8601", utc=True)
    return t


def test_offset_timestamps_parse_as_pandas_does():
    rng = np.random.default_rng(11)
    base = pd.Timestamp("2024-02-28T23:59:59", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**8, 500), "s")
    offsets = rng.choice(["+08:00", "Z", "-05:30", "+0800", "+08"], 500)
    frac = rng.choice(["", ".5", ".123456"], 500)
    values = [f" {b.strftime('%Y-%m-%dT%H:%M:%S')}{f}{o} " for b, f, o in zip(base, frac, offsets)]
    raw = pd.Series(values, dtype="str")
    fast = _iso_with_offsets(raw)
    assert fast is not None
    assert fast.tolist() == _pandas_times(values).tolist()
    assert _parse_times(raw, "Asia/Shanghai").tolist() == fast.tolist()


@pytest.mark.parametrize("values", [
    ["2025-01-01T08:00:00+08:00", "2025-01-01 08:00:00"],  # a naive one: local time
    ["2025-01-01T08:00:00+08:00", None],  # a missing one
    ["2025-01-01T08:00:00+08:00", "yesterday"],  # garbage
])
def test_anything_else_falls_back_to_pandas(values):
    raw = pd.Series(values, dtype="str")
    assert _iso_with_offsets(raw) is None
    got = _parse_times(raw, "Asia/Shanghai")
    assert got.iloc[0] == pd.Timestamp("2025-01-01T00:00:00Z")
    if values[1] == "2025-01-01 08:00:00":
        assert got.iloc[1] == pd.Timestamp("2025-01-01T00:00:00Z")
    else:
        assert pd.isna(got.iloc[1])


def test_categories_mapped_per_distinct_value_equal_the_row_map():
    cmap = CategoryMap.default()
    rng = np.random.default_rng(3)
    raw = pd.Series(rng.choice(["盗窃", "theft", "Theft ", "邻里纠纷", "no such thing", "", "诈骗"], 1000), dtype="str")
    codes, unknown = _map_categories(cmap, raw)
    want_codes, want_unknown = cmap.map(raw)
    assert isinstance(codes, pd.Categorical)
    assert np.asarray(codes, dtype=object).tolist() == want_codes.tolist()
    assert unknown.tolist() == np.asarray(want_unknown, bool).tolist()
    assert unknown.any() and not unknown.all()


@pytest.mark.parametrize("n", [10, _H3_SPLIT + 1, 3 * _H3_SPLIT])
def test_cells_in_two_threads_equal_one_call(n):
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(116.9, 117.6, n), rng.uniform(31.5, 32.2, n)
    got = _cells(lon, lat, 9)
    assert got.dtype == np.int64 and (got == points_to_cells(lon, lat, 9)).all()


def test_incidents_indexes_after_migration_0005(conn):
    idx = dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incidents'")).all())
    assert set(idx) == {"pk_incidents", "uq_incidents_source_external_id", "idx_incidents_geom",
                        "ix_incidents_category", "ix_incidents_occurred_at"}
    # no buffering option: PostGIS then builds the GiST sorted (3x faster on 1 M points)
    assert idx["idx_incidents_geom"].endswith("USING gist (geom)")
