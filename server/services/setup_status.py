"""The setup's progress for pages, read once per process every few seconds, whoever asks.

While the first-start setup runs, every open home and new-graph page polls it
(GET /api/setup/status), and the answer is the same for everyone: so one request per process
reads the database at most once per TTL_S, and the others get that answer. The pages' templates
call `setup_progress()` (a Jinja global) for their first rendering of the banner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from firststart.status import SetupProgress, read_setup_progress
from persistence.db import SessionFactory

log = logging.getLogger(__name__)

TTL_S = 2.0


class SetupStatusCache:
    """The newest SetupProgress, at most `ttl_s` old; one thread reads it again at a time."""

    def __init__(
        self, sessions: SessionFactory, *, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic
    ):
        self.sessions, self.ttl_s, self.clock = sessions, ttl_s, clock
        self._value: SetupProgress | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def fresh(self) -> SetupProgress | None:
        """The cached answer if it is recent enough (no database, no waiting)."""
        value = self._value
        return value if value is not None and self.clock() - self._read_at < self.ttl_s else None

    def get(self) -> SetupProgress:
        """The cached answer, or a new one read from the database (blocking: call it in a thread)."""
        value = self.fresh()
        if value is not None:
            return value
        with self._lock:
            value = self.fresh()  # another thread read it while this one waited
            if value is not None:
                return value
            with self.sessions() as session:
                value = read_setup_progress(session)
            self._value, self._read_at = value, self.clock()
            return value

    def for_page(self) -> dict[str, Any] | None:
        """For templates: the progress as a dict, or None when it cannot be read (the page
        renders without the banner rather than failing)."""
        try:
            return self.get().to_dict()
        except Exception:
            log.warning("the setup's progress could not be read", exc_info=True)
            return None


def install_setup_status(app: Any) -> SetupStatusCache:
    """Keep the cache on `app.state.setup_status` and give the templates `setup_progress()`."""
    services = app.state.services
    cache = SetupStatusCache(services.sessions)
    app.state.setup_status = cache
    services.templates.env.globals["setup_progress"] = cache.for_page
    return cache
