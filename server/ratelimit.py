"""Fixed-window rate limits: Redis counters shared by every server, or memory when alone.

When Redis fails (refuses, errors, or does not answer within the client's timeout), the
limits do not open: each server counts in its own memory until Redis answers again, so a
client gets at most its limit per server process. After a failure Redis is left alone for
`REDIS_RETRY_S`, so a hung Redis costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError

from persistence.errors import RateLimited

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def hit(self, key: str, *, limit: int, window_s: int) -> int | None:
        """Count one event; None if allowed, else the seconds until the window ends."""


REDIS_RETRY_S = 5.0


class RedisRateLimiter:
    def __init__(self, connection: Redis, prefix: str, *, retry_s: float = REDIS_RETRY_S):
        self.connection = connection
        self.prefix = prefix
        self.retry_s = retry_s
        self.fallback = MemoryRateLimiter()
        self._redis_down_until = 0.0

    def hit(self, key: str, *, limit: int, window_s: int) -> int | None:
        if time.monotonic() < self._redis_down_until:
            return self.fallback.hit(key, limit=limit, window_s=window_s)
        window = int(time.time() // window_s)
        redis_key = f"{self.prefix}ratelimit:{key}:{window}"
        try:
            pipe = self.connection.pipeline()
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_s + 1)
            count = int(pipe.execute()[0])
        except RedisError as exc:
            self._redis_down_until = time.monotonic() + self.retry_s
            log.warning("rate limits cannot reach Redis (%s); in memory for %.0f s", exc, self.retry_s)
            return self.fallback.hit(key, limit=limit, window_s=window_s)
        return None if count <= limit else _seconds_left(window_s)


class MemoryRateLimiter:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()

    def hit(self, key: str, *, limit: int, window_s: int) -> int | None:
        window = int(time.time() // window_s)
        with self.lock:
            self.counts = {k: v for k, v in self.counts.items() if k[1] >= window - 1}
            count = self.counts.get((key, window), 0) + 1
            self.counts[(key, window)] = count
        return None if count <= limit else _seconds_left(window_s)


def _seconds_left(window_s: int) -> int:
    return int(window_s - time.time() % window_s) + 1


def enforce(limiter: RateLimiter, key: str, *, limit: int, window_s: int, what: str) -> None:
    """Raise RateLimited when `key` went over `limit` in this window (limit 0: no limit)."""
    if limit <= 0:
        return
    retry_after = limiter.hit(key, limit=limit, window_s=window_s)
    if retry_after is not None:
        raise RateLimited(
            f"too many {what}: the limit is {limit} per {window_s} s; try again in {retry_after} s",
            retry_after_s=retry_after,
        )
