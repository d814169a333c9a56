"""Responsibility lookup: which grid, beat, officers, nearest post and response deadline for a point.

The question 110 dispatch and grid-event apps ask many times a second. :func:`lookup_many` answers
any number of points with **one SQL statement** (one round trip): the points travel as two
``float8[]`` arrays, are ``unnest``-ed, and each finds its grid, tier, beat, staff and nearest post
through ``LATERAL`` joins on the GiST indexes. The statement text never changes, so psycopg
prepares it after a few executions. :func:`lookup` is the one-point form.

Rules
-----
* **Plan.** The active plan, or with ``at`` the plan in force then (``valid_from <= at <
  valid_to``, as :func:`geogrid.store.plans.plan_in_force`). No such plan → :class:`NotFound`.
* **Grid.** The grid of that plan whose polygon *intersects* the point, so a point on a boundary
  belongs to a grid (the one with the smallest code, to be deterministic). None → :class:`NotFound`.
* **Tier, beat.** From the latest finished ``tiers`` / ``beats`` run made for that plan (a run
  recorded without a plan counts when no run names the plan); null when there is none.
* **Responsible staff.** Staff whose ``grid_code`` is the grid's code; when nobody is assigned to
  the grid, the officers assigned to the grids of its beat (一警多格).
* **Nearest post.** By geodesic distance on WGS-84 (``geography``), found with an index KNN probe
  (``<->``, planar degrees) and an exact ``ST_DWithin`` re-check of every post the degree metric
  could have ranked wrongly (a degree of longitude is shorter than one of latitude).
* **Travel time.** :class:`geogrid.travel.StraightLineTravel`: distance × circuity at the urban
  speed in an urban grid, the rural speed in a rural grid (as ``StraightLineTravel.from_grids``).
* **Deadline.** From the staffing policy's response section (15 minutes urgent, 2 hours normal);
  the priority is the one given, else the default priority of the category given, else normal.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from numbers import Real
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, text

from geogrid.categories import PRIORITIES, CategoryMap
from geogrid.crs import WGS84, CRSSpec, parse_crs, to_wgs84
from geogrid.errors import GeogridError, InputError, NotFound
from geogrid.policy import Response, StaffingPolicy
from geogrid.travel import StraightLineTravel

__all__ = ["Options", "lookup", "lookup_many", "parse_at", "travel_minutes", "LOOKUP_SQL", "KNN_SLACK"]

# Widening of the exact nearest-post re-check beyond the bound of the degree metric: covers the
# sphere-vs-spheroid difference (< 0.6 %) and the curvature neglected by the bound.
KNN_SLACK = 1.05

# One statement for any number of points. Bind parameters only; the text is constant (prepared).
LOOKUP_SQL = text("""
WITH plan AS (
    SELECT id, name FROM plans
    WHERE CASE WHEN CAST(:at AS timestamptz) IS NULL THEN status = 'active'
               ELSE valid_from <= CAST(:at AS timestamptz)
                    AND (valid_to IS NULL OR valid_to > CAST(:at AS timestamptz)) END
    ORDER BY valid_from DESC NULLS LAST LIMIT 1
), runs AS (
    SELECT DISTINCT ON (r.kind) r.kind, r.id
    FROM analysis_runs r, plan
    WHERE r.kind IN ('tiers', 'beats') AND r.finished_at IS NOT NULL
      AND (r.plan_id = plan.id OR r.plan_id IS NULL)
    ORDER BY r.kind, (r.plan_id IS NOT NULL) DESC, r.id DESC
), hit AS MATERIALIZED (
    SELECT u.i, u.geom, plan.id AS plan_id, plan.name AS plan_name, g.code, g.name, g.kind, g.district
    FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS geom
          FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS u(x, y, i)) u
    LEFT JOIN plan ON TRUE
    LEFT JOIN LATERAL (
        SELECT g.code, g.name, g.kind, g.district FROM grids g
        WHERE g.plan_id = plan.id AND ST_Intersects(g.geom, u.geom)
        ORDER BY g.code LIMIT 1
    ) g ON TRUE
), grid_staff AS (
    -- one pass over staff for the whole batch (no per-point scan)
    SELECT s.grid_code, json_agg(json_build_object('code', s.code, 'name', s.name, 'role', s.role,
                                                   'post_code', s.post_code, 'grid_code', s.grid_code)
                                 ORDER BY s.role DESC, s.code) AS staff
    FROM staff s WHERE s.grid_code IN (SELECT code FROM hit) GROUP BY s.grid_code
)
SELECT h.i, h.plan_id, h.plan_name, h.code, h.name, h.kind, h.district,
       t.tier, (SELECT id FROM runs WHERE kind = 'tiers') AS tiers_run,
       b.beat, b.officers AS beat_officers, b.n_grids AS beat_grids, b.post_code AS beat_post,
       (SELECT id FROM runs WHERE kind = 'beats') AS beats_run,
       COALESCE(gs.staff, bs.staff) AS staff, CASE WHEN gs.staff IS NOT NULL THEN 'grid'
                                                   WHEN bs.staff IS NOT NULL THEN 'beat' END AS staff_from,
       post.code AS post_code, post.name AS post_name, post.kind AS post_kind,
       post.lon AS post_lon, post.lat AS post_lat, post.metres AS post_metres
FROM hit h
LEFT JOIN grid_tiers t ON t.run_id = (SELECT id FROM runs WHERE kind = 'tiers') AND t.code = h.code
LEFT JOIN grid_staff gs ON gs.grid_code = h.code
LEFT JOIN LATERAL (
    SELECT b.beat, b.officers, b.n_grids, b.post_code, b.grid_codes FROM beats b
    WHERE b.run_id = (SELECT id FROM runs WHERE kind = 'beats') AND h.code = ANY(b.grid_codes)
    ORDER BY b.beat LIMIT 1
) b ON TRUE
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('code', s.code, 'name', s.name, 'role', s.role,
                                      'post_code', s.post_code, 'grid_code', s.grid_code)
                    ORDER BY s.code) AS staff
    FROM staff s
    WHERE gs.staff IS NULL AND s.role = 'officer' AND s.grid_code = ANY(b.grid_codes)
) bs ON TRUE
LEFT JOIN LATERAL (
    SELECT p.geom <-> h.geom AS deg FROM posts p
    WHERE h.code IS NOT NULL ORDER BY p.geom <-> h.geom LIMIT 1
) k ON TRUE
LEFT JOIN LATERAL (
    SELECT p.code, p.name, p.kind, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
           ST_Distance(p.geom::geography, h.geom::geography) AS metres
    FROM posts p
    WHERE ST_DWithin(p.geom, h.geom,
                     k.deg * :slack / cos(radians(least(abs(ST_Y(h.geom)) + 2 * k.deg, 89.0))) + 1e-12)
    ORDER BY metres, p.code LIMIT 1
) post ON TRUE
ORDER BY h.i
""")


@dataclass(frozen=True)
class Options:
    """What every point of one lookup shares.

    Attributes
    ----------
    crs : CRSSpec
        System of the input coordinates (WGS-84 by default; GCJ-02, BD-09 or any EPSG code).
    at : datetime or None
        Answer from the plan in force at this (timezone-aware) moment; None: the active plan.
    priority : {'urgent', 'normal'} or None
        Priority of the matter; None: from ``category``, else normal.
    category : str or None
        Incident category (any alias :class:`~geogrid.categories.CategoryMap` knows).
    """

    crs: CRSSpec = WGS84
    at: datetime | None = None
    priority: str | None = None
    category: str | None = None

    @classmethod
    def parse(cls, crs: Any = None, at: Any = None, priority: str | None = None,
              category: str | None = None, tz: str | tzinfo = "UTC") -> Options:
        """Validated options from raw values; InputError names the bad parameter."""
        try:
            spec = WGS84 if crs in (None, "") else parse_crs(crs)
        except InputError as exc:
            raise InputError(f"crs: {exc}") from None
        at = parse_at(at, tz) if at not in (None, "") else None
        _priority_of(priority, category)  # validate early: the same error for every point otherwise
        return cls(spec, at, priority or None, category or None)


def parse_at(value: str | datetime | date, tz: str | tzinfo = "UTC") -> datetime:
    """An ISO 8601 date or datetime as an aware datetime; naive values are taken in ``tz``.

    Examples
    --------
    >>> parse_at("2025-03-01T08:00:00+08:00").isoformat()
    '2025-03-01T08:00:00+08:00'
    >>> parse_at("2025-03-01", "Asia/Shanghai").isoformat()
    '2025-03-01T00:00:00+08:00'
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    if isinstance(value, datetime):
        out = value
    elif isinstance(value, date):
        out = datetime(value.year, value.month, value.day)
    else:
        try:
            out = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise InputError(f"at: {value!r} is not an ISO 8601 date or datetime "
                             "(e.g. 2025-03-01 or 2025-03-01T08:00:00+08:00)") from None
    return out if out.tzinfo is not None else out.replace(tzinfo=zone)


def lookup(conn: Connection, lon: float, lat: float, options: Options = Options(),
           travel: StraightLineTravel | None = None, policy: Response | None = None) -> dict:
    """Grid, tier, beat, responsible staff, nearest post and deadline of one point.

    Raises
    ------
    InputError
        Bad coordinates (not finite, or not convertible from ``options.crs``).
    NotFound
        No plan in force, or the point lies outside every grid of the plan.
    """
    (answer,) = lookup_many(conn, [{"lon": lon, "lat": lat}], options, travel, policy)
    if isinstance(answer, GeogridError):
        raise answer
    return answer


def lookup_many(conn: Connection, points: Sequence[Mapping[str, Any]], options: Options = Options(),
                travel: StraightLineTravel | None = None, policy: Response | None = None
                ) -> list[dict | GeogridError]:
    """Answer every point of ``points`` (mappings with ``lon``, ``lat``, optional ``id``,
    ``priority``, ``category``) with one SQL statement.

    Returns one item per point in input order: the answer (a dict, see ``docs/lookup.md``) or the
    :class:`~geogrid.errors.GeogridError` of that point alone (InputError for bad coordinates,
    NotFound outside every grid).

    Raises
    ------
    NotFound
        No plan in force (active, or at ``options.at``): no point can be answered.
    """
    travel = travel or StraightLineTravel()
    policy = policy or _default_response()
    out: list[dict | GeogridError | None] = [None] * len(points)
    xs, ys, where = [], [], []
    for k, item in enumerate(points):
        try:
            x, y = _coords(item)
            _priority_of(*_item_priority(item, options))
        except InputError as exc:
            out[k] = exc
            continue
        xs.append(x), ys.append(y), where.append(k)
    lon, lat = to_wgs84(np.array(xs, float), np.array(ys, float), options.crs)
    good = []
    for j, k in enumerate(where):
        if not (np.isfinite(lon[j]) and np.isfinite(lat[j]) and -180 <= lon[j] <= 180 and -90 <= lat[j] <= 90):
            out[k] = InputError(f"point ({xs[j]}, {ys[j]}) in {options.crs.name} is not a valid position "
                                "(check the lon/lat order and the crs)")
        else:
            good.append(j)
    if good:
        rows = conn.execute(LOOKUP_SQL, {"at": options.at, "xs": [float(lon[j]) for j in good],
                                         "ys": [float(lat[j]) for j in good], "slack": KNN_SLACK}
                            ).mappings().all()
        if rows[0]["plan_id"] is None:
            raise NotFound(f"no plan was in force at {options.at.isoformat()}" if options.at else
                           "no active plan; load grids and activate a plan first")
        for row in rows:
            j = good[row["i"] - 1]
            k = where[j]
            out[k] = _answer(row, points[k], float(lon[j]), float(lat[j]), xs[j], ys[j], options, travel, policy)
    return out  # type: ignore[return-value]


def travel_minutes(metres: float, kind: str, travel: StraightLineTravel) -> float:
    """Minutes to cover ``metres`` of straight line to a destination in a grid of ``kind``."""
    kmh = travel.urban_kmh if kind == "urban" else travel.rural_kmh
    return metres * travel.circuity / (kmh * 1000.0 / 60.0)


# --- private steps -------------------------------------------------------------------------------

def _coords(item: Mapping[str, Any]) -> tuple[float, float]:
    if not isinstance(item, Mapping):
        raise InputError(f"each point must be an object with lon and lat, got {type(item).__name__}")
    vals = []
    for key in ("lon", "lat"):
        v = item.get(key)
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
            raise InputError(f"{key} must be a finite number, got {v!r}")
        vals.append(float(v))
    return vals[0], vals[1]


def _item_priority(item: Mapping[str, Any], options: Options) -> tuple[str | None, str | None]:
    """A point's own priority/category override the shared ones."""
    if "priority" in item or "category" in item:
        return item.get("priority"), item.get("category")
    return options.priority, options.category


def _priority_of(priority: str | None, category: str | None) -> tuple[str, str]:
    """(priority, where it came from): the one given, the category's default, or normal."""
    if priority not in (None, ""):
        if priority not in PRIORITIES:
            raise InputError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        return priority, "priority"
    if category not in (None, ""):
        cmap = _categories()
        code = cmap.code_of(category) if isinstance(category, str) else None
        if code is None:
            raise InputError(f"category {category!r} is unknown; use a code such as "
                             f"{', '.join(cmap.codes[:5])} or its zh/en label")
        return cmap.priority(code), f"category:{code}"
    return "normal", "default"


def _due_by(start: datetime, minutes: float) -> str | None:
    try:
        return (start + timedelta(minutes=minutes)).isoformat()
    except OverflowError:  # an `at` at the very end of year 9999
        return None


@lru_cache(maxsize=1)
def _categories() -> CategoryMap:
    return CategoryMap.default()


@lru_cache(maxsize=1)
def _default_response() -> Response:
    return StaffingPolicy.default().response


def _answer(row: Mapping[str, Any], item: Mapping[str, Any], lon: float, lat: float, x: float, y: float,
            options: Options, travel: StraightLineTravel, policy: Response) -> dict | GeogridError:
    if row["code"] is None:
        return NotFound(f"point ({lon:.6f}, {lat:.6f}) lies outside every grid of plan "
                        f"{row['plan_name']!r} (id {row['plan_id']})")
    priority, source = _priority_of(*_item_priority(item, options))
    deadline = policy.urgent_minutes if priority == "urgent" else policy.ordinary_minutes
    start = options.at or datetime.now(timezone.utc)
    post = None
    if row["post_code"] is not None:
        minutes = travel_minutes(row["post_metres"], row["kind"], travel)
        post = {"code": row["post_code"], "name": row["post_name"], "kind": row["post_kind"],
                "lon": row["post_lon"], "lat": row["post_lat"], "distance_m": round(row["post_metres"], 1),
                "travel_minutes": round(minutes, 2), "within_deadline": bool(minutes <= deadline)}
    staff = row["staff"]
    if isinstance(staff, str):  # drivers without json decoding
        staff = json.loads(staff)
    answer = {
        "point": {"lon": lon, "lat": lat, "crs": "EPSG:4326",
                  "input": {"x": x, "y": y, "crs": options.crs.name}},
        "plan": {"id": row["plan_id"], "name": row["plan_name"],
                 "at": options.at.isoformat() if options.at else None},
        "grid": {"code": row["code"], "name": row["name"], "kind": row["kind"], "district": row["district"],
                 "tier": row["tier"], "tiers_run": row["tiers_run"] if row["tier"] is not None else None},
        "beat": None if row["beat"] is None else {
            "beat": row["beat"], "officers": row["beat_officers"], "n_grids": row["beat_grids"],
            "post_code": row["beat_post"], "run": row["beats_run"]},
        "responsible": {"via": row["staff_from"], "staff": staff or []},
        "nearest_post": post,
        "travel_model": {"model": "straight-line", "distance": "geodesic (WGS-84)",
                         "circuity": travel.circuity,
                         "kmh": travel.urban_kmh if row["kind"] == "urban" else travel.rural_kmh,
                         "urban_kmh": travel.urban_kmh, "rural_kmh": travel.rural_kmh},
        "response": {"priority": priority, "priority_from": source, "deadline_minutes": deadline,
                     "due_by": _due_by(start, deadline)},
    }
    if "id" in item:
        answer = {"id": item["id"], **answer}
    return answer
