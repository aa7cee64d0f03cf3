"""Secrets: argon2 password hashes, session tokens, API keys and CSRF tokens.

Session tokens and API keys are random; the database keeps only their SHA-256, so a leaked
database does not leak live credentials. The CSRF token of a session is an HMAC of the
session token with the server's secret key (double-submit: a readable cookie and a header).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from persistence.errors import Unprocessable

API_KEY_PREFIX = "gbx_"
ZXCVBN_MAX_CHARS = 72  # zxcvbn refuses longer input; a longer password is at least as strong
_zxcvbn_lock = threading.Lock()  # zxcvbn keeps the user inputs of a call in a module global


def password_hasher(*, time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def verify_password(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str, *, username: str, min_score: int) -> None:
    """Refuse a password that zxcvbn (a maintained estimator built on leaked-password lists,
    dictionaries and keyboard patterns) scores below `min_score` (0-4; 0: no check)."""
    if min_score <= 0:
        return
    from zxcvbn import zxcvbn

    with _zxcvbn_lock:
        verdict = zxcvbn(password[:ZXCVBN_MAX_CHARS], user_inputs=[username, "glassbox"])
    if verdict["score"] >= min_score:
        return
    feedback = verdict["feedback"]
    reasons = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    advice = " ".join(r.strip() for r in reasons if r.strip())
    raise Unprocessable(
        f"this password is too easy to guess (strength {verdict['score']} of 4, at least {min_score} "
        f"needed). {advice or 'Use a longer password, e.g. several unrelated words.'}"
    )


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("not a password anyone has")


def burn_verify_time(hasher: PasswordHasher, password: str) -> None:
    """Spend what a real check costs, so unknown usernames answer as slowly as wrong passwords."""
    verify_password(hasher, _dummy_hash(hasher), password)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_display_prefix(key: str) -> str:
    return key[:12]


def csrf_token(secret_key: str, session_token: str) -> str:
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(secret_key, session_token), presented)
