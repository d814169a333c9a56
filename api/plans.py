"""Plans and grid editing: drafts, If-Match edits, split, merge, validate, preview, activate, history.

HTTP only: every handler parses the request and calls :mod:`geogrid.editing` inside one transaction
that commits before the response is sent (so a 200 means the edit is in the database).
"""
from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from api import errors
from api.deps import db, db_write
from api.security import READ, WRITE, Principal, require
from geogrid import editing
from geogrid.errors import StaleVersion

router = APIRouter(prefix="/plans", tags=["plans"])

ReadConn = Annotated[Connection, Depends(db)]
# scope="function": the transaction commits when the handler returns, before the response goes out
WriteConn = Annotated[Connection, Depends(db_write, scope="function")]
Reader = Annotated[Principal, Depends(require(READ))]
Writer = Annotated[Principal, Depends(require(WRITE))]
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Plan id")]
IfMatch = Annotated[str | None, Header(description='The grid\'s ETag from a GET, e.g. "3"')]
GEOJSON = "application/geo+json"
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="Unique plan name")
    from_plan: int | None = Field(None, ge=1, le=2**31 - 1,
                                  description="Plan whose grids are copied (default: the active plan)")
    note: str | None = Field(None, max_length=2000)


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line: dict[str, Any] = Field(description="GeoJSON LineString crossing the grid from side to side")
    codes: list[str] | None = Field(None, max_length=100, description="Codes of the parts, left of the line first")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[str] = Field(min_length=2, max_length=500, description="Grids to merge (rook-adjacent)")
    code: str | None = Field(None, description="Code of the merged grid (default: the first of codes)")
    versions: dict[str, Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        None, description="Expected version of each grid (optional)")


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**31 - 1, description="Version to restore (see the history)")


def _version(if_match: str | None, required: bool = True) -> int | None:
    """The version an If-Match names; 428 when missing and required; 412 for an ETag that is not ours."""
    if if_match is None:
        if required:
            raise errors.PreconditionRequired("this edit needs If-Match with the grid's ETag (GET the grid first)")
        return None
    m = _ETAG.match(if_match)
    if m is None:
        raise StaleVersion(f"If-Match {if_match!r} does not name a version of this grid; GET it for its ETag")
    return int(m.group(1))


def _feature(grid: dict, status: int = 200, location: str | None = None):
    headers = {"ETag": f'"{grid["version"]}"'}
    if location:
        headers["Location"] = location
    return JSONResponse(jsonable_encoder(editing.feature(grid)), status_code=status, media_type=GEOJSON,
                        headers=headers)


def _audit(request: Request, **detail) -> None:
    request.state.audit = {**getattr(request.state, "audit", {}), **detail}


@router.get("", operation_id="list_plans")
def list_plans(p: Reader, conn: ReadConn) -> dict:
    """All plans, newest first."""
    return {"plans": jsonable_encoder(editing.list_plans(conn))}


@router.post("", status_code=201, operation_id="create_plan")
def create_plan(body: PlanIn, request: Request, p: Writer, conn: WriteConn) -> JSONResponse:
    """Create a draft plan holding a copy of the active plan's grids (or of ``from_plan``'s)."""
    _audit(request, name=body.name, from_plan=body.from_plan)
    plan = editing.create_plan(conn, body.name, p.actor, body.from_plan, body.note)
    _audit(request, plan=plan["id"])
    return JSONResponse(jsonable_encoder(plan), status_code=201, headers={"Location": f"/plans/{plan['id']}"})


@router.get("/{plan_id}", operation_id="get_plan")
def get_plan(plan_id: PlanId, p: Reader, conn: ReadConn) -> dict:
    """One plan."""
    return jsonable_encoder(editing.get_plan(conn, plan_id))


@router.get("/{plan_id}/grids/{code}", operation_id="get_plan_grid")
def get_grid(plan_id: PlanId, code: str, p: Reader, conn: ReadConn,
             if_none_match: Annotated[str | None, Header()] = None):
    """One grid as a GeoJSON Feature with its version as ETag."""
    grid = editing.get_grid(conn, plan_id, code)
    if if_none_match is not None and if_none_match.strip() == f'"{grid["version"]}"':
        return Response(status_code=304, headers={"ETag": f'"{grid["version"]}"'})
    return _feature(grid)


@router.put("/{plan_id}/grids/{code}", operation_id="replace_plan_grid")
def replace_grid(plan_id: PlanId, code: str, request: Request, p: Writer, conn: WriteConn,
                 body: Annotated[dict[str, Any], Body(description="GeoJSON Polygon/MultiPolygon or Feature")],
                 if_match: IfMatch = None):
    """Replace a grid's geometry and/or editable properties; needs If-Match (412 when stale)."""
    _audit(request, plan=plan_id, code=code, if_match=if_match)
    version = _version(if_match)
    grid = editing.update_grid(conn, plan_id, code, version, body, p.actor)
    _audit(request, version_from=version, version=grid["version"])
    return _feature(grid)


@router.delete("/{plan_id}/grids/{code}", status_code=204, operation_id="delete_plan_grid")
def delete_grid(plan_id: PlanId, code: str, request: Request, p: Writer, conn: WriteConn,
                if_match: IfMatch = None) -> Response:
    """Delete a grid; needs If-Match."""
    _audit(request, plan=plan_id, code=code, if_match=if_match)
    version = _version(if_match)
    row = editing.delete_grid(conn, plan_id, code, version, p.actor)
    _audit(request, version_from=version, version=row["version"])
    return Response(status_code=204)


@router.post("/{plan_id}/grids", status_code=201, operation_id="create_plan_grid")
def create_grid(plan_id: PlanId, request: Request, p: Writer, conn: WriteConn,
                body: Annotated[dict[str, Any], Body(description="GeoJSON Feature with properties.code")]):
    """Add a grid to a draft plan."""
    _audit(request, plan=plan_id)
    grid = editing.create_grid(conn, plan_id, body, p.actor)
    _audit(request, code=grid["code"], version=grid["version"])
    return _feature(grid, status=201, location=f"/plans/{plan_id}/grids/{grid['code']}")


@router.post("/{plan_id}/grids/{code}/split", status_code=201, operation_id="split_plan_grid")
def split_grid(plan_id: PlanId, code: str, body: SplitIn, request: Request, p: Writer, conn: WriteConn,
               if_match: IfMatch = None):
    """Split a grid along a line into two or more grids (If-Match optional)."""
    _audit(request, plan=plan_id, code=code, if_match=if_match)
    grids = editing.split_grid(conn, plan_id, code, body.line, p.actor, body.codes, _version(if_match, False))
    _audit(request, into={g["code"]: g["version"] for g in grids})
    return JSONResponse(jsonable_encoder({"type": "FeatureCollection",
                                          "features": [editing.feature(g) for g in grids]}),
                        status_code=201, media_type=GEOJSON)


@router.post("/{plan_id}/merge", operation_id="merge_plan_grids")
def merge_grids(plan_id: PlanId, body: MergeIn, request: Request, p: Writer, conn: WriteConn):
    """Merge contiguous grids (sharing edges) into one."""
    _audit(request, plan=plan_id, codes=body.codes, code=body.code, versions=body.versions)
    grid = editing.merge_grids(conn, plan_id, body.codes, p.actor, body.code, body.versions)
    _audit(request, version=grid["version"], into=grid["code"])
    return _feature(grid)


@router.get("/{plan_id}/history", operation_id="plan_history")
def history(plan_id: PlanId, p: Reader, conn: ReadConn,
            code: Annotated[str | None, Query(description="Only this grid's history")] = None,
            geometry: Annotated[bool | None, Query(description="Include geometries (default: only with code)")] = None
            ) -> dict:
    """Every change to the plan's grids (who, when, what), oldest first."""
    return {"plan": plan_id, "history": jsonable_encoder(editing.grid_history(conn, plan_id, code, geometry))}


@router.post("/{plan_id}/grids/{code}/restore", operation_id="restore_plan_grid")
def restore_grid(plan_id: PlanId, code: str, body: RestoreIn, request: Request, p: Writer, conn: WriteConn,
                 if_match: IfMatch = None):
    """Restore the geometry and attributes of an earlier version as a new version (If-Match optional)."""
    _audit(request, plan=plan_id, code=code, restore=body.version, if_match=if_match)
    grid = editing.restore_grid(conn, plan_id, code, body.version, p.actor, _version(if_match, False))
    _audit(request, version=grid["version"])
    return _feature(grid)


@router.get("/{plan_id}/validate", operation_id="validate_plan")
def validate(plan_id: PlanId, p: Reader, conn: ReadConn) -> dict:
    """Overlaps, gaps, invalid, sliver and multi-part grids, each with its location."""
    return editing.validate_plan(conn, plan_id)


@router.get("/{plan_id}/preview", operation_id="preview_plan")
def preview(plan_id: PlanId, p: Reader, conn: ReadConn) -> dict:
    """Tiers, staffing, beats and coverage of the plan next to the active plan's, with a beat repair."""
    from geogrid.plan_preview import preview_plan

    # headcount from the staff table only: every other headcount would be a fresh analysis of both plans
    return jsonable_encoder(preview_plan(conn, plan_id))


@router.post("/{plan_id}/activate", operation_id="activate_plan")
def activate(plan_id: PlanId, request: Request, p: Writer, conn: WriteConn):
    """Make a valid plan the active one (409 with the problems when it is not valid)."""
    _audit(request, plan=plan_id)
    try:
        plan = editing.activate(conn, plan_id)
    except editing.PlanInvalid as e:
        _audit(request, problems=len(e.problems))
        return errors.problem(409, "Conflict", str(e), request.url.path, problems=jsonable_encoder(e.problems))
    return jsonable_encoder(plan)

