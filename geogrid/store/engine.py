"""Engine construction: one place that knows the connection options."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine

# JIT added up to 0.9 s to tile queries, and generic plans slowed prepared ones (FIELD-NOTES).
_PG_OPTIONS = "-c jit=off -c plan_cache_mode=force_custom_plan -c timezone=UTC"


def make_engine(url: str, pg_options: str = "", **kw) -> Engine:
    """A SQLAlchemy engine for ``url`` with geogrid's session options (and ``pg_options``, ``-c k=v`` ...)."""
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, connect_args={"options": f"{_PG_OPTIONS} {pg_options}".strip()}, **kw)


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """One atomic unit: a transaction on an engine, or a savepoint inside a caller's connection."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    else:
        with bind.begin_nested():
            yield bind
