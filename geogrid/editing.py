"""Editing plans: draft plans, grid edits with optimistic locking, split, merge, history and restore.

The application ring over a Connection (no HTTP): the API calls these inside one transaction per
request, and so can scripts and tests. Rules:

* Only **draft** plans are edited; active and retired plans are history (:class:`Conflict` otherwise).
* Every write to a grid is a **compare-and-set** on its ``version`` in one SQL statement
  (``UPDATE … WHERE version = :v RETURNING``): of two edits based on the same version exactly one
  wins, the other gets :class:`StaleVersion` and changes nothing.
* Every change writes one ``grid_history`` row per grid touched, holding the grid *after* the change
  (geometry NULL when the grid went away), so any version can be restored. Versions of a code only
  grow within a plan, also across delete and re-create, so an old ETag never matches a new grid.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import shapely
from shapely.ops import split as shapely_split
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from geogrid.drawn import (EDITABLE, check_code, check_text, grid_properties, line_from_geojson,
                           polygon_from_geojson, split_feature)
from geogrid.errors import Conflict, InputError, NotFound, StaleVersion

GRID_COLS = ("id, plan_id, code, name, kind, population, key_areas, post_code, district, attrs, version, "
             "updated_at, ST_AsGeoJSON(geom, 9)::json AS geometry")
# the attributes a history row keeps (and a restore puts back)
_SNAPSHOT = ("jsonb_build_object('name', name, 'kind', kind, 'population', population, 'key_areas', key_areas, "
             "'post_code', post_code, 'district', district, 'attrs', attrs)")


# --- plans ---------------------------------------------------------------------------------------

def list_plans(conn: Connection) -> list[dict]:
    """All plans, newest first, with their number of grids."""
    rows = conn.execute(text(
        "SELECT p.*, (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS n_grids FROM plans p "
        "ORDER BY p.id DESC")).mappings().all()
    return [dict(r) for r in rows]


def get_plan(conn: Connection, plan_id: int) -> dict:
    """One plan with its number of grids."""
    row = conn.execute(text(
        "SELECT p.*, (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS n_grids FROM plans p "
        "WHERE p.id = :p"), {"p": plan_id}).mappings().first()
    if row is None:
        raise NotFound(f"no plan {plan_id}")
    return dict(row)


def create_plan(conn: Connection, name: str, actor: str, from_plan: int | None = None,
                note: str | None = None) -> dict:
    """A new draft plan holding a copy of the grids of ``from_plan`` (the active plan when None)."""
    if not check_text(name, "name", 200).strip():
        raise InputError("name must not be empty")
    if note is not None:
        check_text(note, "note", 2000)
    if from_plan is None:
        src = conn.execute(text("SELECT id FROM plans WHERE status = 'active'")).scalar()
        if src is None:
            raise NotFound("there is no active plan to copy; pass from_plan")
    else:
        src = get_plan(conn, from_plan)["id"]
    row = conn.execute(text(
        "INSERT INTO plans (name, status, parent_id, note) VALUES (:n, 'draft', :src, :note) "
        "ON CONFLICT (name) DO NOTHING RETURNING id"), {"n": name.strip(), "src": src, "note": note}).first()
    if row is None:
        raise Conflict(f"a plan named {name.strip()!r} exists already; choose another name")
    pid = row[0]
    conn.execute(text(
        "INSERT INTO grids (plan_id, code, name, kind, population, key_areas, post_code, district, attrs, geom) "
        "SELECT :p, code, name, kind, population, key_areas, post_code, district, attrs, geom "
        "FROM grids WHERE plan_id = :src ORDER BY code"), {"p": pid, "src": src})
    conn.execute(text(
        f"INSERT INTO grid_history (plan_id, grid_id, code, version, action, actor, note, attrs, geom) "
        f"SELECT plan_id, id, code, version, 'create', :actor, :note, {_SNAPSHOT}, geom "
        f"FROM grids WHERE plan_id = :p"), {"p": pid, "actor": actor, "note": f"copied from plan {src}"})
    return get_plan(conn, pid)


# --- grids ---------------------------------------------------------------------------------------

def get_grid(conn: Connection, plan_id: int, code: str) -> dict:
    """One grid as a dict (``geometry`` as GeoJSON); :class:`NotFound` when missing."""
    check_text(code, "code", 200)
    row = conn.execute(text(f"SELECT {GRID_COLS} FROM grids WHERE plan_id = :p AND code = :c"),
                       {"p": plan_id, "c": code}).mappings().first()
    if row is None:
        get_plan(conn, plan_id)  # a missing plan is named as such
        raise NotFound(f"plan {plan_id} has no grid {code!r}")
    return dict(row)


def update_grid(conn: Connection, plan_id: int, code: str, version: int, body: Mapping, actor: str) -> dict:
    """Replace the geometry and/or editable properties of a grid last seen at ``version``.

    ``body`` is a GeoJSON Polygon/MultiPolygon or a Feature (geometry may be null to change only
    properties). Raises :class:`StaleVersion` when the grid moved on since ``version``.
    """
    _draft(conn, plan_id)
    geom_obj, props = split_feature(body)
    current = get_grid(conn, plan_id, code)
    values = grid_properties(props, current)
    if geom_obj is not None:
        geom = polygon_from_geojson(geom_obj)
        _near_plan(conn, plan_id, geom)
        values["wkb"] = shapely.to_wkb(geom)
    if not values:
        raise InputError("nothing to change: send a geometry and/or editable properties "
                         f"({', '.join(EDITABLE)})")
    _check_post(conn, values)
    return _cas_update(conn, plan_id, code, version, values, "update", actor, None)


def create_grid(conn: Connection, plan_id: int, body: Mapping, actor: str) -> dict:
    """Add a grid: a Feature with a geometry and ``properties.code`` (plus any editable properties)."""
    _draft(conn, plan_id)
    geom_obj, props = split_feature(body)
    if geom_obj is None:
        raise InputError("a new grid needs a geometry")
    code = check_code(props.pop("code", None), "properties.code")
    values = grid_properties(props)
    geom = polygon_from_geojson(geom_obj)
    _near_plan(conn, plan_id, geom)
    _check_post(conn, values)
    return _insert(conn, plan_id, code, geom, values, "create", actor, None)


def delete_grid(conn: Connection, plan_id: int, code: str, version: int, actor: str) -> dict:
    """Delete a grid last seen at ``version``; returns its history row (geometry NULL)."""
    _draft(conn, plan_id)
    check_text(code, "code", 200)
    row = conn.execute(text(
        f"DELETE FROM grids WHERE plan_id = :p AND code = :c AND version = :v RETURNING id, version, {_SNAPSHOT}"),
        {"p": plan_id, "c": code, "v": version}).first()
    if row is None:
        _stale_or_missing(conn, plan_id, code, version)
    return _history_gone(conn, plan_id, row[0], code, row[1] + 1, "delete", actor, None, row[2])


def split_grid(conn: Connection, plan_id: int, code: str, line: Mapping, actor: str,
               codes: Sequence[str] | None = None, version: int | None = None) -> list[dict]:
    """Cut a grid along a GeoJSON LineString into two or more grids; returns the new grids.

    The line must cross the grid from side to side. Pieces are ordered left of the line (seen along
    its direction) first, then along the line; ``codes`` names them in that order (default
    ``<code>-A``, ``<code>-B``, …; a piece may keep ``code``). Population is shared by area; other
    attributes are copied.
    """
    _draft(conn, plan_id)
    check_text(code, "code", 200)
    cut = line_from_geojson(line)
    old = _lock(conn, plan_id, [code])[code]
    if version is not None and old["version"] != version:
        _stale(code, old["version"], version)
    geom = shapely.from_wkb(old["wkb"])
    pieces = [p for p in shapely.get_parts(shapely_split(geom, cut)) if p.area > 0]
    if len(pieces) < 2:
        raise InputError(f"the line does not cut grid {code} in two: it must cross the grid's boundary "
                         "on both sides (start and end outside the grid)")
    pieces = _order_by_side(pieces, cut)
    codes = list(codes) if codes is not None else [f"{code}-{chr(65 + i)}" for i in range(len(pieces))]
    if len(codes) != len(pieces):
        raise InputError(f"the line cuts grid {code} into {len(pieces)} parts but {len(codes)} codes were given")
    codes = [check_code(c, "codes[]") for c in codes]
    if len(set(codes)) != len(codes):
        raise InputError(f"codes must differ from each other, got {codes}")
    _free_codes(conn, plan_id, [c for c in codes if c != code])
    areas = np.array([p.area for p in pieces])
    pops = _share(old["population"], areas)
    base = {k: old[k] for k in ("kind", "key_areas", "post_code")}
    out = []
    note = f"split from {code} v{old['version']} into {', '.join(codes)}"
    if code not in codes:
        conn.execute(text("DELETE FROM grids WHERE id = :id"), {"id": old["id"]})
        _history_gone(conn, plan_id, old["id"], code, old["version"] + 1, "split", actor, note, _snap(old))
    for i, (c, piece) in enumerate(zip(codes, pieces)):
        values = dict(base, name=f"{old['name']} ({i + 1}/{len(pieces)})".strip(), population=pops[i],
                      wkb=shapely.to_wkb(shapely.MultiPolygon([piece])))
        if c == code:
            out.append(_cas_update(conn, plan_id, code, old["version"], values, "split", actor, note))
        else:
            out.append(_insert(conn, plan_id, c, piece, values, "split", actor, note, district=old["district"],
                               attrs=old["attrs"]))
    return out


def merge_grids(conn: Connection, plan_id: int, codes: Sequence[str], actor: str, code: str | None = None,
                versions: Mapping[str, int] | None = None) -> dict:
    """Merge rook-adjacent grids (sharing edges, not only corners) into one; returns the merged grid.

    ``code`` names the result (default the first of ``codes``; it may be one of them). Population is
    summed, key areas joined, other attributes taken from the first grid. ``versions`` (code →
    version) makes the merge fail with :class:`StaleVersion` if any grid moved on.
    """
    from geogrid.adjacency import rook_adjacency

    _draft(conn, plan_id)
    if not isinstance(codes, (list, tuple)) or len(codes) < 2:
        raise InputError("codes must list at least two grids to merge")
    codes = [check_code(c, "codes[]") for c in codes]
    if len(set(codes)) != len(codes):
        raise InputError(f"codes lists a grid twice: {codes}")
    target = check_code(code if code is not None else codes[0], "code")
    rows = _lock(conn, plan_id, codes)
    for c, v in (versions or {}).items():
        if c not in rows:
            raise InputError(f"versions names {c!r}, which is not among codes")
        if rows[c]["version"] != v:
            _stale(c, rows[c]["version"], v)
    if target not in codes:
        _free_codes(conn, plan_id, [target])
    geoms = [shapely.from_wkb(rows[c]["wkb"]) for c in codes]
    comp = rook_adjacency(gpd.GeoSeries(geoms, crs=4326)).components()
    if comp.max() > 0:
        groups = [[c for c, k in zip(codes, comp) if k == g] for g in range(comp.max() + 1)]
        raise InputError("grids to merge must form one contiguous area (sharing edges; corners do not count); "
                         f"they fall into {len(groups)} separate groups: {groups}")
    merged = shapely.union_all(geoms)
    if len(shapely.get_parts(merged)) > 1:
        raise InputError(f"merging {codes} gives {len(shapely.get_parts(merged))} separate parts; "
                         "close the gaps between them first")
    first = rows[codes[0]]
    pops = [rows[c]["population"] for c in codes if rows[c]["population"] is not None]
    values = {"name": first["name"], "kind": first["kind"], "post_code": first["post_code"],
              "population": sum(pops) if pops else None,
              "key_areas": sorted({k for c in codes for k in (rows[c]["key_areas"] or [])}),
              "wkb": shapely.to_wkb(shapely.MultiPolygon(list(shapely.get_parts(merged))))}
    merged_from = ", ".join(f"{c} v{rows[c]['version']}" for c in codes)
    note = f"merged {merged_from} into {target}"
    for c in codes:
        if c != target:
            conn.execute(text("DELETE FROM grids WHERE id = :id"), {"id": rows[c]["id"]})
            _history_gone(conn, plan_id, rows[c]["id"], c, rows[c]["version"] + 1, "merge", actor, note, _snap(rows[c]))
    if target in rows:
        return _cas_update(conn, plan_id, target, rows[target]["version"], values, "merge", actor, note)
    return _insert(conn, plan_id, target, merged, values, "merge", actor, note, district=first["district"],
                   attrs=first["attrs"])


# --- history -------------------------------------------------------------------------------------

def grid_history(conn: Connection, plan_id: int, code: str | None = None, geometry: bool | None = None) -> list[dict]:
    """Changes of a plan's grids (of one ``code`` when given), oldest first.

    Geometries (GeoJSON) are included for one code, or when ``geometry`` is True.
    """
    get_plan(conn, plan_id)
    if code is not None:
        check_text(code, "code", 200)
    geometry = code is not None if geometry is None else geometry
    geo = ", ST_AsGeoJSON(geom, 9)::json AS geometry" if geometry else ""
    rows = conn.execute(text(
        f"SELECT id, grid_id, code, version, action, actor, at, note, attrs, geom IS NULL AS gone{geo} "
        "FROM grid_history WHERE plan_id = :p AND (CAST(:c AS text) IS NULL OR code = :c) ORDER BY id"),
        {"p": plan_id, "c": code}).mappings().all()
    if code is not None and not rows:
        raise NotFound(f"plan {plan_id} has no history for grid {code!r}")
    return [dict(r) for r in rows]


def restore_grid(conn: Connection, plan_id: int, code: str, version: int, actor: str,
                 expected: int | None = None) -> dict:
    """Put back the geometry and attributes a grid had at ``version``, as a new version.

    Works also for a grid deleted, split or merged away since (it is re-created).
    """
    _draft(conn, plan_id)
    check_text(code, "code", 200)
    row = conn.execute(text(
        "SELECT attrs, ST_AsBinary(geom) AS wkb FROM grid_history WHERE plan_id = :p AND code = :c "
        "AND version = :v ORDER BY id DESC LIMIT 1"), {"p": plan_id, "c": code, "v": version}).mappings().first()
    if row is None:
        raise NotFound(f"grid {code!r} of plan {plan_id} has no version {version}; see its history")
    if row["wkb"] is None:
        raise InputError(f"version {version} of grid {code!r} records its removal; restore an earlier version")
    snap = row["attrs"]
    values = {k: snap.get(k) for k in EDITABLE}
    values["key_areas"] = list(values["key_areas"] or [])
    values["wkb"] = bytes(row["wkb"])
    note = f"restored version {version}"
    cur = conn.execute(text("SELECT version FROM grids WHERE plan_id = :p AND code = :c FOR UPDATE"),
                       {"p": plan_id, "c": code}).scalar()
    if cur is None:
        return _insert(conn, plan_id, code, shapely.from_wkb(values["wkb"]), values, "restore", actor, note,
                       district=snap.get("district"), attrs=snap.get("attrs"))
    return _cas_update(conn, plan_id, code, cur if expected is None else expected, values, "restore", actor, note)


# --- checks and activation ----------------------------------------------------------------------

def validate_plan(conn: Connection, plan_id: int, **thresholds) -> dict:
    """``{"plan", "valid", "counts", "problems"}`` for a plan (see :mod:`geogrid.plan_checks`).

    Gaps are searched inside the active plan's area (when checking another plan) and inside the plan's
    own outer boundary.
    """
    from geogrid.plan_checks import plan_problems
    from geogrid.store.grids import read_grids

    plan = get_plan(conn, plan_id)
    grids = read_grids(conn, plan_id)
    jurisdiction = None
    active = conn.execute(text("SELECT id FROM plans WHERE status = 'active'")).scalar()
    if active is not None and active != plan_id:
        jurisdiction = shapely.union_all(read_grids(conn, active).geometry.to_numpy())
    problems = plan_problems(grids, jurisdiction, **thresholds)
    if len(grids) == 0:
        problems.insert(0, {"kind": "empty", "codes": [], "message": f"plan {plan['name']!r} has no grids",
                            "location": None})
    counts = {k: sum(p["kind"] == k for p in problems) for k in dict.fromkeys(p["kind"] for p in problems)}
    return {"plan": plan_id, "valid": not problems, "n_grids": int(len(grids)), "counts": counts,
            "problems": problems}


class PlanInvalid(Conflict):
    """Activation refused: the plan has problems (``.problems``)."""

    def __init__(self, message: str, problems: list[dict]):
        super().__init__(message)
        self.problems = problems


def activate(conn: Connection, plan_id: int) -> dict:
    """Make a valid draft (or retired) plan the active one: retires the old plan, re-assigns incidents."""
    from geogrid.store.plans import activate_plan

    row = conn.execute(text("SELECT name, status FROM plans WHERE id = :p FOR UPDATE"), {"p": plan_id}).first()
    if row is None:
        raise NotFound(f"no plan {plan_id}")
    if row[1] == "active":
        return get_plan(conn, plan_id)
    report = validate_plan(conn, plan_id)
    if not report["valid"]:
        counts = ", ".join(f"{n} {k}" for k, n in report["counts"].items())
        raise PlanInvalid(f"plan {row[0]!r} has {len(report['problems'])} problem(s) ({counts}); "
                          "fix them and validate again", report["problems"])
    activate_plan(conn, plan_id)
    return get_plan(conn, plan_id)


# --- private steps -------------------------------------------------------------------------------

def _draft(conn: Connection, plan_id: int) -> dict:
    """The plan, locked against activation until this transaction ends; only drafts may change."""
    row = conn.execute(text("SELECT id, name, status FROM plans WHERE id = :p FOR SHARE"),
                       {"p": plan_id}).mappings().first()
    if row is None:
        raise NotFound(f"no plan {plan_id}")
    if row["status"] != "draft":
        raise Conflict(f"plan {row['name']!r} is {row['status']} and cannot be edited; "
                       "create a draft from it (POST /plans with from_plan) and edit that")
    return dict(row)


def _lock(conn: Connection, plan_id: int, codes: Sequence[str]) -> dict[str, dict]:
    rows = conn.execute(text(
        "SELECT id, code, name, kind, population, key_areas, post_code, district, attrs, version, "
        "ST_AsBinary(geom) AS wkb FROM grids WHERE plan_id = :p AND code = ANY(:cs) ORDER BY code FOR UPDATE"),
        {"p": plan_id, "cs": list(codes)}).mappings().all()
    found = {r["code"]: dict(r, wkb=bytes(r["wkb"])) for r in rows}
    missing = [c for c in codes if c not in found]
    if missing:
        raise NotFound(f"plan {plan_id} has no grid {', '.join(map(repr, missing))}")
    return found


def _cas_update(conn, plan_id, code, version, values, action, actor, note) -> dict:
    sets = [f"{k} = :{k}" for k in EDITABLE if k in values]  # column names from the EDITABLE whitelist
    if "wkb" in values:
        sets.append("geom = ST_Multi(ST_GeomFromWKB(:wkb, 4326))")
    binds = {k: values[k] for k in (*EDITABLE, "wkb") if k in values}
    row = conn.execute(text(
        f"UPDATE grids SET {', '.join(sets)}, version = version + 1, updated_at = now() "
        "WHERE plan_id = :_p AND code = :_c AND version = :_v RETURNING id"),
        {**binds, "_p": plan_id, "_c": code, "_v": version}).first()
    if row is None:
        _stale_or_missing(conn, plan_id, code, version)
    _history_row(conn, row[0], action, actor, note)
    return get_grid(conn, plan_id, code)


def _insert(conn, plan_id, code, geom, values, action, actor, note, district=None, attrs=None) -> dict:
    version = conn.execute(text(
        "SELECT coalesce(max(version), 0) + 1 FROM grid_history WHERE plan_id = :p AND code = :c"),
        {"p": plan_id, "c": code}).scalar()
    binds = {"p": plan_id, "c": code, "v": version, "name": values.get("name") or "",
             "kind": values.get("kind") or "urban", "population": values.get("population"),
             "key_areas": list(values.get("key_areas") or []), "post_code": values.get("post_code"),
             "district": district, "attrs": json.dumps(attrs or {}, ensure_ascii=False),
             "wkb": shapely.to_wkb(geom)}
    try:
        with conn.begin_nested():
            row = conn.execute(text(
                "INSERT INTO grids (plan_id, code, name, kind, population, key_areas, post_code, district, attrs, "
                "version, geom) VALUES (:p, :c, :name, :kind, :population, :key_areas, :post_code, :district, "
                "CAST(:attrs AS jsonb), :v, ST_Multi(ST_GeomFromWKB(:wkb, 4326))) RETURNING id"), binds).first()
    except IntegrityError:
        raise Conflict(f"plan {plan_id} has a grid {code!r} already") from None
    _history_row(conn, row[0], action, actor, note)
    return get_grid(conn, plan_id, code)


def _history_row(conn, grid_id, action, actor, note) -> None:
    conn.execute(text(
        f"INSERT INTO grid_history (plan_id, grid_id, code, version, action, actor, note, attrs, geom) "
        f"SELECT plan_id, id, code, version, :a, :actor, :note, {_SNAPSHOT}, geom FROM grids WHERE id = :id"),
        {"id": grid_id, "a": action, "actor": actor, "note": note})


def _history_gone(conn, plan_id, grid_id, code, version, action, actor, note, snapshot) -> dict:
    row = conn.execute(text(
        "INSERT INTO grid_history (plan_id, grid_id, code, version, action, actor, note, attrs, geom) "
        "VALUES (:p, :g, :c, :v, :a, :actor, :note, CAST(:s AS jsonb), NULL) "
        "RETURNING id, code, version, action, actor, at, note"),
        {"p": plan_id, "g": grid_id, "c": code, "v": version, "a": action, "actor": actor, "note": note,
         "s": json.dumps(snapshot, default=str, ensure_ascii=False)}).mappings().one()
    return dict(row)


def _snap(row: Mapping) -> dict:
    return {k: row[k] for k in ("name", "kind", "population", "key_areas", "post_code", "district", "attrs")}


def _stale(code, current, given):
    err = StaleVersion(f"grid {code} is at version {current}, the edit was based on version {given}; "
                       "reload the grid and apply the change again")
    err.headers = {"ETag": f'"{current}"'}
    raise err


def _stale_or_missing(conn, plan_id, code, version):
    cur = conn.execute(text("SELECT version FROM grids WHERE plan_id = :p AND code = :c"),
                       {"p": plan_id, "c": code}).scalar()
    if cur is None:
        raise NotFound(f"plan {plan_id} has no grid {code!r}")
    _stale(code, cur, version)


def _free_codes(conn, plan_id, codes) -> None:
    taken = conn.execute(text("SELECT code FROM grids WHERE plan_id = :p AND code = ANY(:cs) ORDER BY code"),
                         {"p": plan_id, "cs": list(codes)}).scalars().all()
    if taken:
        raise Conflict(f"plan {plan_id} has grid(s) {', '.join(taken)} already; choose other codes")


def _near_plan(conn, plan_id, geom) -> None:
    """Refuse geometries far from the plan's grids: lat/lon swapped or another CRS, most likely."""
    box = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e "
        "FROM grids WHERE plan_id = :p) s"), {"p": plan_id}).first()
    if box is None or box[0] is None:
        return
    x0, y0, x1, y1 = box
    pad = max(x1 - x0, y1 - y0, 0.01)
    if not geom.intersects(shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)):
        c = geom.centroid
        raise InputError(f"geometry at ({c.x:.5f}, {c.y:.5f}) lies far from the plan's grids "
                         f"({x0:.4f}, {y0:.4f}) … ({x1:.4f}, {y1:.4f}): longitude and latitude swapped, "
                         "or coordinates in another CRS (name it in a 'crs' member)?")


def _check_post(conn, values) -> None:
    pc = values.get("post_code")
    if pc is not None and conn.execute(text("SELECT 1 FROM posts WHERE code = :c"), {"c": pc}).first() is None:
        raise InputError(f"properties.post_code {pc!r} is not a known post")


def _share(total: int | None, weights: np.ndarray) -> list[int | None]:
    """``total`` split in proportion to ``weights`` in whole numbers (largest remainder; sums to total)."""
    if total is None:
        return [None] * len(weights)
    exact = total * weights / weights.sum()
    out = np.floor(exact).astype(int)
    out[np.argsort(-(exact - out), kind="stable")[: total - out.sum()]] += 1
    return out.tolist()


def _order_by_side(pieces, line) -> list:
    """Pieces left of the line (along its direction) first, then by position along the line."""
    L = line.length

    def key(p):
        pt = p.point_on_surface()
        s = line.project(pt)
        a, b = line.interpolate(max(s - L * 1e-6, 0)), line.interpolate(min(s + L * 1e-6, L))
        cross = (b.x - a.x) * (pt.y - a.y) - (b.y - a.y) * (pt.x - a.x)
        return (0 if cross > 0 else 1, s)

    return sorted(pieces, key=key)


def feature(grid: Mapping) -> dict:
    """A grid dict as a GeoJSON Feature (id = code)."""
    props = {k: v for k, v in grid.items() if k not in ("geometry", "id", "plan_id")}
    if props.get("updated_at") is not None:
        props["updated_at"] = props["updated_at"].isoformat()
    return {"type": "Feature", "id": grid["code"], "geometry": grid.get("geometry"), "properties": props}


__all__ = ["list_plans", "get_plan", "create_plan", "get_grid", "update_grid", "create_grid", "delete_grid",
           "split_grid", "merge_grids", "grid_history", "restore_grid", "feature", "validate_plan", "activate"]
