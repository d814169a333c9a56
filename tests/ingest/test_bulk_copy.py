"""COPY tuples encoded by layout blocks hold exactly the rows ``encode`` writes, and a streamed COPY
loads them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from geogrid.store import copy as pgcopy


def tuples(body: bytes) -> list[tuple]:
    out, i = [], 0
    while i < len(body):
        nf = int.from_bytes(body[i:i + 2], "big")
        i += 2
        row = []
        for _ in range(nf):
            n = int.from_bytes(body[i:i + 4], "big", signed=True)
            i += 4
            row.append(None if n < 0 else body[i:i + max(n, 0)])
            i += max(n, 0)
        out.append(tuple(row))
    return out


def columns(n: int, seed: int = 3) -> list[pgcopy.Column]:
    rng = np.random.default_rng(seed)
    words = np.array(["盗窃", "theft", "", "neighbour_dispute", None], dtype=object)
    return [
        pgcopy.int8(np.arange(n)),
        pgcopy.text(pd.Series([None if i % 11 == 0 else f"id{i}" for i in range(n)], dtype=object)),
        pgcopy.text(pd.Series(rng.choice(words, n), dtype=object)),
        pgcopy.text(np.full(n, "same", dtype=object)),
        pgcopy.int4(np.arange(n), null=rng.random(n) < .3),
        pgcopy.point(rng.random(n), rng.random(n)),
        pgcopy.timestamptz(pd.Series(pd.date_range("2025-01-01", periods=n, freq="h", tz="Asia/Shanghai"))),
    ]


@pytest.mark.parametrize("n", [1, 7, 500])
def test_encode_tuples_holds_the_rows_of_encode(n):
    cols = columns(n)
    full = pgcopy.encode(cols)
    want = tuples(full[len(pgcopy._HEADER):-len(pgcopy._TRAILER)])
    got = tuples(pgcopy.encode_tuples(cols))
    assert len(got) == n and sorted(got, key=repr) == sorted(want, key=repr)


def test_many_layouts_fall_back_to_the_scatter(monkeypatch):
    monkeypatch.setattr(pgcopy, "MAX_SHAPES", 2)
    cols = columns(300)
    assert pgcopy.encode_tuples(cols) == pgcopy.encode(cols)[len(pgcopy._HEADER):-len(pgcopy._TRAILER)]


def test_text_column_matches_python_encoding():
    values = pd.Series(["a", None, np.nan, "é", "", pd.NA, 12], dtype=object)
    col = pgcopy.text(values)
    assert col.lengths.tolist() == [1, -1, -1, 2, 0, -1, 2]
    assert bytes(col.data) == "aé12".encode()


def test_stream_loads_chunks_into_a_table(conn):
    conn.execute(text("CREATE TEMP TABLE t_stream (n bigint, id text, cat text, same text, g int, "
                      "geom geometry(Point, 4326), t timestamptz)"))
    stream = pgcopy.CopyStream(conn.connection.driver_connection, "t_stream",
                               ["n", "id", "cat", "same", "g", "geom", "t"])
    for seed in (1, 2):
        stream.write(columns(200, seed))
    assert stream.close() == 400
    got = conn.execute(text("SELECT count(*), count(id), count(g), min(t), sum(n) FROM t_stream")).one()
    assert got[0] == 400 and got[1] == 400 - 2 * 19 and got[4] == 2 * sum(range(200))


@pytest.mark.parametrize("make", [
    lambda v: pd.Series(v, dtype="str"),
    lambda v: pd.Series(v, dtype="string[pyarrow]"),
    lambda v: pd.Series(v, dtype="category"),
    lambda v: pd.Categorical(v),
    lambda v: pd.Series(["skipped"] + v, dtype="str").iloc[1:],  # a slice: Arrow offset not at 0
], ids=["str", "string", "category-series", "categorical", "sliced"])
def test_text_from_arrow_and_categoricals_matches_object_encoding(make):
    values = ["a", None, "盗窃", "", "neighbour_dispute", "a"]
    want = pgcopy.text(np.array(values, dtype=object))
    got = pgcopy.text(make(values))
    assert pgcopy._arrow_strings(make(values)) is not None  # the Arrow path was taken
    assert got.lengths.tolist() == want.lengths.tolist() == [1, -1, 6, 0, 17, 1]
    assert bytes(got.data) == bytes(want.data)


@pytest.mark.parametrize("background", [True, False])
def test_stream_error_in_a_chunk_is_raised_and_nothing_is_loaded(conn, monkeypatch, background):
    conn.execute(text("CREATE TEMP TABLE t_fail (n bigint, id text, cat text, same text, g int, "
                      "geom geometry(Point, 4326), t timestamptz)"))
    real, calls = pgcopy.encode_tuples, []

    def second_fails(cols):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("bad chunk")
        return real(cols)

    monkeypatch.setattr(pgcopy, "encode_tuples", second_fails)
    savepoint = conn.begin_nested()  # as a load's transaction: the failed COPY aborts it
    stream = pgcopy.CopyStream(conn.connection.driver_connection, "t_fail",
                               ["n", "id", "cat", "same", "g", "geom", "t"], background=background)
    with pytest.raises(ValueError, match="bad chunk"):  # from write (3rd chunk) or close, whichever comes first
        try:
            for seed in (1, 2, 3):
                stream.write(columns(50, seed))
            stream.close()
        except BaseException as e:
            stream.abort(e)
            raise
    savepoint.rollback()
    assert stream._pool is None  # the encoding thread has ended
    assert conn.execute(text("SELECT count(*) FROM t_fail")).scalar() == 0
