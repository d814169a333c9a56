"""Request limits and the audit of writes, as a plain ASGI middleware.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware wraps every
response in a stream and a task group, which cost each request (reads included, which are never
audited) a measurable share of a small tile's time. Here a read passes straight through.
"""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, security


class LimitsAndAudit:
    """413 for a declared body over ``max_body_bytes``; every write (refused ones too) audited after
    the handler's own transaction, with the status it got."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audited = scope["method"] in security.WRITE_METHODS and scope["path"] not in security.READ_POSTS
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            response = errors.problem(413, "Payload too large",
                                      f"request body over {self.max_body_bytes} bytes", scope["path"])
            if audited:
                await _audit(scope, 413)
            await response(scope, receive, send)
            return
        if not audited:
            await self.app(scope, receive, send)
            return
        status, done = 500, False

        async def send_audited(message: Message) -> None:
            # the audit row commits before the response's last byte leaves, so a client that has
            # its answer also finds the write in the log
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not done:
                done = True
                await _audit(scope, status)
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        finally:
            if not done:  # the handler failed before answering
                await _audit(scope, status)


async def _audit(scope: Scope, status: int) -> None:
    request = Request(scope)  # shares scope["state"], where the route left the principal
    await run_in_threadpool(security.audit, request.app.state.engine, request, status)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None
