"""The one place that turns every error into a response.

Services raise the domain errors of persistence/errors.py (or glassbox.errors.GlassboxError, a
"bad input" from the engine); routes
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
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from glassbox.errors import GlassboxError
from persistence.errors import ServerError

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """What went wrong: a stable `code`, a sentence for people, and optional details."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: Problem


PROBLEMS: dict[int, str] = {
    401: "Not signed in, or the API key is wrong or revoked",
    403: "Not allowed: administrators only, someone else's, or a cookie write without its X-CSRF-Token",
    404: "Nothing by that name or id that you may see",
    409: "Conflicts with what is there now (a taken name, a change made meanwhile, a job's state)",
    413: "Over a size limit",
    422: "Invalid input: the message names the field and the rule",
    429: "Rate limited: retry after the Retry-After header's seconds",
    503: "Busy (every request, database or upload slot taken) or a dependency is down: see Retry-After",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route answers with, each with ErrorBody.
    Every route declares its own; the API's tests hold every answer to them (Schemathesis)."""
    return {status: {"model": ErrorBody, "description": PROBLEMS[status]} for status in statuses}


# Every route reads its input strictly and (all but /healthz) uses the database.
ErrorResponses = problems(422, 503)


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
        (PoolTimeout, _pool_timeout),
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
    if err.get("type") == "json_invalid":  # loc is ("body", offset): say what, not where
        reason = (err.get("ctx") or {}).get("error")
        where, problem = "body", "the body is not valid JSON" + (f": {reason}" if reason else "")
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


async def _pool_timeout(request: Request, exc: Exception) -> Response:
    """Every database connection of this process stayed busy for GLASSBOX_DB_POOL_TIMEOUT_S."""
    log.warning("no free database connection for %s: %s", request.url.path, exc)
    return error_response(
        request,
        503,
        "unavailable",
        "the server is busy (no free database connection); retry shortly",
        headers={"Retry-After": "2"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal_error", "internal server error")
