"""CQL2 text → SQL: each supported operator selects, in PostGIS, the rows CQL2 says; the rest is refused by name."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from api.cql2 import Queryable, to_sql
from geogrid.errors import InputError

# four rows: a text with a literal '%', a NULL number, points inside and outside the unit square.
# pygeofilter's grammar wants property names of two or more characters (or double quotes).
ROWS = """(VALUES
  ('alpha', 1, 1.5, true,  TIMESTAMPTZ '2025-01-01T00:00:00Z', ST_SetSRID(ST_MakePoint(0.5, 0.5), 4326)),
  ('Beta',  2, NULL, false, TIMESTAMPTZ '2025-02-01T00:00:00Z', ST_SetSRID(ST_MakePoint(5, 5), 4326)),
  ('g%mma', 3, 3.5, true,  TIMESTAMPTZ '2025-03-01T12:00:00Z', ST_SetSRID(ST_MakePoint(0.2, 0.9), 4326)),
  ('delta', 4, 4.5, false, TIMESTAMPTZ '2025-04-01T00:00:00Z', ST_SetSRID(ST_MakePoint(-3, 1), 4326))
) AS t(name, n, x, flag, at, geom)"""
FIELDS = {
    "name": Queryable("name", "t.name", "string"), "num": Queryable("num", "t.n", "integer"),
    "xval": Queryable("xval", "t.x", "number"), "flag": Queryable("flag", "t.flag", "boolean"),
    "at": Queryable("at", "t.at", "datetime"), "geometry": Queryable("geometry", "t.geom", "geometry"),
}


@pytest.fixture(scope="module")
def select(engine):
    def run(cql: str) -> list[str]:
        where, binds = to_sql(cql, FIELDS)
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(text(f"SELECT name FROM {ROWS} WHERE {where}"), binds))

    return run


CASES = [
    ("num = 2", ["Beta"]),
    ("num <> 2 AND num < 4", ["alpha", "g%mma"]),
    ('"num" >= 3 OR name = \'alpha\'', ["alpha", "delta", "g%mma"]),
    ("NOT (num > 1)", ["alpha"]),
    ("xval > 2", ["delta", "g%mma"]),  # NULL is neither > 2 nor not
    ("xval IS NULL", ["Beta"]),
    ("xval IS NOT NULL AND num BETWEEN 2 AND 4", ["delta", "g%mma"]),
    ("num NOT BETWEEN 2 AND 3", ["alpha", "delta"]),
    ("num IN (1, 4)", ["alpha", "delta"]),
    ("name NOT IN ('alpha', 'Beta')", ["delta", "g%mma"]),
    ("name LIKE '%ta'", ["Beta", "delta"]),
    ("name LIKE '_l%'", ["alpha"]),
    ("name LIKE 'g\\%%'", ["g%mma"]),  # an escaped % is a literal %
    ("name NOT LIKE '%a'", []),
    ("CASEI(name) = 'beta'", ["Beta"]),
    ("flag = true", ["alpha", "g%mma"]),
    ("at >= TIMESTAMP('2025-02-01T00:00:00Z') AND at < TIMESTAMP('2025-04-01T00:00:00Z')", ["Beta", "g%mma"]),
    ("at > DATE('2025-03-01')", ["delta", "g%mma"]),
    ("num = 1.0", ["alpha"]),
    ("S_INTERSECTS(geometry, BBOX(0, 0, 1, 1))", ["alpha", "g%mma"]),
    ("S_WITHIN(geometry, POLYGON((0 0, 1 0, 1 1, 0 1, 0 0)))", ["alpha", "g%mma"]),
    ("S_CONTAINS(POLYGON((-4 0, 0 0, 0 2, -4 2, -4 0)), geometry)", ["delta"]),
    ("S_CONTAINS(geometry, POINT(5 5))", ["Beta"]),
    ("S_INTERSECTS(geometry, LINESTRING(0 0.5, 1 0.5)) OR num = 4", ["alpha", "delta"]),
]


@pytest.mark.parametrize("cql, want", CASES, ids=[c[0] for c in CASES])
def test_supported_operators_select_what_cql2_says(select, cql, want):
    assert select(cql) == want


REFUSED = [
    ("nope = 1", "unknown property 'nope'"),
    ("num = 'two'", "is a string"),
    ("name > 3", "is an integer"),
    ("flag < true", "does not apply"),
    ("name BETWEEN 'a' AND 'b'", "BETWEEN"),
    ("num LIKE '1%'", "LIKE"),
    ("num IN (1, 'x')", "string"),
    ("xval = num + 0", "Add"),
    ("ABS(num) = 1", "ABS"),
    ("S_CROSSES(geometry, POINT(0 0))", "CROSSES"),
    ("S_DISJOINT(geometry, POINT(0 0))", "DISJOINT"),
    ("T_AFTER(at, TIMESTAMP('2025-01-01T00:00:00Z'))", "parse"),
    ("S_INTERSECTS(geometry, ENVELOPE(0 1 0 1))", "ENVELOPE"),
    ("S_INTERSECTS(geometry, BBOX(1, 0, 0, 1))", "BBOX"),
    ("S_INTERSECTS(geometry, POINT(190 0))", "outside"),
    ("S_INTERSECTS(geometry, SRID=3857;POINT(1 1))", "CRS84"),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "invalid geometry"),
    ("S_INTERSECTS(num, POINT(0 0))", "not a geometry"),
    ("geometry = 1", "geometry property"),
    ("num = 99999999999999999999", "out of range"),
    ("num = ", "cannot parse"),
    ("INCLUDE", "Include"),
    ("   ", "empty"),
    ("num = 1" + " AND num = 1" * 3000, "nested too deeply"),
]


@pytest.mark.parametrize("cql, words", REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_everything_else_is_refused_naming_it(cql, words):
    with pytest.raises(InputError, match="filter") as err:
        to_sql(cql, FIELDS)
    assert words in str(err.value)


def test_literals_are_binds_never_sql_text():
    where, binds = to_sql("name = 'x); DROP TABLE grids; --' OR num = 1", FIELDS)
    assert "DROP" not in where and any("DROP" in str(v) for v in binds.values())
