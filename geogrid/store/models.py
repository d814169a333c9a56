"""SQLAlchemy 2 models of geogrid's tables. Alembic migrations own the schema; these mirror it."""
from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Plan(Base):
    """A versioned set of grid boundaries. One active at a time; ``valid_from``/``valid_to`` say when it was in force."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint("status IN ('draft','active','retired')", name="status"),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from", name="validity"),
        Index("uq_plans_one_active", "status", unique=True, postgresql_where=text("status = 'active'")),
    )


class Post(Base):
    """A police station (派出所) or post (警务室): where officers respond from."""

    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), server_default="post")
    station_code: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100), server_default="manual")
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    __table_args__ = (CheckConstraint("kind IN ('station','post')", name="kind"),)


class Grid(Base):
    """A grid (网格) of one plan: the unit of responsibility."""

    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), server_default="")
    kind: Mapped[str] = mapped_column(String(8), server_default="urban")
    population: Mapped[int | None] = mapped_column(Integer)
    key_areas: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    post_code: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(100))
    attrs: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    __table_args__ = (
        UniqueConstraint("plan_id", "code"),
        CheckConstraint("kind IN ('urban','rural')", name="kind"),
        CheckConstraint("population IS NULL OR population >= 0", name="population"),
    )


class Staff(Base):
    """An officer (民警), auxiliary (辅警) or grid worker (网格员)."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), server_default="")
    role: Mapped[str] = mapped_column(String(16))
    post_code: Mapped[str | None] = mapped_column(String(64))
    grid_code: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (CheckConstraint("role IN ('officer','auxiliary','grid_worker')", name="role"),)


class Incident(Base):
    """An incident (警情): a point in time and space with a canonical category."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64), index=True)
    priority: Mapped[str] = mapped_column(String(8), server_default="normal")
    origin: Mapped[str] = mapped_column(String(12), server_default="reported")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    h3: Mapped[int] = mapped_column(BigInteger)  # no index: nothing looks rows up by cell (migration 0005)
    # grid of the *active* plan containing the point; kept right by store.plans.activate_plan
    # no FK: derived, bulk-loaded; no index: nothing queries by it in SQL (migration 0005)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("priority IN ('urgent','normal')", name="priority"),
        CheckConstraint("origin IN ('reported','discovered')", name="origin"),
    )


class Category(Base):
    """Canonical incident categories with bilingual labels (served to maps and the API)."""

    __tablename__ = "categories"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    zh: Mapped[str] = mapped_column(String(100))
    en: Mapped[str] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(8), server_default="normal")
    severity: Mapped[float] = mapped_column(server_default="1")


class Meta(Base):
    """Store-wide facts, e.g. the H3 resolution of ``incidents.h3``."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class IngestRun(Base):
    """One load of one file: what came in, what was kept, what was rejected."""

    __tablename__ = "ingest_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text)
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_loaded: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AnalysisRun(Base):
    """One analysis run: what was computed, with which parameters, over which data window."""

    __tablename__ = "analysis_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    data_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HotspotCell(Base):
    """Gi* result of one cell in one run."""

    __tablename__ = "hotspot_cells"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    z: Mapped[float]
    p: Mapped[float]
    p_fdr: Mapped[float | None]
    gi_bin: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(64))
    label_zh: Mapped[str] = mapped_column(String(64))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=True), nullable=False)


class EmergingCell(Base):
    """Emerging hot spot pattern of one cell in one run."""

    __tablename__ = "emerging_cells"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(32))
    hot_or_cold: Mapped[str | None] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(64))
    label_zh: Mapped[str] = mapped_column(String(64))
    mk_z: Mapped[float | None]
    mk_p: Mapped[float | None]
    count: Mapped[int] = mapped_column(Integer)
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=True), nullable=False)


class Cluster(Base):
    """A density cluster of incidents in one run."""

    __tablename__ = "clusters"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    cluster: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    dominant_category: Mapped[str] = mapped_column(String(64))
    top_categories: Mapped[dict] = mapped_column(JSONB)
    peak_window: Mapped[str | None] = mapped_column(String(32))
    area_km2: Mapped[float]
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)


class ForecastCell(Base):
    """Next-period risk of one cell, for one horizon and method, in one run."""

    __tablename__ = "forecast_cells"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    horizon_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    method: Mapped[str] = mapped_column(String(32), primary_key=True)
    score: Mapped[float]
    rank: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[bool]
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=True), nullable=False)


class GridTier(Base):
    """Complexity tier (网格等级) of one grid in one run, with its three main drivers in words."""

    __tablename__ = "grid_tiers"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[int] = mapped_column(Integer)
    score: Mapped[float]
    drivers: Mapped[str] = mapped_column(Text)
    drivers_zh: Mapped[str] = mapped_column(Text)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)


class GridStaffing(Base):
    """Staff required by and allocated to one grid in one run, and why."""

    __tablename__ = "grid_staffing"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(8))
    officers_required: Mapped[int] = mapped_column(Integer)
    auxiliaries_required: Mapped[int] = mapped_column(Integer)
    officers: Mapped[int | None] = mapped_column(Integer)
    auxiliaries: Mapped[int | None] = mapped_column(Integer)
    workload_hours: Mapped[float | None]
    reason: Mapped[str] = mapped_column(Text)
    reason_zh: Mapped[str] = mapped_column(Text)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)


class Beat(Base):
    """A beat (一警多格): contiguous grids covered by ``officers`` officers, in one run."""

    __tablename__ = "beats"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    beat: Mapped[int] = mapped_column(Integer, primary_key=True)
    officers: Mapped[int] = mapped_column(Integer)
    n_grids: Mapped[int] = mapped_column(Integer)
    workload: Mapped[float]
    per_officer: Mapped[float]
    deviation: Mapped[float]
    polsby_popper: Mapped[float | None]
    post_code: Mapped[str | None] = mapped_column(String(64))
    grid_codes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)


class CoverageGrid(Base):
    """Travel time from the quickest post to one grid, and the shares reached within each standard."""

    __tablename__ = "coverage_grids"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    mean_minutes: Mapped[float | None]
    max_minutes: Mapped[float | None]
    nearest_post: Mapped[str | None] = mapped_column(String(64))
    shares: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)


class CoverageCell(Base):
    """Travel time from the quickest post to one H3 cell."""

    __tablename__ = "coverage_cells"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    minutes: Mapped[float]
    nearest_post: Mapped[str | None] = mapped_column(String(64))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=True), nullable=False)


class ForecastGrid(Base):
    """Next-period risk of one grid (aggregated from its cells), per horizon and method."""

    __tablename__ = "forecast_grids"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    horizon_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    method: Mapped[str] = mapped_column(String(32), primary_key=True)
    score: Mapped[float]
    rank: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[bool]
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)


class GridHistory(Base):
    """Every version of every grid of every plan: who changed it, when and how (restorable)."""

    __tablename__ = "grid_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    grid_id: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)
    attrs: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)


class AuditEntry(Base):
    """One write through the API: who (key id and role), what (method, path, detail) and the outcome."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class LayerVersion(Base):
    """A counter per map layer, bumped by triggers on every write under it (tile ETags)."""

    __tablename__ = "layer_versions"
    layer: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="1")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Road(Base):
    """A road of a routable network (one loaded file is one ``source``; re-loading replaces it)."""

    __tablename__ = "roads"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(32))
    speed_kmh: Mapped[float]
    oneway: Mapped[bool | None] = mapped_column(Boolean)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=True), nullable=False)
    __table_args__ = (CheckConstraint("speed_kmh > 0 AND speed_kmh <= 200", name="speed"),)


class SitingProposal(Base):
    """A site of one siting model in one run: an existing post kept open, or a selected site in the order added."""

    __tablename__ = "siting_proposals"
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(24), primary_key=True)
    minutes: Mapped[float]
    rank: Mapped[int] = mapped_column(Integer)  # 1, 2, … in the order added; 0: a post kept open as given
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    grid_code: Mapped[str | None] = mapped_column(String(64))
    existing: Mapped[bool]
    gain: Mapped[float | None]  # demand weight this site adds (None for existing posts)
    covered_share: Mapped[float | None]  # cumulative share covered once this site is open
    workload: Mapped[float | None]  # capacitated model: workload the site serves
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    __table_args__ = (CheckConstraint("model IN ('mclp','lscp','capacitated_mclp')", name="model"),)
