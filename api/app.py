"""The app factory: the one place that reads settings and wires the routers."""
from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from geogrid.settings import Settings, get_settings
from geogrid.store import make_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (the environment's when None)."""
    settings = settings or get_settings()
    app = FastAPI(title="geogrid", version="0.1.0", docs_url="/api.html", openapi_url="/api")
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)

    @app.get("/health", operation_id="health", tags=["meta"])
    def health() -> dict:
        """Liveness and database reachability."""
        with app.state.engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
        return {"status": "ok", "postgis": postgis}

    return app
