"""A live geogrid server on a small committed city, in its own database, for real-client tests.

The city lives in ``GEOGRID_API_DATABASE_URL`` (``make test`` provisions ``geogrid_apitest``) so its
committed rows never meet the rolled-back tests of the main test database.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
KEYS = {role: f"{role}-key-0123456789" for role in ("viewer", "commander", "planner", "integrator", "admin")}
SEED = 11


@pytest.fixture(scope="session")
def api_database_url() -> str:
    url = os.environ.get("GEOGRID_API_DATABASE_URL")
    if not url:
        pytest.skip("GEOGRID_API_DATABASE_URL is not set (make test provisions it)")
    return url


@pytest.fixture(scope="session")
def api_city(api_database_url, tmp_path_factory):
    """Migrate, wipe and load the small city (with its analysis runs); returns the engine."""
    from geogrid.demo import load_city_files, write_city
    from geogrid.generate import generate_city
    from geogrid.store import make_engine
    from geogrid.store.migrate import init_db

    init_db(api_database_url)
    engine = make_engine(api_database_url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN "
            "('spatial_ref_sys', 'alembic_version', 'layer_versions', 'categories', 'store_meta')"))]
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    city = generate_city(seed=SEED, n_incidents=20_000, days=120, n_grids=120, n_posts=8, n_officers=60,
                         n_auxiliaries=120)
    files = write_city(tmp_path_factory.mktemp("apicity"), city=city)
    load_city_files(engine, files, roads=True)  # roads: the web map's background, network travel times
    _run_analyses(engine)
    yield engine
    engine.dispose()


def _run_analyses(engine) -> None:
    from geogrid.runs import Window, run_clusters, run_emerging, run_forecast, run_hotspots

    window = Window()
    for fn in (lambda c: run_hotspots(c, window), lambda c: run_emerging(c, window),
               lambda c: run_clusters(c, window), lambda c: run_forecast(c, window, methods=("kde",))):
        with engine.begin() as conn:
            fn(conn)
    from geogrid.planning_runs import ALL_KINDS, run_planning

    with engine.begin() as conn:
        run_planning(conn, kinds=ALL_KINDS)  # tiers, staffing, beats, coverage and siting


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(api_city, api_database_url):
    """Base URL of a uvicorn process serving the app on the API city (keys: ``KEYS``)."""
    port = _free_port()
    env = dict(os.environ, GEOGRID_DATABASE_URL=api_database_url,
               GEOGRID_API_KEYS=",".join(f"{k}:{r}" for r, k in KEYS.items()),
               GEOGRID_ENVIRONMENT="development", GEOGRID_MAX_BODY_BYTES="1000000")
    env.pop("GEOGRID_ANONYMOUS_ROLE", None)
    proc = subprocess.Popen([sys.executable, "-m", "geogrid.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("geogrid serve did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(10)


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


@pytest.fixture(scope="session")
def auth():
    """``auth(role)`` → headers of a request made with that role's key (tests cannot import conftest)."""
    return _auth


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    """role → API key known to the server."""
    return dict(KEYS)


@pytest.fixture(scope="session")
def client(server):
    """An httpx client on the live server with the admin key (tests pass other headers to act as other roles)."""
    with httpx.Client(base_url=server, headers=_auth("admin"), timeout=60) as c:
        yield c
