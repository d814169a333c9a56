"""One exception → status table, and RFC 9457 problem+json bodies for every error the API returns."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geogrid.errors import Conflict, GeogridError, InputError, NotFound, StaleVersion

PROBLEM = "application/problem+json"


class ApiError(GeogridError):
    """An error with its own HTTP status (auth, limits, preconditions)."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.headers = headers or {}


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class PreconditionRequired(ApiError):
    status, title = 428, "Precondition required"


class PayloadTooLarge(ApiError):
    status, title = 413, "Payload too large"


class UnsupportedMediaType(ApiError):
    status, title = 415, "Unsupported media type"


# most specific first: the first class an exception is an instance of decides its status
STATUS: list[tuple[type[Exception], int, str]] = [
    (StaleVersion, 412, "Precondition failed"),
    (Conflict, 409, "Conflict"),
    (NotFound, 404, "Not found"),
    (InputError, 400, "Bad request"),
    (ValueError, 400, "Bad request"),
]


def problem(status: int, title: str, detail: str, instance: str | None = None,
            headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    """A problem+json response (RFC 9457)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        return exc.status, exc.title
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal server error"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(GeogridError)
    async def _geogrid(request: Request, exc: GeogridError):
        status, title = status_of(exc)
        return problem(status, title, str(exc), str(request.url.path), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # FastAPI's default is 422; every bad parameter is a 400 here, naming the parameter
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem(400, "Bad request", detail, str(request.url.path), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, _reason(exc.status_code), str(exc.detail), str(request.url.path),
                       getattr(exc, "headers", None))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError):
        return problem(400, "Bad request", str(exc), str(request.url.path))


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
