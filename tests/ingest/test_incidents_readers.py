"""The CSV reader: Arrow's parser gives exactly what the pandas reader gave, and hands over to it
(from the first record not yet yielded) when it refuses a file."""
from __future__ import annotations

import gzip

import pandas as pd
import pytest

from geogrid.errors import InputError
from geogrid.ingest import readers
from geogrid.ingest.readers import ROW, read_chunks

TEXT = ('\ufeffid,lon,lat,time,category,note\n'
        '1,117.1,31.8,2025-01-01 08:00,盗窃,plain\n'
        '2,,31.8,2025-01-01 09:00,"邻里纠纷","quoted, with comma"\n'
        '3, 117.2 ,31.9,,诈骗,"two\nlines"\n'
        '007,117.3,31.7,2025-01-02T10:00:00+08:00,,""\n'
        '5,117.4,31.6,NA,other,  padded  \n')


def both(path, chunk_rows):
    arrow = pd.concat(list(read_chunks(path, chunk_rows)), ignore_index=True)
    sep = "\t" if str(path).endswith(".tsv") else ","
    pandas = pd.concat(list(readers._csv_pandas(path, sep, chunk_rows)), ignore_index=True)
    return arrow, pandas


@pytest.mark.parametrize("name", ["a.csv", "a.csv.gz", "a.tsv"])
@pytest.mark.parametrize("chunk_rows", [2, 100])
def test_arrow_reader_equals_the_pandas_reader(tmp_path, name, chunk_rows):
    path = tmp_path / name
    text = TEXT.replace(",", "\t") if name.endswith(".tsv") else TEXT
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    arrow, pandas = both(path, chunk_rows)
    pd.testing.assert_frame_equal(arrow.astype(object), pandas.astype(object))
    assert list(arrow[ROW]) == [1, 2, 3, 4, 5] and arrow.loc[3, "id"] == "007"
    assert arrow["lon"].isna().tolist() == [False, True, False, False, False]


def test_a_row_arrow_refuses_midway_is_read_by_pandas_from_there(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "ARROW_BLOCK_BYTES", 64)  # many small blocks: chunks go out before the bad row
    lines = [f"{i},117.{i},31.8" for i in range(1, 41)]
    lines[30] = "31,117.31"  # too few fields: pandas reads the missing ones as empty
    path = tmp_path / "short.csv"
    path.write_text("id,lon,lat\n" + "\n".join(lines) + "\n", encoding="utf-8")
    chunks = list(read_chunks(path, 8))
    got = pd.concat(chunks, ignore_index=True)
    assert list(got[ROW]) == list(range(1, 41)) and list(got["id"]) == [str(i) for i in range(1, 41)]
    assert got.loc[30, "lat"] is None or pd.isna(got.loc[30, "lat"])
    assert got.loc[31, "lat"] == "31.8"


def test_bad_utf8_is_still_a_clear_error(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,lon,lat\n1,117.1,31.8\n2,117.2,é\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text near byte"):
        list(read_chunks(path, 10))
