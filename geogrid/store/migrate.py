"""Database set-up: the PostGIS extension (needs a superuser) and Alembic migrations."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from geogrid.store.engine import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(url: str) -> None:
    """Create the PostGIS extension when missing, then ``alembic upgrade head``."""
    engine = make_engine(url)
    with engine.begin() as conn:
        have = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar()
        if not have:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    command.upgrade(alembic_config(url), "head")
