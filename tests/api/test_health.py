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
