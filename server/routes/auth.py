"""Accounts: register, log in and out, API keys, users."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from persistence.errors import Forbidden
from persistence.settings import Settings
from server import security
from server.deps import CSRF_COOKIE, AdminUser, CurrentUser, OptionalUser, ServicesDep, SessionDep
from server.errors import problems
from server.limits import limit_auth
from server.routes.params import IntId, NamePath
from server.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    LoginRequest,
    SessionInfo,
    UserCreate,
    UserProfile,
    UserPublic,
)
from server.services import accounts
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api", tags=["accounts"], route_class=StrictJSONRoute)


@router.post("/auth/register", status_code=201, responses=problems(403, 409, 429))
def register(body: UserCreate, request: Request, session: SessionDep, services: ServicesDep) -> UserPublic:
    """Create an account. The first account becomes an administrator (GLASSBOX_FIRST_USER_IS_ADMIN)."""
    if not services.settings.allow_registration:
        raise Forbidden("registration is closed on this server")
    limit_auth(services, request)
    user = accounts.register(
        session,
        services.hasher,
        username=body.username,
        password=body.password,
        first_user_is_admin=services.settings.first_user_is_admin,
        min_password_score=services.settings.password_min_score,
    )
    return UserPublic.of(user)


@router.post("/auth/login", responses=problems(401, 403, 429))
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep, services: ServicesDep
) -> SessionInfo:
    """Start a cookie session. Writes with the cookie need the returned `csrf_token` as X-CSRF-Token."""
    limit_auth(services, request)
    s = services.settings
    new = accounts.login(
        session,
        services.hasher,
        username=body.username,
        password=body.password,
        max_age_s=s.session_max_age_s,
    )
    csrf = security.csrf_token(services.secret_key, new.token)
    _set_cookie(response, s, s.session_cookie_name, new.token, http_only=True)
    _set_cookie(response, s, CSRF_COOKIE, csrf, http_only=False)
    return SessionInfo(user=UserPublic.of(new.user), csrf_token=csrf)


def _set_cookie(response: Response, s: Settings, name: str, value: str, *, http_only: bool) -> None:
    response.set_cookie(
        name,
        value,
        max_age=s.session_max_age_s,
        httponly=http_only,
        secure=s.cookie_secure,
        samesite=s.cookie_samesite,
        path="/",
    )


@router.post("/auth/logout", status_code=204, responses=problems(401, 403))
def logout(request: Request, user: CurrentUser, session: SessionDep, services: ServicesDep) -> Response:
    """End the cookie session."""
    token = request.cookies.get(services.settings.session_cookie_name)
    if token:
        accounts.logout(session, token)
    response = Response(status_code=204)
    response.delete_cookie(services.settings.session_cookie_name, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/auth/me", responses=problems(401))
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.of(user)


@router.get("/auth/keys", responses=problems(401))
def list_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in accounts.list_api_keys(session, user)]


@router.post("/auth/keys", status_code=201, responses=problems(401, 403))
def create_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep) -> ApiKeyCreated:
    """A new API key; the key is in the answer once and never again."""
    row, key = accounts.create_api_key(session, user, name=body.name)
    return ApiKeyCreated(**ApiKeyPublic.of(row).model_dump(), key=key)


@router.delete("/auth/keys/{key_id}", responses=problems(401, 403, 404))
def revoke_key(key_id: IntId, user: CurrentUser, session: SessionDep) -> ApiKeyPublic:
    return ApiKeyPublic.of(accounts.revoke_api_key(session, user, key_id))


@router.get("/users/{username}", response_model=UserPublic | UserProfile, responses=problems(401, 404))
def get_user(username: NamePath, viewer: OptionalUser, session: SessionDep) -> UserPublic | UserProfile:
    """An account; whether it is an administrator only to itself and to administrators."""
    user = accounts.get_user(session, username)
    if viewer is not None and (viewer.id == user.id or viewer.is_admin):
        return UserPublic.of(user)
    return UserProfile.of(user)


@router.put("/users/{username}/admin", responses=problems(401, 403, 404))
def set_admin(username: NamePath, is_admin: bool, admin: AdminUser, session: SessionDep) -> UserPublic:
    """Grant or take away the administrator role (administrators only)."""
    return UserPublic.of(accounts.set_admin(session, username, is_admin=is_admin))
