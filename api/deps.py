"""Request-scoped dependencies: database connections (read and write)."""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy import Connection


def db(request: Request) -> Iterator[Connection]:
    """A read connection for one request."""
    with request.app.state.engine.connect() as conn:
        yield conn


def db_write(request: Request) -> Iterator[Connection]:
    """One transaction for one write request: committed when the handler returns, rolled back on error."""
    with request.app.state.engine.begin() as conn:
        yield conn
