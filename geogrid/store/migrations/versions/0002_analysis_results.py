"""analysis runs and their stored results (hotspots, emerging, clusters, forecasts)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _run_fk():
    return sa.Column("run_id", sa.Integer(), sa.ForeignKey("analysis_runs.id", ondelete="CASCADE",
                     name=None), nullable=False)


def _geom(kind):
    return sa.Column("geom", Geometry(geometry_type=kind, srid=4326, spatial_index=False), nullable=False)


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id", ondelete="CASCADE"), nullable=True),
        sa.Column("params", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("data_from", sa.DateTime(timezone=True)),
        sa.Column("data_to", sa.DateTime(timezone=True)),
        sa.Column("summary", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "hotspot_cells", _run_fk(),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("z", sa.Double(), nullable=False),
        sa.Column("p", sa.Double(), nullable=False),
        sa.Column("p_fdr", sa.Double()),
        sa.Column("gi_bin", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("label_zh", sa.String(64), nullable=False),
        _geom("POLYGON"),
        sa.PrimaryKeyConstraint("run_id", "cell"),
    )
    op.create_table(
        "emerging_cells", _run_fk(),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("pattern", sa.String(32), nullable=False),
        sa.Column("hot_or_cold", sa.String(8)),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("label_zh", sa.String(64), nullable=False),
        sa.Column("mk_z", sa.Double()),
        sa.Column("mk_p", sa.Double()),
        sa.Column("count", sa.Integer(), nullable=False),
        _geom("POLYGON"),
        sa.PrimaryKeyConstraint("run_id", "cell"),
    )
    op.create_table(
        "clusters", _run_fk(),
        sa.Column("cluster", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("dominant_category", sa.String(64), nullable=False),
        sa.Column("top_categories", postgresql.JSONB(), nullable=False),
        sa.Column("peak_window", sa.String(32)),
        sa.Column("area_km2", sa.Double(), nullable=False),
        _geom("GEOMETRY"),
        sa.PrimaryKeyConstraint("run_id", "cluster"),
    )
    op.create_table(
        "forecast_cells", _run_fk(),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        _geom("POLYGON"),
        sa.PrimaryKeyConstraint("run_id", "cell", "horizon_days", "method"),
    )
    for t in ("hotspot_cells", "emerging_cells", "clusters", "forecast_cells"):
        op.create_index(f"idx_{t}_geom", t, ["geom"], postgresql_using="gist")


def downgrade() -> None:
    for t in ("forecast_cells", "clusters", "emerging_cells", "hotspot_cells", "analysis_runs"):
        op.drop_table(t)
