"""planning results (tiers, staffing, beats, coverage, grid forecasts), grid history, audit log, layer versions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

``layer_versions`` is bumped by statement-level triggers on every table a map layer is drawn from,
so a tile's ETag (layer version + tile address) changes on the very next request after an edit,
without a restart and without hashing the tile.
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# tables a layer is drawn from → the layer name bumped when they change
LAYER_TABLES = {
    "grids": "grids", "plans": "grids", "posts": "posts", "staff": "staff", "incidents": "incidents",
    "analysis_runs": "runs", "grid_tiers": "runs", "grid_staffing": "runs", "beats": "runs",
    "coverage_grids": "runs", "coverage_cells": "runs", "forecast_grids": "runs",
    "hotspot_cells": "runs", "emerging_cells": "runs", "clusters": "runs", "forecast_cells": "runs",
}


def _run_fk():
    return sa.Column("run_id", sa.Integer(), sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), nullable=False)


def _geom(kind):
    return sa.Column("geom", Geometry(geometry_type=kind, srid=4326, spatial_index=False), nullable=False)


def _grid_cols():
    return [sa.Column("grid_id", sa.Integer()), sa.Column("code", sa.String(64), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "grid_tiers", _run_fk(), *_grid_cols(),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("drivers", sa.Text(), nullable=False),
        sa.Column("drivers_zh", sa.Text(), nullable=False),
        _geom("MULTIPOLYGON"),
        sa.PrimaryKeyConstraint("run_id", "code"),
    )
    op.create_table(
        "grid_staffing", _run_fk(), *_grid_cols(),
        sa.Column("tier", sa.Integer()),
        sa.Column("kind", sa.String(8)),
        sa.Column("officers_required", sa.Integer(), nullable=False),
        sa.Column("auxiliaries_required", sa.Integer(), nullable=False),
        sa.Column("officers", sa.Integer()),
        sa.Column("auxiliaries", sa.Integer()),
        sa.Column("workload_hours", sa.Double()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reason_zh", sa.Text(), nullable=False),
        _geom("MULTIPOLYGON"),
        sa.PrimaryKeyConstraint("run_id", "code"),
    )
    op.create_table(
        "beats", _run_fk(),
        sa.Column("beat", sa.Integer(), nullable=False),
        sa.Column("officers", sa.Integer(), nullable=False),
        sa.Column("n_grids", sa.Integer(), nullable=False),
        sa.Column("workload", sa.Double(), nullable=False),
        sa.Column("per_officer", sa.Double(), nullable=False),
        sa.Column("deviation", sa.Double(), nullable=False),
        sa.Column("polsby_popper", sa.Double()),
        sa.Column("post_code", sa.String(64)),
        sa.Column("grid_codes", postgresql.ARRAY(sa.String(64)), nullable=False),
        _geom("GEOMETRY"),
        sa.PrimaryKeyConstraint("run_id", "beat"),
    )
    op.create_table(
        "coverage_grids", _run_fk(), *_grid_cols(),
        sa.Column("mean_minutes", sa.Double()),
        sa.Column("max_minutes", sa.Double()),
        sa.Column("nearest_post", sa.String(64)),
        sa.Column("shares", postgresql.JSONB(), nullable=False, server_default="{}"),
        _geom("MULTIPOLYGON"),
        sa.PrimaryKeyConstraint("run_id", "code"),
    )
    op.create_table(
        "coverage_cells", _run_fk(),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("minutes", sa.Double(), nullable=False),
        sa.Column("nearest_post", sa.String(64)),
        _geom("POLYGON"),
        sa.PrimaryKeyConstraint("run_id", "cell"),
    )
    op.create_table(
        "forecast_grids", _run_fk(), *_grid_cols(),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        _geom("MULTIPOLYGON"),
        sa.PrimaryKeyConstraint("run_id", "code", "horizon_days", "method"),
    )
    for t in ("grid_tiers", "grid_staffing", "beats", "coverage_grids", "coverage_cells", "forecast_grids"):
        op.create_index(f"idx_{t}_geom", t, ["geom"], postgresql_using="gist")

    op.create_table(
        "grid_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_id", sa.Integer()),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("attrs", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("geom", Geometry(geometry_type="MULTIPOLYGON", srid=4326, spatial_index=False)),
        sa.CheckConstraint("action IN ('create','update','split','merge','delete','restore')",
                           name="ck_grid_history_action"),
    )
    op.create_index("ix_grid_history_plan_code", "grid_history", ["plan_id", "code", "version"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=False, server_default="{}"),
    )
    op.create_table(
        "layer_versions",
        sa.Column("layer", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    layers = sorted(set(LAYER_TABLES.values()))
    op.execute("INSERT INTO layer_versions (layer) VALUES " + ",".join(f"('{x}')" for x in layers))
    op.execute("""
        CREATE FUNCTION geogrid_bump_layer() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE layer_versions SET version = version + 1, changed_at = clock_timestamp()
           WHERE layer = TG_ARGV[0];
          RETURN NULL;
        END $$""")
    for table, layer in LAYER_TABLES.items():
        op.execute(f"CREATE TRIGGER bump_layer_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION geogrid_bump_layer('{layer}')")


def downgrade() -> None:
    for table in LAYER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS bump_layer_{table} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS geogrid_bump_layer()")
    for t in ("layer_versions", "audit_log", "grid_history", "forecast_grids", "coverage_cells",
              "coverage_grids", "beats", "grid_staffing", "grid_tiers"):
        op.drop_table(t)
