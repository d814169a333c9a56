"""Responsibility lookup: which grid, officer, post and deadline for a point (GET) or many (POST)."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from api.errors import status_of
from api.security import READ, Principal, require
from geogrid.errors import InputError
from geogrid.lookup import Options, lookup, lookup_many

router = APIRouter(tags=["lookup"])

# A dispatch batch is a screenful of calls, not a bulk load: bulk assignment belongs to ingest.
MAX_POINTS = 1000
# Lookups in flight at once; the others wait in FIFO order on the event loop. Dozens of threads
# fighting for the GIL and the connection pool served requests out of order (a long p99 tail).
# Measured on 2 cores at 50 clients: 4 slots gave 1.5-1.7x the throughput of unlimited and a shorter tail.
LOOKUP_SLOTS = 4


# documented shape of one batch item; items are checked one by one so a bad one fails alone
POINT_SCHEMA = {"type": "object", "required": ["lon", "lat"], "properties": {
    "id": {"description": "echoed back", "anyOf": [{"type": "string"}, {"type": "integer"}]},
    "lon": {"type": "number"}, "lat": {"type": "number"},
    "priority": {"type": "string", "enum": ["urgent", "normal"]},
    "category": {"type": "string"}}}


class Point(BaseModel):
    lon: float
    lat: float
    crs: str
    input: dict[str, Any]


class PlanRef(BaseModel):
    id: int
    name: str
    at: str | None


class GridRef(BaseModel):
    code: str
    name: str
    kind: str
    district: str | None
    tier: int | None
    tiers_run: int | None


class BeatRef(BaseModel):
    beat: int
    officers: int
    n_grids: int
    post_code: str | None
    run: int


class StaffRef(BaseModel):
    code: str
    name: str
    role: str
    post_code: str | None
    grid_code: str | None


class Responsible(BaseModel):
    via: str | None  # "grid": staff assigned to the grid; "beat": officers of the grid's beat; None: nobody
    staff: list[StaffRef]


class NearestPost(BaseModel):
    code: str
    name: str
    kind: str
    lon: float
    lat: float
    distance_m: float
    travel_minutes: float
    within_deadline: bool


class TravelModel(BaseModel):
    model: str
    distance: str
    circuity: float
    kmh: float
    urban_kmh: float
    rural_kmh: float


class ResponseDeadline(BaseModel):
    priority: str
    priority_from: str
    deadline_minutes: float
    due_by: str | None  # at (or now) + the deadline


class LookupAnswer(BaseModel):
    """Who is responsible for a point."""

    point: Point
    plan: PlanRef
    grid: GridRef
    beat: BeatRef | None
    responsible: Responsible
    nearest_post: NearestPost | None
    travel_model: TravelModel
    response: ResponseDeadline


class BatchAnswer(LookupAnswer):
    """One answered point of a batch: its ``id`` (when given) and status 200."""

    id: Any = None
    status: int = 200


class LookupFailure(BaseModel):
    """One point of a batch that could not be answered, with its own problem (RFC 9457)."""

    id: Any = None
    status: int
    problem: dict[str, Any]


CrsQ = Annotated[str | None, Query(description="System of lon/lat: gcj02, bd09, wgs84, cgcs2000 or EPSG:n "
                                               "(default WGS-84)")]
AtQ = Annotated[str | None, Query(description="ISO 8601 date or datetime: answer from the plan in force then "
                                              "(naive values in the server's timezone)")]
PriorityQ = Annotated[str | None, Query(description="urgent (15 min) or normal (2 h); default from category")]
CategoryQ = Annotated[str | None, Query(description="Incident category code or zh/en label; sets the priority "
                                                    "when priority is not given")]


async def _in_thread(request: Request, work: Callable[[Connection], Any]) -> Any:
    """``work(conn)`` on a pooled read connection, in the thread pool.

    The handlers are ``async`` and hop to a thread once for all the blocking work (parsing the CRS
    with pyproj, SQL, building the answer) instead of once per sync dependency (an ``api.deps.db``
    connection would cost two more hops); answers go out as ready JSON so FastAPI does not validate
    them again (the models document them; tests check them).
    """

    def run() -> Any:
        with request.app.state.engine.connect() as conn:
            # one statement needs no transaction: autocommit saves the BEGIN and ROLLBACK round trips
            return work(conn.execution_options(isolation_level="AUTOCOMMIT"))

    loop = asyncio.get_running_loop()
    slots = getattr(request.app.state, "lookup_slots", None)
    if slots is None or slots[0] is not loop:  # a semaphore belongs to one event loop (test clients make new ones)
        slots = request.app.state.lookup_slots = (loop, asyncio.Semaphore(LOOKUP_SLOTS))
    async with slots[1]:
        return await run_in_threadpool(run)


@router.get("/lookup", operation_id="lookup", response_model=LookupAnswer)
async def get_lookup(request: Request, _: Annotated[Principal, Depends(require(READ))],
                     lon: Annotated[float, Query(description="Longitude (or x in crs)")],
                     lat: Annotated[float, Query(description="Latitude (or y in crs)")],
                     crs: CrsQ = None, at: AtQ = None, priority: PriorityQ = None,
                     category: CategoryQ = None) -> JSONResponse:
    """Grid, tier, beat, responsible staff, nearest post with travel time, and response deadline of a point."""
    tz = request.app.state.settings.timezone
    return JSONResponse(await _in_thread(request, lambda conn: lookup(
        conn, lon, lat, Options.parse(crs, at, priority, category, tz=tz))))


@router.post("/lookup", operation_id="lookupMany", response_model=list[BatchAnswer | LookupFailure])
async def post_lookup(request: Request, _: Annotated[Principal, Depends(require(READ))],
                      points: Annotated[list[Any], Body(description=f"Up to {MAX_POINTS} points; a bad point "
                                                        "gets its own problem, not a failed batch",
                                                        json_schema_extra={"items": POINT_SCHEMA})],
                      crs: CrsQ = None, at: AtQ = None, priority: PriorityQ = None,
                      category: CategoryQ = None) -> JSONResponse:
    """The lookup for many points in one statement; answers in input order, one problem per failed point."""
    if len(points) > MAX_POINTS:
        raise InputError(f"body: {len(points)} points; at most {MAX_POINTS} per request")
    tz = request.app.state.settings.timezone
    answers = await _in_thread(request, lambda conn: lookup_many(
        conn, points, Options.parse(crs, at, priority, category, tz=tz)))
    out = []
    for k, item in enumerate(answers):
        if isinstance(item, dict):
            out.append({**item, "status": 200})
            continue
        status, title = status_of(item)
        pid = points[k].get("id") if isinstance(points[k], dict) else None
        out.append({"id": pid, "status": status,
                    "problem": {"type": "about:blank", "title": title, "status": status,
                                "detail": f"point {k}: {item}", "instance": f"{request.url.path}#{k}"}})
    return JSONResponse(out)
