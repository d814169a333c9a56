"""Plan editing over a real PostGIS connection (rolled back after each test): drafts, CAS edits,
split, merge, history/restore, validation and activation."""
from __future__ import annotations

import pytest
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import text

from geogrid import editing
from geogrid.errors import Conflict, InputError, NotFound, StaleVersion

X0, Y0, D = 117.20, 31.80, 0.01  # the grid_frame fixture's origin and cell size


@pytest.fixture
def draft(conn, grid_frame):
    """An active plan of the six grid_frame squares (G1-G3 south row, G4-G6 north row) and a draft copy."""
    from geogrid.store.grids import upsert_grids
    from geogrid.store.plans import activate_plan, get_or_create_plan

    conn.execute(text("UPDATE plans SET status = 'retired', valid_to = now() WHERE status = 'active'"))
    conn.execute(text("INSERT INTO posts (code, name, geom) VALUES ('EDIT-P1', 'p1', ST_Point(117.2, 31.8, 4326)) "
                      "ON CONFLICT DO NOTHING"))
    base, _ = get_or_create_plan(conn, "edit-test-base")
    frame = grid_frame.rename(columns={"post": "post_code"}).assign(
        district="test", attrs=[{}] * 6, key_areas=[[]] * 6)
    upsert_grids(conn, base["id"], frame)
    activate_plan(conn, base["id"])
    plan = editing.create_plan(conn, "edit-test-draft", "tester")
    return {"base": base["id"], "plan": plan["id"]}


def _box(i0, j0, i1, j1):
    return shapely.box(X0 + i0 * D, Y0 + j0 * D, X0 + i1 * D, Y0 + j1 * D)


def _same(a, b) -> bool:
    """Same shape up to the 1e-9° (0.1 mm) rounding of GeoJSON output."""
    return shapely.symmetric_difference(a, b).area < 1e-14


def _area(conn, plan, code):
    return conn.execute(text("SELECT ST_Area(geom::geography) FROM grids WHERE plan_id = :p AND code = :c"),
                        {"p": plan, "c": code}).scalar()


def test_create_plan_copies_grids_and_writes_history(conn, draft):
    plan = editing.get_plan(conn, draft["plan"])
    assert plan["status"] == "draft" and plan["parent_id"] == draft["base"] and plan["n_grids"] == 6
    hist = editing.grid_history(conn, draft["plan"])
    assert sorted(h["code"] for h in hist) == [f"G{k}" for k in range(1, 7)]
    assert {h["action"] for h in hist} == {"create"} and {h["version"] for h in hist} == {1}
    with pytest.raises(Conflict, match="exists already"):
        editing.create_plan(conn, "edit-test-draft", "tester")
    with pytest.raises(NotFound):
        editing.create_plan(conn, "edit-test-other", "tester", from_plan=10**8)


def test_update_is_compare_and_set(conn, draft):
    p = draft["plan"]
    moved = _box(0, 0, 1.5, 1)  # G1 widened over half of G2
    g = editing.update_grid(conn, p, "G1", 1, {"type": "Feature", "geometry": mapping(moved),
                                               "properties": {"name": "新名", "population": 10, "code": "G1"}}, "alice")
    assert g["version"] == 2 and g["name"] == "新名" and g["population"] == 10
    assert _same(shape(g["geometry"]), moved)
    with pytest.raises(StaleVersion, match="version 2") as e:
        editing.update_grid(conn, p, "G1", 1, mapping(_box(0, 0, 1, 1)), "bob")
    assert e.value.headers == {"ETag": '"2"'}
    assert _same(shape(editing.get_grid(conn, p, "G1")["geometry"]), moved)  # the stale edit changed nothing
    hist = editing.grid_history(conn, p, "G1")
    assert [(h["version"], h["action"], h["actor"]) for h in hist] == [(1, "create", "tester"), (2, "update", "alice")]


@pytest.mark.parametrize("body, message", [
    ({"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + D, Y0 + D], [X0 + D, Y0], [X0, Y0 + D], [X0, Y0]]]},
     "Self-intersection"),
    ({"type": "Point", "coordinates": [X0, Y0]}, "Point"),
    ({"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + D, Y0], [X0 + D, Y0 + D], [X0, Y0 + D]]]}, "not closed"),
    ({"type": "Polygon", "coordinates": [[[13046000, 3738000], [13047000, 3738000], [13047000, 3739000],
                                          [13046000, 3738000]]]}, "not longitude/latitude"),
    ({"type": "Polygon", "coordinates": [[[Y0, X0], [Y0 + D, X0], [Y0 + D, X0 + D], [Y0, X0]]]},
     "not longitude/latitude"),
    ({"type": "Polygon", "coordinates": [[[X0 - 5, Y0], [X0 - 5 + D, Y0], [X0 - 5 + D, Y0 + D], [X0 - 5, Y0]]]},
     "far from"),
    ({"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:999999"}},
      "coordinates": [[[X0, Y0], [X0 + D, Y0], [X0 + D, Y0 + D], [X0, Y0]]]}, "999999"),
    ({"type": "Feature", "geometry": None, "properties": {"colour": "red"}}, "unknown properties"),
    ({"type": "Feature", "geometry": None, "properties": {"kind": "suburban"}}, "kind"),
    ({"type": "Feature", "geometry": None, "properties": {"post_code": "NO-SUCH-POST"}}, "not a known post"),
    ({"type": "Feature", "geometry": None, "properties": {"code": "G9"}}, "differs"),
], ids=["bowtie", "point", "open-ring", "metres", "swapped", "far", "unknown-crs", "unknown-prop", "kind", "post", "code"])
def test_bad_edits_are_refused_by_name(conn, draft, body, message):
    with pytest.raises(InputError, match=message):
        editing.update_grid(conn, draft["plan"], "G1", 1, body, "alice")
    assert editing.get_grid(conn, draft["plan"], "G1")["version"] == 1


def test_gcj02_geometry_is_converted(conn, draft):
    from geogrid.crs import from_wgs84

    ring = list(_box(0, 0, 1, 1).exterior.coords)
    gx, gy = from_wgs84([x for x, _ in ring], [y for _, y in ring], "gcj02")
    body = {"type": "Polygon", "crs": "gcj02", "coordinates": [[[a, b] for a, b in zip(gx, gy)]]}
    g = editing.update_grid(conn, draft["plan"], "G1", 1, body, "alice")
    assert _same(shape(g["geometry"]), _box(0, 0, 1, 1))


def test_only_drafts_are_editable(conn, draft):
    with pytest.raises(Conflict, match="create a draft"):
        editing.update_grid(conn, draft["base"], "G1", 1, mapping(_box(0, 0, 1, 1)), "alice")


def test_split_by_a_line(conn, draft):
    p = draft["plan"]
    before = _area(conn, p, "G2")
    line = {"type": "LineString", "coordinates": [[X0 + 1.5 * D, Y0 - 0.001], [X0 + 1.5 * D, Y0 + D + 0.001]]}
    parts = editing.split_grid(conn, p, "G2", line, "alice")
    assert [g["code"] for g in parts] == ["G2-A", "G2-B"]
    # the line runs north: its left side is west, so G2-A is the western half
    assert shape(parts[0]["geometry"]).centroid.x < shape(parts[1]["geometry"]).centroid.x
    assert _area(conn, p, "G2-A") + _area(conn, p, "G2-B") == pytest.approx(before, rel=1e-9)
    assert sum(g["population"] for g in parts) == 5000
    with pytest.raises(NotFound):
        editing.get_grid(conn, p, "G2")
    assert [h["action"] for h in editing.grid_history(conn, p, "G2")] == ["create", "split"]
    short = {"type": "LineString", "coordinates": [[X0 + 0.5 * D, Y0 - 0.001], [X0 + 0.5 * D, Y0 + 0.5 * D]]}
    with pytest.raises(InputError, match="does not cut"):
        editing.split_grid(conn, p, "G1", short, "alice")
    across = {"type": "LineString", "coordinates": [[X0 + 0.5 * D, Y0 - 0.001], [X0 + 0.5 * D, Y0 + D + 0.001]]}
    with pytest.raises(InputError, match="2 parts but 3 codes"):
        editing.split_grid(conn, p, "G1", across, "alice", codes=["a", "b", "c"])
    with pytest.raises(Conflict, match="G3"):
        editing.split_grid(conn, p, "G1", across, "alice", codes=["G1", "G3"])
    kept = editing.split_grid(conn, p, "G1", across, "alice", codes=["G1", "G1-E"])
    assert kept[0]["code"] == "G1" and kept[0]["version"] == 2 and kept[1]["version"] == 1


def test_merge_needs_shared_edges(conn, draft):
    p = draft["plan"]
    total = _area(conn, p, "G1") + _area(conn, p, "G2")
    m = editing.merge_grids(conn, p, ["G1", "G2"], "alice", code="M12")
    assert m["code"] == "M12" and m["population"] == 8000 and m["version"] == 1
    assert _area(conn, p, "M12") == pytest.approx(total, rel=1e-9)
    assert shape(m["geometry"]).geom_type == "MultiPolygon" and len(shape(m["geometry"]).geoms) == 1
    with pytest.raises(InputError, match="contiguous"):
        editing.merge_grids(conn, p, ["G3", "G4"], "alice")  # G3 (east, south) and G4 (west, north): apart
    with pytest.raises(InputError, match="contiguous"):
        editing.merge_grids(conn, p, ["M12", "G6"], "alice")  # touch at a corner only
    with pytest.raises(StaleVersion):
        editing.merge_grids(conn, p, ["G3", "G6"], "alice", versions={"G3": 7})
    kept = editing.merge_grids(conn, p, ["G3", "G6"], "alice")
    assert kept["code"] == "G3" and kept["version"] == 2
    assert [h["action"] for h in editing.grid_history(conn, p, "G6")] == ["create", "merge"]


def test_restore_an_earlier_version_and_a_deleted_grid(conn, draft):
    p = draft["plan"]
    editing.update_grid(conn, p, "G1", 1, mapping(_box(0, 0, 0.5, 1)), "alice")
    g = editing.restore_grid(conn, p, "G1", 1, "bob")
    assert g["version"] == 3 and _same(shape(g["geometry"]), _box(0, 0, 1, 1))
    with pytest.raises(StaleVersion):
        editing.delete_grid(conn, p, "G1", 2, "bob")
    gone = editing.delete_grid(conn, p, "G1", 3, "bob")
    assert gone["version"] == 4 and gone["action"] == "delete"
    with pytest.raises(InputError, match="removal"):
        editing.restore_grid(conn, p, "G1", 4, "bob")
    back = editing.restore_grid(conn, p, "G1", 2, "bob")
    assert back["version"] == 5 and _same(shape(back["geometry"]), _box(0, 0, 0.5, 1))
    hist = editing.grid_history(conn, p, "G1")
    assert [(h["version"], h["action"]) for h in hist] == [
        (1, "create"), (2, "update"), (3, "restore"), (4, "delete"), (5, "restore")]


def test_create_grid(conn, draft):
    p = draft["plan"]
    feat = {"type": "Feature", "geometry": mapping(_box(0, 2, 1, 3)),
            "properties": {"code": "G7", "kind": "农村", "key_areas": ["城中村"], "population": 12}}
    g = editing.create_grid(conn, p, feat, "alice")
    assert (g["code"], g["kind"], g["key_areas"], g["version"]) == ("G7", "rural", ["urban_village"], 1)
    with pytest.raises(Conflict, match="G7"):
        editing.create_grid(conn, p, feat, "alice")
    with pytest.raises(InputError, match="properties.code"):
        editing.create_grid(conn, p, {"type": "Feature", "geometry": mapping(_box(0, 3, 1, 4)), "properties": {}},
                            "alice")


def _plant(conn, plan, code, wkt):
    conn.execute(text("UPDATE grids SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) WHERE plan_id = :p AND code = :c"),
                 {"w": wkt, "p": plan, "c": code})


def test_validate_finds_planted_problems_with_locations(conn, draft):
    p = draft["plan"]
    assert editing.validate_plan(conn, p)["valid"]
    _plant(conn, p, "G1", _box(0, 0, 1.2, 1).wkt)                       # overlaps G2 by 0.2 x 1 cell
    _plant(conn, p, "G5", _box(1, 1, 2, 1.7).wkt)                       # leaves a gap 1 x 0.3 cell in the north
    _plant(conn, p, "G6", shapely.MultiPolygon([_box(2, 1, 3, 2), _box(3.5, 1, 4, 1.5)]).wkt)  # two parts
    bow = f"POLYGON(({X0 + 2 * D} {Y0}, {X0 + 3 * D} {Y0 + D}, {X0 + 3 * D} {Y0}, {X0 + 2 * D} {Y0 + D}, {X0 + 2 * D} {Y0}))"
    _plant(conn, p, "G3", bow)                                          # self-intersecting at the centre
    conn.execute(text("INSERT INTO grids (plan_id, code, geom) VALUES (:p, 'SLIVER', ST_Multi(ST_GeomFromText(:w, 4326)))"),
                 {"p": p, "w": shapely.box(X0, Y0 - 0.00002, X0 + D, Y0).wkt})  # ~2 m x 1 km strip south of G1
    report = editing.validate_plan(conn, p)
    assert not report["valid"]
    by_kind = {}
    for prob in report["problems"]:
        by_kind.setdefault(prob["kind"], []).append(prob)
    inv = by_kind["invalid"][0]
    assert inv["codes"] == ["G3"] and shape(inv["location"]).distance(shapely.Point(X0 + 2.5 * D, Y0 + 0.5 * D)) < 1e-6
    over = [o for o in by_kind["overlap"] if o["codes"] == ["G1", "G2"]][0]
    assert _same(shape(over["geometry"]), _box(1, 0, 1.2, 1))
    gap = [g for g in by_kind["gap"] if _box(1, 1.7, 2, 2).contains(shape(g["location"]))]
    assert gap and gap[0]["area_m2"] > 0.25 * 1e6 and "G5" in gap[0]["codes"]
    assert sorted(m["codes"][0] for m in by_kind["multipart"]) == ["G3", "G6"]  # the bowtie repairs to 2 parts
    multi = [m for m in by_kind["multipart"] if m["codes"] == ["G6"]][0]
    assert _box(3.5, 1, 4, 1.5).contains(shape(multi["location"]))
    assert [s["codes"] for s in by_kind["sliver"]] == [["SLIVER"]]
    assert shape(by_kind["sliver"][0]["location"]).within(shapely.box(X0, Y0 - 0.00002, X0 + D, Y0).buffer(1e-9))


def test_activate_only_a_valid_plan(conn, draft):
    p = draft["plan"]
    _plant(conn, p, "G1", _box(0, 0, 1.2, 1).wkt)
    with pytest.raises(editing.PlanInvalid) as e:
        editing.activate(conn, p)
    assert {x["kind"] for x in e.value.problems} == {"overlap"}
    _plant(conn, p, "G1", _box(0, 0, 1, 1).wkt)
    assert editing.activate(conn, p)["status"] == "active"
    assert editing.get_plan(conn, draft["base"])["status"] == "retired"


@pytest.fixture
def small_city(conn, tmp_path):
    """A generated 60-grid city (4 posts, 20 officers) with its planning runs stored, in the rolled-back tx."""
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city
    from geogrid.planning_runs import run_planning

    conn.execute(text("UPDATE plans SET status = 'retired', valid_to = now() WHERE status = 'active'"))
    city = generate_city(seed=5, n_incidents=3_000, days=120, n_grids=60, n_posts=4, n_officers=20,
                         n_auxiliaries=30)
    load_city_files(conn, write_city(tmp_path / "city", city=city))
    run_planning(conn, beats_seconds=1.0)
    return conn.execute(text("SELECT id FROM plans WHERE status = 'active'")).scalar()


def _linking_grid(conn, plan):
    """(cut, into): ``cut`` holds its beat together; ``into`` is a bigger neighbour in another beat."""
    from geogrid.adjacency import rook_adjacency
    from geogrid.store.grids import read_grids

    beats = conn.execute(text("SELECT grid_codes FROM beats WHERE run_id = (SELECT max(id) FROM analysis_runs "
                              "WHERE kind = 'beats') AND n_grids >= 3 ORDER BY beat")).scalars().all()
    grids = read_grids(conn, plan)
    codes, area = grids["code"].tolist(), dict(zip(grids["code"], shapely.area(grids.geometry.values)))
    nb = {c: set() for c in codes}
    for i, j in rook_adjacency(grids).pairs.tolist():
        nb[codes[i]].add(codes[j]), nb[codes[j]].add(codes[i])
    for members in beats:
        for cut in members:
            rest = [m for m in members if m != cut]
            seen, todo = {rest[0]}, [rest[0]]
            while todo:
                for n in nb[todo.pop()] & set(rest) - seen:
                    seen.add(n), todo.append(n)
            bigger = sorted(n for n in nb[cut] - set(members) if area[n] > area[cut])
            if len(seen) < len(rest) and bigger:
                return cut, bigger[0]
    pytest.skip("no beat of the small city hangs on one grid")


def test_preview_compares_and_repairs_a_broken_beat(conn, small_city):
    from geogrid.plan_preview import preview_plan

    same = preview_plan(conn, small_city)
    assert same["compared_with"]["source"].startswith("stored runs")
    assert all(v["change"] == 0 for v in same["tiers"]["per_tier"].values()) and same["repair"] is None
    p = editing.create_plan(conn, "preview-draft", "tester")["id"]
    cut, into = _linking_grid(conn, p)
    editing.merge_grids(conn, p, [into, cut], "tester")
    out = preview_plan(conn, p, beats_seconds=1.0, repair_seconds=1.0)
    assert out["grids"] == {"added": [], "removed": [cut], "redrawn": [into], "attributes_changed": [into]}
    assert out["tiers"]["grids"] == {"draft": 59, "active": 60, "change": -1}
    assert out["staffing"]["officers"]["available"] == {"draft": 20.0, "active": 20.0, "change": 0.0}
    broken = out["beat_check"]["broken"]
    assert any("not contiguous" in b["problems"] for b in broken)
    rep = out["repair"]
    assert rep["region_contiguous"] == {"before": False, "after": True}
    moved = {m["code"] for m in rep["moves"]}
    assert moved <= {c for b in rep["beats"] for c in b["grid_codes"]}  # only the region's grids move
    assert preview_plan(conn, p, beats_seconds=1.0, repair_seconds=1.0)["tiers"] == out["tiers"]  # cached
