"""Health, readiness, metrics, OpenAPI, tokenization preview, HTML pages and static files."""

from __future__ import annotations

from gbx_fakes import FakeTracer

from persistence import migrate


def test_healthz_and_readyz(pg_stack):
    assert pg_stack.client.get("/healthz").json() == {"status": "ok"}
    ready = pg_stack.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok", "queue": "ok"}


def test_readyz_fails_when_redis_is_unreachable(pg_url, make_stack):
    stack = make_stack(pg_url, "redis://127.0.0.1:1/0")
    r = stack.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"]["details"]["queue"].startswith("unreachable")
    assert r.json()["error"]["details"]["database"] == "ok"


def test_readyz_fails_on_an_unmigrated_database(tmp_path, make_stack):
    stack = make_stack(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    r = stack.client.get("/readyz")
    expected = f"expected {migrate.head_revision()}"
    assert r.status_code == 503 and expected in r.json()["error"]["details"]["database"]


def test_metrics_count_jobs_and_trace_seconds(sqlite_url, make_stack):
    stack = make_stack(sqlite_url, tracer=FakeTracer(steps=1))
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    stack.submit(stack.client, "one")
    stack.submit(stack.client, "FAIL two")
    stack.process_jobs()
    text = stack.client.get("/metrics").text
    assert 'glassbox_jobs{status="done"} 1.0' in text
    assert 'glassbox_jobs{status="failed"} 1.0' in text
    assert 'glassbox_jobs{status="queued"} 0.0' in text and 'glassbox_jobs{status="running"} 0.0' in text
    assert "glassbox_trace_seconds_count 1.0" in text
    assert 'glassbox_trace_seconds_bucket{le="1.0"} 1.0' in text


def test_openapi_documents_the_api(shared_pg_stack):
    spec = shared_pg_stack.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/traces",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/events",
        "/api/graphs",
        "/api/graphs/import",
        "/api/graphs/{slug}/data",
        "/api/models/{name}/tokenize",
        "/api/features/{model}/{transcoders}/batch",
        "/api/subgraphs/{slug}",
        "/api/auth/keys",
    ):
        assert path in paths, path
    assert "ErrorBody" in spec["components"]["schemas"]
    assert shared_pg_stack.client.get("/docs").status_code == 200


def test_tokenization_preview(shared_pg_stack):
    r = shared_pg_stack.new_client().post(
        "/api/models/tiny/tokenize", json={"prompt": "The cat sat", "top_k": 3}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tokens"][0] == "<bos>" and body["n_tokens"] == 4 and body["max_tokens"] == 16
    assert [t["token"] for t in body["top_next"]] == [" next0", " next1", " next2"]
    capped = shared_pg_stack.new_client().post(
        "/api/models/tiny/tokenize", json={"prompt": "a", "top_k": 100}
    )
    assert len(capped.json()["top_next"]) == 20  # GLASSBOX_PREVIEW_MAX_TOP_K


def test_models_list(shared_pg_stack):
    models = shared_pg_stack.new_client().get("/api/models").json()
    # the fake model has no chat template: False once a preview loaded it, None before (its
    # source is no folder whose files could tell)
    assert models[0].pop("chat_template") in (False, None)
    assert models == [
        {
            "name": "tiny",
            "display_name": "tiny",
            "enabled": True,
            "transcoder_sets": [{"name": "tc", "description": "", "n_layers": 4, "is_default": True}],
        }
    ]


def test_pages_render_the_same_data_as_the_api(sqlite_url, make_stack):
    stack = make_stack(sqlite_url, tracer=FakeTracer(steps=1))
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    job = stack.submit(stack.client, "Rendered prompt", slug="rendered")
    stack.process_jobs()
    stack.wait_for_status(stack.client, job["id"], "done")
    index = stack.new_client().get("/")
    assert (
        index.status_code == 200
        and "Rendered prompt" in index.text
        and 'href="/graph/rendered"' in index.text
    )
    page = stack.new_client().get("/graph/rendered")
    assert page.status_code == 200 and "/api/graphs/rendered/data" in page.text


def test_static_files_are_served_from_the_frontend_folder(tmp_path, sqlite_url, make_stack):
    frontend = tmp_path / "frontend"
    (frontend / "static").mkdir(parents=True)
    (frontend / "static" / "app.js").write_text("export const x = 1;\n")
    stack = make_stack(sqlite_url, frontend_dir=frontend)
    r = stack.client.get("/static/app.js")
    assert r.status_code == 200 and "export const x" in r.text
    assert stack.client.get("/static/missing.js").status_code == 404
