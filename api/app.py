"""The app factory: the one place that reads settings and wires the routers."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

from api import errors, features, lookup, plans, tiles, webmap
from api.middleware import LimitsAndAudit
from geogrid.settings import Settings, get_settings
from geogrid.store import make_engine


# No parallel workers for the API's queries: a server answers many requests at once, and parallel
# plans made ST_AsMVT of a dense points tile slower even alone (partial tiles merged at the end:
# 46 -> 18 ms for a 6,000-point z14 tile, bench/tiles.py), while small queries only paid the start-up.
API_PG_OPTIONS = "-c max_parallel_workers_per_gather=0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (the environment's when None)."""
    settings = settings or get_settings()
    app = FastAPI(title="geogrid", version="0.1.0", docs_url="/api.html", openapi_url="/api",
                  description="Police-grid map API: OGC API – Features, vector tiles, responsibility "
                              "lookup and plan editing. Send `Authorization: Bearer <key>`.")
    app.state.settings = settings
    app.state.api_keys = settings.api_key_roles()
    app.state.engine = make_engine(settings.database_url, API_PG_OPTIONS, pool_size=10, max_overflow=20)
    errors.install(app)

    app.add_middleware(LimitsAndAudit, max_body_bytes=settings.max_body_bytes)

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=[o.strip() for o in settings.cors_origins.split(",")],
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "If-Match", "Content-Type"],
                           expose_headers=["ETag", "Location"])

    @app.get("/health", operation_id="health", tags=["meta"])
    def health() -> dict:
        """Liveness and database reachability (no key needed)."""
        with app.state.engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
        return {"status": "ok", "postgis": postgis}

    for module in (features, tiles, lookup, plans, webmap):
        app.include_router(module.router)
    return app
