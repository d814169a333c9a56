"""One settings object, read only at the edges (CLI, app factory, tests) — never at import time."""
from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg://geogrid:geogrid@127.0.0.1:5432/geogrid"
DEV_SECRET = "dev-only-change-me"
ROLES = ("viewer", "commander", "planner", "integrator", "admin")


class Settings(BaseSettings):
    """geogrid settings; environment variables are prefixed ``GEOGRID_`` (``DATABASE_URL`` also works)."""

    model_config = SettingsConfigDict(env_prefix="GEOGRID_", env_file=None, extra="ignore")

    environment: str = "development"
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("GEOGRID_DATABASE_URL", "DATABASE_URL"),
    )
    h3_resolution: int = Field(9, ge=7, le=12)
    timezone: str = "Asia/Shanghai"
    secret_key: str = DEV_SECRET
    api_keys: str = ""  # "key:role,key2:role2"
    anonymous_role: str | None = None
    cors_origins: str = ""
    max_items: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(5_000_000, ge=1024)
    tile_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)  # in-process LRU of encoded tiles; 0 turns it off

    @field_validator("database_url")
    @classmethod
    def _driver(cls, v: str) -> str:
        # psycopg 3 is the driver; accept the plain libpq forms people paste.
        for prefix in ("postgresql://", "postgres://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix):]
        return v

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> "Settings":
        if self.environment != "development" and self.secret_key == DEV_SECRET:
            raise ValueError(
                "GEOGRID_SECRET_KEY still has its development default; set a real secret "
                "(or GEOGRID_ENVIRONMENT=development on a developer machine)"
            )
        if self.anonymous_role is not None and self.anonymous_role not in ROLES:
            raise ValueError(f"GEOGRID_ANONYMOUS_ROLE must be one of {ROLES}")
        return self

    def api_key_roles(self) -> dict[str, str]:
        """Parse ``api_keys`` into {key: role}; raise ValueError on a bad pair."""
        out: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in self.api_keys.split(","))):
            key, sep, role = pair.rpartition(":")
            if not sep or not key or role not in ROLES:
                raise ValueError(f"GEOGRID_API_KEYS entry {pair!r} is not key:role with role in {ROLES}")
            out[key] = role
        return out


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
