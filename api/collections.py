"""The whitelist of collections (map layers) the API serves, and the SQL each is drawn from.

Table, column and id expressions below are the *only* identifiers that reach SQL; request strings
are matched against this registry and never spliced into a query. Result layers show the latest
finished run of their kind unless ``run=`` names another; grid layers show the active plan unless
``plan=`` names another.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from api.security import RAW_INCIDENTS, READ
from geogrid.errors import InputError, NotFound


@dataclass(frozen=True)
class Collection:
    """One collection: where its rows live and which columns are public."""

    id: str
    title: str
    title_zh: str
    table: str
    geometry_type: str
    properties: tuple[str, ...]
    id_expr: str = "id"  # SQL expression of the feature id (text)
    # SQL expression pages are ordered by; None: the id as bytes (collation "C"). A numeric key lets the
    # primary-key index serve a page in key order instead of sorting every matched row by its text id
    order_expr: str | None = None
    scope: str = "table"  # "plan" (grids of a plan), "run" (rows of one analysis run), "table"
    run_kind: str | None = None
    datetime_column: str | None = None
    roles: frozenset[str] = field(default=READ)
    description: str = ""
    # SQL condition a row must meet besides the scope (a fixed string from this file, never user input)
    where: str | None = None


def _cell_id(col: str = "cell") -> str:
    # H3 ids exceed 2^53: served as the usual 15-hex-digit string, never as a JSON number
    return f"lower(to_hex({col}))"


COLLECTIONS: dict[str, Collection] = {c.id: c for c in [
    Collection("grids", "Grids", "网格", "grids", "MultiPolygon",
               ("code", "name", "kind", "population", "key_areas", "post_code", "district", "version", "updated_at"),
               id_expr="code", scope="plan", datetime_column="updated_at",
               description="Grid boundaries of a plan (the active plan unless plan= is given)."),
    Collection("posts", "Stations and posts", "派出所与警务室", "posts", "Point",
               ("code", "name", "kind", "station_code"), id_expr="code"),
    Collection("tiers", "Grid complexity tiers", "网格等级", "grid_tiers", "MultiPolygon",
               ("code", "tier", "score", "drivers", "drivers_zh"), id_expr="code", scope="run", run_kind="tiers"),
    Collection("staffing", "Staffing and allocation", "警力配置", "grid_staffing", "MultiPolygon",
               ("code", "tier", "kind", "officers_required", "auxiliaries_required", "officers", "auxiliaries",
                "workload_hours", "reason", "reason_zh"), id_expr="code", scope="run", run_kind="staffing"),
    Collection("beats", "Beats", "一警多格", "beats", "MultiPolygon",
               ("beat", "officers", "n_grids", "workload", "per_officer", "deviation", "polsby_popper",
                "post_code", "grid_codes"), id_expr="beat::text", scope="run", run_kind="beats"),
    Collection("coverage", "Response-time coverage by grid", "网格响应覆盖", "coverage_grids", "MultiPolygon",
               ("code", "mean_minutes", "max_minutes", "nearest_post", "shares"), id_expr="code", scope="run",
               run_kind="coverage"),
    Collection("coverage-cells", "Travel time to H3 cells", "单元到达时间", "coverage_cells", "Polygon",
               ("minutes", "nearest_post"), id_expr=_cell_id(), scope="run", run_kind="coverage"),
    Collection("siting", "Siting proposals", "警务室选址方案", "siting_proposals", "Point",
               ("model", "minutes", "rank", "site", "grid_code", "existing", "gain", "covered_share", "workload"),
               id_expr="model || '-' || site", scope="run", run_kind="siting",
               description="Existing posts (rank 0) and the new posts each siting model proposes, in the order "
                           "added, with the incidents each adds (gain) and the cumulative covered share."),
    Collection("roads", "Road network", "道路网络", "roads", "MultiLineString",
               ("source", "name", "kind", "speed_kmh", "oneway"), id_expr="id::text", order_expr="id",
               description="Roads loaded for network travel times (a background layer of the web map)."),
    Collection("hotspots", "Hot and cold spots (Gi*)", "热点与冷点", "hotspot_cells", "Polygon",
               ("count", "z", "p", "p_fdr", "gi_bin", "label", "label_zh"), id_expr=_cell_id(), scope="run",
               run_kind="hotspots"),
    Collection("clusters", "Density clusters", "密度聚类", "clusters", "MultiPolygon",
               ("cluster", "count", "dominant_category", "top_categories", "peak_window", "area_km2"),
               id_expr="cluster::text", scope="run", run_kind="clusters"),
    Collection("emerging", "Emerging hot spots", "新兴热点", "emerging_cells", "Polygon",
               ("pattern", "hot_or_cold", "label", "label_zh", "mk_z", "mk_p", "count"), id_expr=_cell_id(),
               scope="run", run_kind="emerging"),
    Collection("forecasts", "Forecast risk by H3 cell", "风险预测（单元）", "forecast_cells", "Polygon",
               ("horizon_days", "method", "score", "rank", "flagged"),
               id_expr=f"{_cell_id()} || '-' || horizon_days || '-' || method", scope="run", run_kind="forecast"),
    Collection("forecast-grids", "Forecast risk by grid", "风险预测（网格）", "forecast_grids", "MultiPolygon",
               ("code", "horizon_days", "method", "score", "rank", "flagged"),
               id_expr="code || '-' || horizon_days || '-' || method", scope="run", run_kind="forecast"),
    Collection("incidents", "Incidents", "警情", "incidents", "Point",
               ("source", "external_id", "category", "priority", "origin", "occurred_at", "grid_id"),
               id_expr="id::text", order_expr="id", datetime_column="occurred_at", roles=RAW_INCIDENTS,
               description="Raw incidents for commanders and admins; other roles get counts per H3 cell "
                           "with counts below 5 suppressed."),
]}


def get_collection(collection_id: str) -> Collection:
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(f"no collection {collection_id!r}; see /collections") from None


def resolve_plan(conn: Connection, plan: int | None) -> int:
    """The id of plan ``plan`` (checked), or of the active plan."""
    if plan is not None:
        if conn.execute(text("SELECT 1 FROM plans WHERE id = :p"), {"p": plan}).first() is None:
            raise NotFound(f"no plan {plan}")
        return plan
    pid = conn.execute(text("SELECT id FROM plans WHERE status = 'active'")).scalar()
    if pid is None:
        raise NotFound("no active plan; load grids and activate a plan first")
    return int(pid)


def resolve_run(conn: Connection, kind: str, run: int | None) -> int | None:
    """The id of run ``run`` (checked to be of ``kind``), or of the latest finished run; None when there is none."""
    if run is not None:
        ok = conn.execute(text("SELECT 1 FROM analysis_runs WHERE id = :r AND kind = :k"), {"r": run, "k": kind}).first()
        if ok is None:
            raise NotFound(f"no {kind} run {run}")
        return run
    rid = conn.execute(text("SELECT max(id) FROM analysis_runs WHERE kind = :k AND finished_at IS NOT NULL"),
                       {"k": kind}).scalar()
    return None if rid is None else int(rid)


def scope_filter(conn: Connection, coll: Collection, plan: int | None = None,
                 run: int | None = None) -> tuple[str, dict]:
    """The WHERE condition (with binds) selecting the rows of ``coll`` to serve."""
    conds, binds = [], {}
    if coll.scope == "plan":
        conds.append("plan_id = :_plan")
        binds["_plan"] = resolve_plan(conn, plan)
    elif coll.scope == "run":
        rid = resolve_run(conn, coll.run_kind, run)
        conds.append("run_id = :_run")
        binds["_run"] = -1 if rid is None else rid  # no run yet: an empty layer, not an error
    elif plan is not None or run is not None:
        raise InputError(f"collection {coll.id!r} takes neither plan= nor run=")
    if coll.where:
        conds.append(coll.where)
    return (" AND ".join(conds) or "TRUE"), binds


def inline_scope(conn: Connection, coll: Collection, plan: int | None = None,
                 run: int | None = None) -> tuple[str, dict]:
    """Like :func:`scope_filter`, but the default plan/run is a sub-select inside the caller's statement
    instead of a round trip of its own (hot paths: tiles). No active plan or run: an empty answer."""
    if coll.scope == "plan" and plan is None:
        cond, binds = "plan_id = (SELECT id FROM plans WHERE status = 'active')", {}
    elif coll.scope == "run" and run is None:
        cond = ("run_id = (SELECT max(id) FROM analysis_runs WHERE kind = :_run_kind "
                "AND finished_at IS NOT NULL)")
        binds = {"_run_kind": coll.run_kind}
    else:
        return scope_filter(conn, coll, plan, run)
    if coll.where:
        cond = f"{cond} AND {coll.where}"
    return cond, binds


def layer_of(coll: Collection) -> str:
    """The ``layer_versions`` row whose version changes when ``coll``'s data does."""
    return {"plan": "grids", "run": "runs"}.get(coll.scope, coll.table)


def layer_version(conn: Connection, coll: Collection) -> int:
    return int(conn.execute(text("SELECT version FROM layer_versions WHERE layer = :l"),
                            {"l": layer_of(coll)}).scalar() or 0)
