"""Bulk mode of the incident ingest: the same rows as the normal path, every index back as it was,
atomic on failure, idempotent; and the duplicate-id check that streams past the chunks."""
from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

import geogrid.ingest.duplicates as duplicates
import geogrid.ingest.incidents as ingest
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.grids import load_grids
from geogrid.ingest.incidents import load_incidents
from geogrid.store import copy as pgcopy
from geogrid.store import incidents as store

CSV_FIELDS = FieldMap(id="id", lon="lon", lat="lat", time="time", category="category")
GRID_FIELDS = FieldMap(code="code", name="name", kind="kind", population="population", key_areas="key_areas", post="post")
ROW_COLUMNS = "external_id, category, priority, origin, occurred_at, h3, grid_id, ST_AsEWKB(geom)"


@pytest.fixture
def with_grids(conn, grid_frame, tmp_path):
    path = tmp_path / "grids.gpkg"
    grid_frame.to_file(path, driver="GPKG")
    load_grids(conn, path, GRID_FIELDS, plan="test-plan", activate=True)
    return conn


def write_csv(df, tmp_path, name="incidents.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def rows(conn, source):
    return conn.execute(text(f"SELECT {ROW_COLUMNS} FROM incidents WHERE source = :s ORDER BY external_id"),
                        {"s": source}).all()


def indexes(conn):
    """Every index and constraint of ``incidents`` with its definition."""
    idx = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incidents' ORDER BY 1")).all()
    cons = conn.execute(text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                             "WHERE conrelid = 'incidents'::regclass ORDER BY 1")).all()
    return idx, cons


def snapshot(conn):
    return (conn.execute(text("SELECT id, source, loaded_at, " + ROW_COLUMNS + " FROM incidents ORDER BY id")).all(),
            indexes(conn), conn.execute(text("SELECT count(*) FROM ingest_runs")).scalar())


def changed(df):
    out = pd.concat([df.iloc[:150], df.iloc[[3]]], ignore_index=True)  # 50 rows gone, a duplicate id
    out.loc[:9, "category"] = "抢劫"  # 10 rows changed
    out.loc[20:24, "lon"] += 0.0001  # 5 moved
    extra = df.iloc[150:170].copy()
    extra["id"] = extra["id"] + "-new"  # 20 new rows
    return pd.concat([out, extra], ignore_index=True)


@pytest.mark.parametrize("chunk_rows", [1000, 37])
def test_bulk_gives_the_same_rows_as_the_normal_path(with_grids, incidents_df, tmp_path, chunk_rows):
    conn = with_grids
    before = indexes(conn)
    first, second = write_csv(incidents_df, tmp_path), write_csv(changed(incidents_df), tmp_path, "second.csv")
    got = {}
    for mode in (False, True):
        src = f"bulk-{mode}"
        a = load_incidents(conn, first, CSV_FIELDS, source=src, bulk=mode, chunk_rows=chunk_rows)
        b = load_incidents(conn, second, CSV_FIELDS, source=src, bulk=mode, chunk_rows=chunk_rows)
        got[mode] = (a.inserted, a.updated, b.inserted, b.updated, b.rejected, b.log.first(5), rows(conn, src))
        assert indexes(conn) == before
    assert got[True][:6] == got[False][:6] == (200, 0, 20, 15, 1, got[False][5])
    assert got[False][5][0][:2] == (151, "id") and "first at row 4" in got[False][5][0][2]
    assert got[True][6] == got[False][6] and len(got[True][6]) == 220


def test_bulk_modes_are_the_ones_announced(with_grids, incidents_df, tmp_path, monkeypatch):
    conn = with_grids
    path = write_csv(incidents_df, tmp_path)
    assert load_incidents(conn, path, CSV_FIELDS, source="t", bulk=True).extra["mode"] == "bulk (direct COPY)"
    assert load_incidents(conn, path, CSV_FIELDS, source="t", bulk=True).extra["mode"] == "upsert"  # nothing changed
    assert load_incidents(conn, write_csv(changed(incidents_df), tmp_path, "c.csv"), CSV_FIELDS, source="t",
                          bulk=True).extra["mode"] == "bulk (stage)"
    # automatic: a load that is small next to the table upserts; a large one goes bulk
    assert load_incidents(conn, path, CSV_FIELDS, source="u").extra["mode"] == "upsert"
    monkeypatch.setattr(ingest, "BULK_MIN_ROWS", 100)
    conn.execute(text("ANALYZE incidents"))  # the estimate of the table's rows the rule reads
    assert load_incidents(conn, path, CSV_FIELDS, source="v").extra["mode"] == "bulk (direct COPY)"
    small = write_csv(incidents_df.head(120), tmp_path, "small.csv")
    conn.execute(text("ANALYZE incidents"))
    assert load_incidents(conn, small, CSV_FIELDS, source="w").extra["mode"] == "upsert"  # 120 < 0.2 × 820


def test_bulk_reload_is_idempotent(with_grids, incidents_df, tmp_path):
    conn = with_grids
    path = write_csv(incidents_df, tmp_path)
    load_incidents(conn, path, CSV_FIELDS, source="t", bulk=True)
    stored = rows(conn, "t")
    again = load_incidents(conn, path, CSV_FIELDS, source="t", bulk=True)
    assert (again.inserted, again.updated, again.rows_loaded) == (0, 0, 200)
    assert rows(conn, "t") == stored


def _second_call_fails(real, boom):
    """``real``, except that its second call (the second chunk) runs ``boom`` instead."""
    calls = []

    def wrapper(*a, **k):
        calls.append(1)
        return real(*a, **k) if len(calls) < 2 else boom()
    return wrapper


@pytest.mark.parametrize("fail_at", ["rebuild", "mid-stream", "stage-bulk", "encode-thread"])
def test_failed_bulk_load_leaves_database_and_indexes_unchanged(with_grids, incidents_df, tmp_path, monkeypatch,
                                                                fail_at):
    conn = with_grids
    load_incidents(conn, write_csv(incidents_df.head(50), tmp_path, "first.csv"), CSV_FIELDS, source="t")
    path = write_csv(changed(incidents_df), tmp_path)
    before = snapshot(conn)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    if fail_at == "rebuild":  # after every row was COPY'd and the indexes dropped
        monkeypatch.setattr(store, "rebuild_indexes", boom)
        source = "fresh"
    elif fail_at == "stage-bulk":
        monkeypatch.setattr(store, "rebuild_indexes", boom)
        source = "t"
    elif fail_at == "encode-thread":  # in CopyStream's encoding thread, on the second chunk
        assert pgcopy.ENCODE_IN_BACKGROUND
        monkeypatch.setattr(pgcopy, "encode_tuples", _second_call_fails(pgcopy.encode_tuples, boom))
        source = "fresh"
    else:  # while the COPY is open, on the second chunk
        monkeypatch.setattr(ingest, "points_to_cells", _second_call_fails(ingest.points_to_cells, boom))
        source = "fresh"
    with pytest.raises(RuntimeError, match="disk full"):
        load_incidents(conn, path, CSV_FIELDS, source=source, bulk=True, chunk_rows=60)
    assert snapshot(conn) == before
    monkeypatch.undo()  # and the connection is usable: the next load works
    assert load_incidents(conn, path, CSV_FIELDS, source=source, bulk=True).rejected == 1


def test_hash_collisions_are_not_taken_for_duplicates(with_grids, incidents_df, tmp_path, monkeypatch):
    """With every id hashing alike, each later row is held back and checked exactly: none is lost."""
    conn = with_grids
    df = pd.concat([incidents_df, incidents_df.iloc[[3, 3, 150]]], ignore_index=True)  # rows 201, 202, 203 repeat
    path = write_csv(df, tmp_path)
    want = None
    for bulk in (False, True):
        with monkeypatch.context() as m:
            m.setattr(duplicates, "_hash", lambda ids: pd.util.hash_array(ids, categorize=False) * 0)
            res = load_incidents(conn, path, CSV_FIELDS, source=f"c{bulk}", bulk=bulk, chunk_rows=45)
        got = (res.inserted, res.rejected, sorted(res.log.first(5)), rows(conn, f"c{bulk}"))
        assert got[:2] == (200, 3)
        assert [r[:2] for r in got[2]] == [(201, "id"), (202, "id"), (203, "id")]
        if not bulk:  # the stage knows the first row; a direct load finds it by hash (all alike here)
            assert "first at row 4" in got[2][0][2] and "first at row 151" in got[2][2][2]
        want = want or got
        assert (got[:2], [r[:2] for r in got[2]], got[3]) == (want[:2], [r[:2] for r in want[2]], want[3])


def test_duplicate_filter_keeps_first_occurrences_across_chunks():
    f = duplicates.DuplicateIds()
    mk = lambda ids, start: pd.DataFrame({"row_no": range(start, start + len(ids)), "external_id": ids})  # noqa: E731
    a = f.filter(mk(["a", "b", "a"], 1))
    b = f.filter(mk(["c", "b", "c", "d"], 4))
    assert list(a.external_id) == ["a", "b"] and list(b.external_id) == ["c", "d"]
    extra = f.finish(lambda ids: {i: None for i in {"a", "b"} & set(ids)})
    assert extra.empty
    assert sorted(f.duplicates) == [(3, "a", 1), (5, "b", 2), (6, "c", 4)]


@pytest.mark.parametrize("bulk", [False, True])
def test_other_sessions_read_during_a_load_except_in_bulk_mode(with_grids, engine, incidents_df, tmp_path,
                                                               monkeypatch, bulk):
    from sqlalchemy.exc import OperationalError

    conn = with_grids
    seen = {}
    real = store.open_stream

    def probe(*a, **k):  # while the load runs: can another session read incidents?
        with engine.connect() as other:
            other.execute(text("SET lock_timeout = '300ms'"))
            try:
                seen["rows"] = other.execute(text("SELECT count(*) FROM incidents")).scalar()
            except OperationalError as e:
                seen["error"] = str(e)
            other.rollback()
        return real(*a, **k)

    monkeypatch.setattr(store, "open_stream", probe)
    load_incidents(conn, write_csv(incidents_df, tmp_path), CSV_FIELDS, source="t", bulk=bulk)
    if bulk:
        assert "lock timeout" in seen["error"]
    else:
        assert "rows" in seen and "error" not in seen
