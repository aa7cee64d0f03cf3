"""Trace jobs end to end, on the embedded stack (SQLite + threads) and the production stack
(Postgres + Redis + RQ worker): lifecycle with progress, dedup, failure reasons, cancel,
retry, server-sent events, and the stored graph."""

from __future__ import annotations

import gzip
import json
import threading

from gbx_fakes import FakeTracer
from gbx_stack import Stack


def _ready(stack: Stack) -> None:
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)


def test_lifecycle_reports_running_with_progress_then_done(any_stack):
    seen: list[dict] = []
    holder: dict[str, Stack] = {}

    def look(spec, step):
        stack = holder["stack"]
        job_id = stack.client.get("/api/jobs").json()[0]["id"]
        stack.wait_until(lambda: stack.job(stack.client, job_id)["progress"] >= step / 3 - 1e-9, 5)
        seen.append(stack.job(stack.client, job_id))

    stack = any_stack(tracer=FakeTracer(steps=3, step_delay_s=0.05, on_step=look))
    holder["stack"] = stack
    _ready(stack)

    job = stack.submit(stack.client, "The capital of Texas is")
    assert job["status"] == "queued" and job["deduplicated"] is False
    stack.process_jobs()
    done = stack.wait_for_status(stack.client, job["id"], "done")

    assert [s["status"] for s in seen] == ["running"] * 3
    assert [round(s["progress"], 3) for s in seen] == [0.0, 0.333, 0.667]
    assert seen[-1]["phase"] == "attribution"
    assert done["progress"] == 1.0 and done["error"] is None and done["graph_slug"]
    graph = stack.client.get(f"/api/graphs/{done['graph_slug']}").json()
    assert graph["prompt"] == "The capital of Texas is"
    assert graph["model"] == "tiny" and graph["transcoders"] == "tc"
    assert graph["tokens"][0] == "<bos>" and graph["node_count"] == 8
    assert graph["replacement_score"] == 0.75 and graph["completeness_score"] == 0.9


def test_identical_requests_share_one_job(any_stack):
    stack = any_stack(tracer=FakeTracer(steps=1))
    _ready(stack)
    first = stack.submit(stack.client, "same prompt here")
    second = stack.submit(stack.client, "same prompt here")
    assert second["id"] == first["id"] and second["deduplicated"] is True
    other = stack.submit(stack.client, "same prompt here", params={"node_threshold": 0.5})
    assert other["id"] != first["id"]

    stack.process_jobs()
    stack.wait_for_status(stack.client, first["id"], "done")
    again = stack.submit(stack.client, "same prompt here")
    assert again["id"] == first["id"] and again["status"] == "done" and again["graph_slug"]
    assert len(stack.tracer.calls) == 2  # two distinct requests, traced once each

    bob = stack.user_client("bob")  # another user's identical request is their own job
    assert stack.submit(bob, "same prompt here")["id"] != first["id"]


def test_engine_error_fails_the_job_with_its_message_and_retry_reruns(any_stack):
    stack = any_stack(tracer=FakeTracer(steps=1))
    _ready(stack)
    job = stack.submit(stack.client, "please FAIL now")
    stack.process_jobs()
    failed = stack.wait_for_status(stack.client, job["id"], "failed")
    assert failed["error"] == "the fake engine refuses prompts containing FAIL"

    crash = stack.submit(stack.client, "CRASH please")
    stack.process_jobs()
    crashed = stack.wait_for_status(stack.client, crash["id"], "failed")
    assert "internal error" in crashed["error"] and "fake crash" in crashed["error"]

    retried = stack.client.post(f"/api/jobs/{crash['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert retried.json()["attempt"] == 2
    stack.process_jobs()
    assert stack.wait_for_status(stack.client, crash["id"], "failed")["attempt"] == 2

    done = stack.submit(stack.client, "a fine prompt")
    stack.process_jobs()
    stack.wait_for_status(stack.client, done["id"], "done")
    r = stack.client.post(f"/api/jobs/{done['id']}/retry")
    assert r.status_code == 409 and "only failed or cancelled" in r.json()["error"]["message"]


def test_cancel_queued_job_is_never_run(any_stack):
    gate = threading.Event()
    stack = any_stack(tracer=FakeTracer(steps=1, on_step=lambda spec, i: gate.wait(5)))
    _ready(stack)
    blocker = stack.submit(stack.client, "first one")  # keeps the only thread busy (embedded)
    victim = stack.submit(stack.client, "second one")
    r = stack.client.post(f"/api/jobs/{victim['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    gate.set()
    stack.process_jobs()
    stack.wait_for_status(stack.client, blocker["id"], "done")
    assert stack.job(stack.client, victim["id"])["status"] == "cancelled"
    assert [c.prompt for c in stack.tracer.calls] == ["first one"]
    r = stack.client.post(f"/api/jobs/{victim['id']}/cancel")
    assert r.status_code == 409


def test_cancel_running_job_stops_it(make_stack, sqlite_url):
    started = threading.Event()
    stack = make_stack(
        sqlite_url, tracer=FakeTracer(steps=40, step_delay_s=0.05, on_step=lambda s, i: started.set())
    )
    _ready(stack)
    job = stack.submit(stack.client, "long running")
    assert started.wait(5)
    assert stack.client.post(f"/api/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    stack.process_jobs()
    final = stack.job(stack.client, job["id"])
    assert final["status"] == "cancelled" and final["graph_slug"] is None
    assert stack.client.get("/api/graphs").json()["total"] == 0


def test_server_sent_events_follow_the_job(make_stack, sqlite_url):
    stack = make_stack(sqlite_url, tracer=FakeTracer(steps=4, step_delay_s=0.25))
    _ready(stack)
    job = stack.submit(stack.client, "stream me")
    events = []
    with stack.client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    statuses = [e["status"] for e in events]
    assert statuses[-1] == "done" and "running" in statuses
    progress = [e["progress"] for e in events if e["status"] == "running"]
    assert progress == sorted(progress) and len(set(progress)) >= 2
    assert events[-1]["graph_slug"]


def test_job_of_another_user_is_not_visible(any_stack):
    stack = any_stack()
    _ready(stack)
    job = stack.submit(stack.client, "mine only")
    eve = stack.user_client("eve")
    assert eve.get(f"/api/jobs/{job['id']}").status_code == 404
    assert eve.post(f"/api/jobs/{job['id']}/cancel").status_code == 404
    anonymous = stack.new_client()
    assert anonymous.get(f"/api/jobs/{job['id']}").status_code == 401


def test_graph_data_is_stored_gzip_and_served_both_ways(any_stack):
    stack = any_stack(tracer=FakeTracer(steps=1))
    _ready(stack)
    job = stack.submit(stack.client, "compress me", slug="my-graph")
    stack.process_jobs()
    assert stack.wait_for_status(stack.client, job["id"], "done")["graph_slug"] == "my-graph"

    raw = stack.client.get("/api/graphs/my-graph/data", headers={"Accept-Encoding": "identity"})
    assert raw.status_code == 200 and "content-encoding" not in raw.headers
    doc = raw.json()
    assert doc["metadata"]["slug"] == "my-graph" and doc["metadata"]["prompt"] == "compress me"

    # httpx would decode transparently; read the bytes on the wire
    with stack.client.stream("GET", "/api/graphs/my-graph/data", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        wire = b"".join(r.iter_raw())
    assert json.loads(gzip.decompress(wire)) == doc


def test_job_running_past_the_timeout_is_failed(make_stack, sqlite_url):
    stack = make_stack(sqlite_url, job_timeout_s=1, tracer=FakeTracer(steps=100, step_delay_s=0.05))
    _ready(stack)
    job = stack.submit(stack.client, "never ends")
    failed = stack.wait_for_status(stack.client, job["id"], "failed", timeout_s=10)
    assert failed["error"] == "the trace took longer than the 1 s limit"
    stack.process_jobs()
    assert stack.job(stack.client, job["id"])["status"] == "failed"
    assert len(stack.tracer.calls) == 1
