"""The rate-limit policies of the routes: who may start how many jobs, previews and sign-ins.

Each policy names its counter key and its settings in one place (server.ratelimit counts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from persistence.errors import Unavailable
from persistence.tables import User
from server.deps import AppServices, client_address
from server.ratelimit import enforce


def limit_jobs(services: AppServices, request: Request, user: User, *, what: str = "traces") -> None:
    """Traces and intervention jobs share one budget per account and one per client address.
    Called only for a job that will be made: a request answered by an identical job is free."""
    s = services.settings
    window = s.trace_rate_limit_window_s
    enforce(services.limiter, f"trace:user:{user.id}", limit=s.trace_rate_limit_per_user, window_s=window,
            what=f"{what} for this account")
    enforce(services.limiter, f"trace:addr:{client_address(request)}", limit=s.trace_rate_limit_per_address,
            window_s=window, what=f"{what} from this address")


def limit_uploads(services: AppServices, user: User) -> None:
    """Graph uploads per account: each one is decompressed, parsed and checked in memory."""
    s = services.settings
    enforce(services.limiter, f"upload:user:{user.id}", limit=s.upload_rate_limit_per_user,
            window_s=s.trace_rate_limit_window_s, what="graph uploads for this account")


UPLOAD_SLOT_WAIT_S = 10.0


@contextmanager
def upload_slot(services: AppServices) -> Iterator[None]:
    """One of the process's GLASSBOX_UPLOAD_CONCURRENCY turns at checking an upload, which bounds
    the memory uploads take; after UPLOAD_SLOT_WAIT_S without one, 503."""
    if not services.upload_slots.acquire(timeout=UPLOAD_SLOT_WAIT_S):
        busy = "the server is busy checking other uploads; retry shortly"
        raise Unavailable(busy, headers={"Retry-After": "5"})
    try:
        yield
    finally:
        services.upload_slots.release()


def limit_previews(services: AppServices, request: Request) -> None:
    s = services.settings
    enforce(services.limiter, f"preview:addr:{client_address(request)}",
            limit=s.preview_rate_limit_per_address, window_s=s.trace_rate_limit_window_s,
            what="tokenization previews")


def limit_auth(services: AppServices, request: Request) -> None:
    s = services.settings
    enforce(services.limiter, f"auth:addr:{client_address(request)}", limit=s.auth_rate_limit_per_address,
            window_s=s.auth_rate_limit_window_s, what="sign-in attempts")


def limit_explanations(services: AppServices, user: User) -> None:
    """Single-feature LLM explanations per account: each is several calls to the explainer,
    which may be a paid API."""
    s = services.settings
    enforce(services.limiter, f"explain:user:{user.id}", limit=s.explainer_rate_limit_per_user,
            window_s=s.trace_rate_limit_window_s, what="feature explanations for this account")
