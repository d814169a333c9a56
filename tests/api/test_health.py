"""The health endpoint answers from a real database."""
from fastapi.testclient import TestClient

from api.app import create_app
from geogrid.settings import Settings


def test_health_reports_postgis(engine, database_url):
    client = TestClient(create_app(Settings(database_url=database_url)))
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.")


def test_settings_refuse_default_secret_outside_development(database_url):
    import pytest

    with pytest.raises(ValueError, match="GEOGRID_SECRET_KEY"):
        Settings(database_url=database_url, environment="production")
    assert Settings(database_url=database_url, environment="production", secret_key="s3cret").environment == "production"


def test_cors_is_off_by_default_and_configurable(engine, database_url):
    pre = {"Origin": "http://dispatch.example", "Access-Control-Request-Method": "GET"}
    closed = TestClient(create_app(Settings(database_url=database_url)))
    assert "access-control-allow-origin" not in closed.options("/collections", headers=pre).headers
    open_ = TestClient(create_app(Settings(database_url=database_url, cors_origins="http://dispatch.example")))
    r = open_.options("/collections", headers={**pre, "Access-Control-Request-Headers": "authorization,if-match"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://dispatch.example"
    assert "if-match" in r.headers["access-control-allow-headers"].lower()
    other = open_.options("/collections", headers={**pre, "Origin": "http://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "http://evil.example"


def test_bad_api_keys_setting_is_refused(database_url):
    import pytest

    with pytest.raises(ValueError, match="key:role"):
        create_app(Settings(database_url=database_url, api_keys="k1:superuser"))


def test_api_sessions_plan_serially_and_keep_the_common_options(engine, database_url):
    from sqlalchemy import text

    app = create_app(Settings(database_url=database_url))
    with app.state.engine.connect() as conn:
        got = [conn.execute(text(f"SHOW {k}")).scalar() for k in ("max_parallel_workers_per_gather", "jit", "TimeZone")]
    assert got == ["0", "off", "UTC"]
    app.state.engine.dispose()
