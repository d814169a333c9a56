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
