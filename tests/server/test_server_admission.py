"""Admission (server/admission.py): at most GLASSBOX_REQUEST_THREADS requests inside the app at
once, so many concurrent requests queue instead of starving each other of database connections."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import httpx
from gbx_fakes import fake_graph_json

from server.admission import AdmissionMiddleware


def run_in_own_loop(coro: Any) -> Any:
    """Run `coro` on a fresh event loop in its own thread: earlier tests in the same process
    (Playwright's sync API) may leave a loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

JSON = {"Content-Type": "application/json"}


class Gate:
    """An ASGI app whose requests wait until opened; counts how many are inside at once."""

    def __init__(self, content_type: bytes = b"application/json"):
        self.opened = asyncio.Event()
        self.inside = self.most_inside = 0
        self.content_type = content_type

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", self.content_type)]})
            await self.opened.wait()
            await send({"type": "http.response.body", "body": b"{}"})
        finally:
            self.inside -= 1


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_requests_past_the_limit_wait_and_then_all_get_in() -> None:
    async def run() -> list[int]:
        gate = Gate()
        async with _client(AdmissionMiddleware(gate, limit=2, wait_s=10)) as client:
            requests = [asyncio.create_task(client.get("/api/x")) for _ in range(6)]
            await asyncio.sleep(0.2)
            assert gate.inside == 2
            gate.opened.set()
            answers = await asyncio.gather(*requests)
        assert gate.most_inside == 2
        return [a.status_code for a in answers]

    assert run_in_own_loop(run()) == [200] * 6


def test_a_request_that_waits_too_long_gets_a_503_with_retry_after() -> None:
    async def run() -> None:
        gate, alive = Gate(), Gate()
        alive.opened.set()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await (alive if scope["path"] == "/healthz" else gate)(scope, receive, send)

        async with _client(AdmissionMiddleware(app, limit=1, wait_s=0.2)) as client:
            first = asyncio.create_task(client.get("/api/x"))
            await asyncio.sleep(0.05)
            second = await client.get("/api/x")
            assert second.status_code == 503 and second.headers["retry-after"] == "2"
            assert second.json()["error"]["code"] == "unavailable"
            assert (await client.get("/healthz")).status_code == 200  # liveness is never queued
            gate.opened.set()
            assert (await first).status_code == 200

    run_in_own_loop(run())


def test_event_streams_give_their_slot_back_when_they_start() -> None:
    async def run() -> None:
        stream, plain = Gate(b"text/event-stream"), Gate()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await (stream if scope["path"] == "/events" else plain)(scope, receive, send)

        async with _client(AdmissionMiddleware(app, limit=1, wait_s=1)) as client:
            watching = asyncio.create_task(client.get("/events"))
            await asyncio.sleep(0.05)
            plain.opened.set()
            assert (await client.get("/api/x")).status_code == 200  # the stream holds no slot
            stream.opened.set()
            assert (await watching).status_code == 200

    run_in_own_loop(run())


def test_many_concurrent_readers_on_few_threads_get_no_503(pg_url, redis_url, make_stack) -> None:
    """Two request threads, two pool connections, a short pool timeout, 40 readers at once: each
    request holds its connection between thread hops, so without admission the ones waiting for
    a thread starve the ones waiting for a connection, until the pool timeout (503)."""
    stack = make_stack(pg_url, redis_url, request_threads=2, db_pool_size=2, db_pool_timeout_s=0.5)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    doc = json.dumps(fake_graph_json("the cat sat", "g"))
    imported = stack.client.post("/api/graphs/import", content=doc, params={"slug": "g"}, headers=JSON)
    assert imported.status_code == 201, imported.text

    async def run() -> list[int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2  # as the app's lifespan sets
        async with _client(stack.app) as client:
            answers = await asyncio.gather(*(client.get("/api/graphs/g") for _ in range(40)))
        return [a.status_code for a in answers]

    assert run_in_own_loop(run()) == [200] * 40
