"""Plans: versions of the grid boundaries, which one is active, and which was in force when."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Connection, text

from geogrid.errors import Conflict, NotFound


def get_plan(conn: Connection, plan: int | str) -> dict:
    """A plan by id or name."""
    col = "id" if isinstance(plan, int) else "name"
    row = conn.execute(text(f"SELECT * FROM plans WHERE {col} = :v"), {"v": plan}).mappings().first()
    if row is None:
        raise NotFound(f"no plan {plan!r}")
    return dict(row)


def active_plan(conn: Connection) -> dict | None:
    row = conn.execute(text("SELECT * FROM plans WHERE status = 'active'")).mappings().first()
    return dict(row) if row else None


def get_or_create_plan(conn: Connection, name: str, note: str | None = None) -> tuple[dict, bool]:
    """The plan called ``name``, created as a draft when missing; returns (plan, created)."""
    row = conn.execute(text("SELECT * FROM plans WHERE name = :n"), {"n": name}).mappings().first()
    if row:
        return dict(row), False
    row = conn.execute(
        text("INSERT INTO plans (name, status, note) VALUES (:n, 'draft', :note) RETURNING *"),
        {"n": name, "note": note},
    ).mappings().one()
    return dict(row), True


def plan_in_force(conn: Connection, at: datetime) -> dict:
    """The plan that was in force at ``at`` (active plans are open-ended)."""
    row = conn.execute(
        text(
            "SELECT * FROM plans WHERE valid_from <= :at AND (valid_to IS NULL OR valid_to > :at) "
            "ORDER BY valid_from DESC LIMIT 1"
        ),
        {"at": at},
    ).mappings().first()
    if row is None:
        raise NotFound(f"no plan was in force at {at.isoformat()}")
    return dict(row)


def activate_plan(conn: Connection, plan_id: int, at: datetime | None = None) -> dict:
    """Make ``plan_id`` the active plan from ``at`` (now): retire the old one and re-assign incidents."""
    at = at or datetime.now(timezone.utc)
    plan = get_plan(conn, plan_id)
    if plan["status"] == "active":
        return plan
    n = conn.execute(text("SELECT count(*) FROM grids WHERE plan_id = :p"), {"p": plan_id}).scalar()
    if not n:
        raise Conflict(f"plan {plan['name']!r} has no grids; load or draw grids before activating it")
    # serialise activations: two planners activating at once must not leave two active plans
    conn.execute(text("LOCK TABLE plans IN SHARE ROW EXCLUSIVE MODE"))
    conn.execute(
        text("UPDATE plans SET status = 'retired', valid_to = :at WHERE status = 'active'"), {"at": at}
    )
    row = conn.execute(
        text("UPDATE plans SET status = 'active', valid_from = :at, valid_to = NULL WHERE id = :p RETURNING *"),
        {"p": plan_id, "at": at},
    ).mappings().one()
    assign_incident_grids(conn, plan_id)
    return dict(row)


def assign_incident_grids(conn: Connection, plan_id: int, chunk: int = 500_000) -> int:
    """Recompute ``incidents.grid_id`` for the grids of ``plan_id`` in memory; returns rows changed.

    Points are read in chunks and located with a shapely STRtree (sub-second per million), then
    written back through a COPY'd temporary table and one UPDATE ... FROM.
    """
    from geogrid.assign import GridIndex
    from geogrid.store import copy as pgcopy
    from geogrid.store.grids import read_grids

    grids = read_grids(conn, plan_id)
    index = GridIndex(grids, key="id")
    raw = conn.connection.driver_connection
    conn.execute(text("DROP TABLE IF EXISTS _grid_assign"))
    conn.execute(text("CREATE TEMP TABLE _grid_assign (id bigint, grid_id int) ON COMMIT DROP"))
    last = -1
    while True:
        rows = conn.execute(
            text(
                "SELECT id, ST_X(geom), ST_Y(geom), grid_id FROM incidents WHERE id > :last "
                "ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": chunk},
        ).all()
        if not rows:
            break
        arr = np.array([(r[0], r[1], r[2], -1 if r[3] is None else r[3]) for r in rows], dtype=float)
        ids = arr[:, 0].astype(np.int64)
        idx = index.locate(arr[:, 1], arr[:, 2])
        new = np.where(idx >= 0, index.keys[np.maximum(idx, 0)], -1).astype(np.int64)
        changed = new != arr[:, 3].astype(np.int64)
        if changed.any():
            nulls = new[changed] < 0
            pgcopy.copy_columns(
                raw, "_grid_assign", ["id", "grid_id"],
                [pgcopy.int8(ids[changed]), pgcopy.int4(new[changed], null=nulls)],
            )
        last = int(ids[-1])
    n = conn.execute(
        text("UPDATE incidents i SET grid_id = a.grid_id FROM _grid_assign a WHERE i.id = a.id")
    ).rowcount
    conn.execute(text("DROP TABLE _grid_assign"))
    return n
