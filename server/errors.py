"""Domain errors of the server and the one place that turns every error into a response.

Services raise these (or glassbox.errors.GlassboxError, a "bad input" from the engine); routes
never build error responses themselves. API paths get JSON
`{"error": {"code": ..., "message": ..., "details": ...}}`; browsers asking for a page get
the error template.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from glassbox.errors import GlassboxError

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """What went wrong: a stable `code`, a sentence for people, and optional details."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: Problem


ErrorResponses: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Bad input, missing rights, not found, conflict, rate limit"},
}


class ServerError(Exception):
    """Base of the domain errors; `status` and `code` say how the client sees it."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(ServerError):
    status, code = 400, "bad_request"


class Unauthorized(ServerError):
    status, code = 401, "unauthorized"


class Forbidden(ServerError):
    status, code = 403, "forbidden"


class NotFound(ServerError):
    status, code = 404, "not_found"


class Conflict(ServerError):
    status, code = 409, "conflict"


class PayloadTooLarge(ServerError):
    status, code = 413, "payload_too_large"


class Unprocessable(ServerError):
    status, code = 422, "invalid_input"


class RateLimited(ServerError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})


class Unavailable(ServerError):
    status, code = 503, "unavailable"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error type to a response, in one place."""
    handlers: list[tuple[type[Exception], Any]] = [
        (ServerError, _server_error),
        (GlassboxError, _glassbox_error),
        (RequestValidationError, _validation_error),
        (StarletteHTTPException, _http_error),
        (IntegrityError, _integrity_error),
        (DataError, _data_error),
        (OperationalError, _operational_error),
        (Exception, _unexpected_error),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON for API clients, the error page for browsers."""
    if _wants_html(request):
        templates = getattr(request.app.state, "templates", None)
        if templates is not None:
            context = {"status": status, "code": code, "message": message}
            return templates.TemplateResponse(
                request, "server/error.html", context, status_code=status, headers=headers
            )
        return HTMLResponse(f"<h1>{status}</h1><p>{message}</p>", status_code=status, headers=headers)
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def _server_error(request: Request, exc: ServerError) -> Response:
    return error_response(
        request, exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers
    )


async def _glassbox_error(request: Request, exc: Exception) -> Response:
    return error_response(request, 422, "invalid_input", str(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = [_describe_problem(err) for err in exc.errors()]
    details = [{"where": p[0], "problem": p[1]} for p in problems]
    message = "; ".join(f"{where}: {problem}" for where, problem in problems) or "invalid request"
    return error_response(request, 422, "invalid_input", message, details=details)


def _describe_problem(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(part) for part in err.get("loc", ())]
    where = ".".join(loc) if loc else "request"
    problem = str(err.get("msg", "invalid value"))
    if err.get("type") == "json_invalid":
        problem = "the body is not valid JSON"
    return where, problem


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = f"nothing at {request.url.path}"
    return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _integrity_error(request: Request, exc: Exception) -> Response:
    log.info("integrity error on %s: %s", request.url.path, exc)
    return error_response(
        request, 409, "conflict", "the change conflicts with existing data; reload and retry"
    )


async def _data_error(request: Request, exc: Exception) -> Response:
    log.info("data error on %s: %s", request.url.path, exc)
    return error_response(request, 400, "bad_request", "a value is out of range or malformed")


async def _operational_error(request: Request, exc: Exception) -> Response:
    log.warning("database trouble on %s: %s", request.url.path, exc)
    return error_response(
        request,
        503,
        "unavailable",
        "the database is busy or unreachable; retry shortly",
        headers={"Retry-After": "2"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal_error", "internal server error")
