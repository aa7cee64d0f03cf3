"""Admission: at most GLASSBOX_REQUEST_THREADS requests inside the app at once, per process.

A request takes a database connection in its first blocking dependency and keeps it until its
response is sent, while it hops between the request threads (each dependency and the handler
wait for a thread in turn). With more requests inside than threads, requests that hold a
connection wait for a thread while requests that hold a thread wait for a connection (the pool
is sized to the threads, Settings.server_pool_size): with 100 concurrent readers on one
process, many waited out GLASSBOX_DB_POOL_TIMEOUT_S and got 503s. Requests past the limit
wait here instead, holding neither; one that waits ADMISSION_WAIT_S gets a 503 with
Retry-After. Pure ASGI, so responses stream through untouched.

Not counted: static files and /healthz (no database), and server-sent event streams from the
moment they start (they take short sessions of their own while they run).
"""

from __future__ import annotations

import asyncio
import weakref

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response

ADMISSION_WAIT_S = 30.0
UNCOUNTED_PATHS = ("/static/", "/healthz")


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int, wait_s: float = ADMISSION_WAIT_S):
        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        # one semaphore per event loop (uvicorn runs one per process; test clients start several)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNCOUNTED_PATHS):
            await self.app(scope, receive, send)
            return
        slots = self._slots_of_this_loop()
        try:
            await asyncio.wait_for(slots.acquire(), self.wait_s)
        except TimeoutError:
            await _busy(scope, receive, send)
            return
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_releasing_streams(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_event_stream(message):
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing_streams)
        finally:
            release()

    def _slots_of_this_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        return slots


def _is_event_stream(message: Message) -> bool:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-type":
            return value.startswith(b"text/event-stream")
    return False


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    message = "the server is busy (every request slot stayed taken); retry shortly"
    response = error_response(Request(scope), 503, "unavailable", message, headers={"Retry-After": "2"})
    await response(scope, receive, send)
