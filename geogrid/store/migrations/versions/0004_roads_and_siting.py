"""roads (a routable network) and siting proposals

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

``roads`` holds LineStrings (stored as MultiLineString) with a driving speed; a load replaces the rows
of its ``source``, so re-loading a file is idempotent. ``siting_proposals`` holds, per siting run, the
existing posts and the new sites each model (MCLP, LSCP, capacitated MCLP) proposes, in the order
they were added, with the weight each adds. Both bump ``layer_versions`` like the tables of 0003.
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LAYER_TABLES = {"roads": "roads", "siting_proposals": "runs"}
MODELS = ("mclp", "lscp", "capacitated_mclp")


def upgrade() -> None:
    op.create_table(
        "roads",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("kind", sa.String(32)),
        sa.Column("speed_kmh", sa.Double(), nullable=False),
        sa.Column("oneway", sa.Boolean()),
        sa.Column("geom", Geometry(geometry_type="MULTILINESTRING", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint("speed_kmh > 0 AND speed_kmh <= 200", name=op.f("ck_roads_speed")),
    )
    op.create_index("ix_roads_source", "roads", ["source"])
    op.create_index("idx_roads_geom", "roads", ["geom"], postgresql_using="gist")
    op.create_table(
        "siting_proposals",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id", ondelete="CASCADE")),
        sa.Column("model", sa.String(24), nullable=False),
        sa.Column("minutes", sa.Double(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("grid_code", sa.String(64)),
        sa.Column("existing", sa.Boolean(), nullable=False),
        sa.Column("gain", sa.Double()),
        sa.Column("covered_share", sa.Double()),
        sa.Column("workload", sa.Double()),
        sa.Column("geom", Geometry(geometry_type="POINT", srid=4326, spatial_index=False), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "model", "site"),
        sa.CheckConstraint("model IN ('mclp','lscp','capacitated_mclp')", name=op.f("ck_siting_proposals_model")),
    )
    op.create_index("idx_siting_proposals_geom", "siting_proposals", ["geom"], postgresql_using="gist")
    op.execute("INSERT INTO layer_versions (layer) VALUES ('roads') ON CONFLICT DO NOTHING")
    for table, layer in LAYER_TABLES.items():
        op.execute(f"CREATE TRIGGER bump_layer_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION geogrid_bump_layer('{layer}')")


def downgrade() -> None:
    for table in LAYER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS bump_layer_{table} ON {table}")
    op.drop_table("siting_proposals")
    op.drop_table("roads")
    op.execute("DELETE FROM layer_versions WHERE layer = 'roads'")
