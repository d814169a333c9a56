"""Posts and staff ingest: upserts by code, bad rows reported, strict aborts."""
from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from geogrid.ingest.fields import FieldMap
from geogrid.ingest.incidents import IngestAborted
from geogrid.ingest.posts import load_posts, load_staff


def test_staff_load_reports_bad_rows_and_is_idempotent(conn, tmp_path):
    df = pd.DataFrame({
        "code": ["S1", "S2", "S2", None, "S4"],
        "name": ["张伟", "李娜", "重复", "无编号", "王强"],
        "role": ["民警", "auxiliary", "officer", "officer", "chef"],
        "post_code": ["P1", "P1", "P1", "P2", "P2"],
        "grid_code": ["G1", None, None, None, None],
    })
    path = tmp_path / "staff.csv"
    df.to_csv(path, index=False)
    res = load_staff(conn, path, FieldMap())
    got = {int(r.row): (r.field, r.reason) for r in pd.read_csv(res.report_path).itertuples()}
    assert got[3][0] == "code" and "duplicate" in got[3][1]
    assert got[4] == ("code", "missing staff code") and got[5][0] == "role"
    rows = conn.execute(text("SELECT code, role, post_code, grid_code FROM staff ORDER BY code")).all()
    assert [tuple(r) for r in rows] == [("S1", "officer", "P1", "G1"), ("S2", "auxiliary", "P1", None)]
    again = load_staff(conn, path, FieldMap())
    assert (again.inserted, again.updated) == (0, 0)
    with pytest.raises(IngestAborted):
        load_staff(conn, path, FieldMap(), strict=True)


def test_posts_from_csv_with_coordinates(conn, tmp_path):
    path = tmp_path / "posts.csv"
    pd.DataFrame({"id": ["P1", "P2"], "名称": ["城东派出所", "桥头警务室"], "类型": ["派出所", "警务室"],
                  "x": [117.21, 117.22], "y": [31.81, "north"]}).to_csv(path, index=False)
    res = load_posts(conn, path, FieldMap(code="id", name="名称", kind="类型", lon="x", lat="y"))
    assert (res.rows_loaded, res.rejected) == (1, 1)
    assert conn.execute(text("SELECT name, kind FROM posts WHERE code = 'P1'")).one() == ("城东派出所", "station")
