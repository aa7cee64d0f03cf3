"""Domain errors: what the services of every layer raise for a client's mistake.

Each carries the HTTP status and stable code the server answers with (server/errors.py maps
them to responses in one place); workers and the setup raise them too, and nothing here
depends on the web framework.
"""

from __future__ import annotations

from typing import Any


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
