"""The first-start setup on a tiny model: every step for real (training, dashboards, traces),
the job row's progress and step states, resuming, cancelling, the server's auto-start, and
the pages. Only the downloads are replaced (the tiny model and corpus are local files)."""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import glassbox
from firststart import engine as setup_engine
from firststart import store as setup_store
from firststart.auto import SetupRunner, missing_content
from firststart.engine import EngineHooks, default_hooks
from firststart.featured import FEATURED, get_featured, measure
from firststart.job import (
    INTERRUPTED,
    claim_setup_job,
    execute_setup,
    is_setup_job,
    latest_setup_job,
    run_setup_job,
)
from firststart.pipeline import SetupError, StepState, run_pipeline
from firststart.plan import SetupPlan
from firststart.status import read_setup_progress
from firststart.steps import SetupContext, build_steps
from firststart.training import train_transcoders
from glassbox.features import BuildConfig
from glassbox.testing import WORDS, make_random_transcoders_dir, make_tiny_model_dir
from persistence import registry
from persistence.db import make_engine, make_sessionmaker
from persistence.graphs import SLUG_PATTERN
from persistence.migrate import upgrade
from persistence.settings import Settings
from persistence.tables import Feature, GraphBlob, Job, JobStatus

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = dict(
    k=4,
    seq_len=16,
    batch_size=4,
    tokens=600,
    budget_s=None,
    aux_k=8,
    warmup_steps=2,
    calib_batches=1,
    model_dtype="float32",
    compute_dtype="float32",
)
TINY_FEATURES = BuildConfig(
    seq_len=16,
    batch_size=4,
    top_k=5,
    window_before=4,
    window_after=2,
    samples_per_band=3,
    examples_per_group=4,
    n_logits=8,
)
PASSWORD = "correct horse battery"


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Gemma 3 folder, a text corpus over its vocabulary, random transcoders for it."""
    root = tmp_path_factory.mktemp("setup-assets")
    model_dir = make_tiny_model_dir(root / "tiny-gemma", "gemma3")
    rng = random.Random(0)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 70))) for _ in range(120)]
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(docs))
    tc_dir = make_random_transcoders_dir(root / "tiny-tc", model_dir, activation="topk", k=4, d_transcoder=16)
    return {"model": model_dir, "corpus": corpus, "transcoders": tc_dir}


def tiny_trace(prompt: str, **kwargs: Any) -> Any:
    """The real trace; "Fact :" in front because the tiny word-level tokenizer reads most
    featured prompts as unknown words, and a prompt starting with <unk> gets no BOS."""
    return setup_engine.trace(f"Fact : {prompt}", **kwargs)


def tiny_hooks(calls: Counter, **overrides: Any) -> EngineHooks:
    """The real engine on tiny sizes; downloads fail loudly (nothing is downloaded here)."""

    def load_model(source: str, dtype: str, device: str | None) -> Any:
        calls["load_model"] += 1
        return glassbox.load_model(source, dtype="float32", device="cpu")

    def train(model: Any, **kwargs: Any) -> Path:
        calls["train"] += 1
        return train_transcoders(model, **kwargs, options=TINY_TRAIN)

    def build(model: Any, tset: Any, **kwargs: Any) -> Path:
        calls["features"] += 1
        return setup_engine.build_features(model, tset, **kwargs, config=TINY_FEATURES)

    def trace(prompt: str, **kwargs: Any) -> Any:
        calls["trace"] += 1
        return tiny_trace(prompt, **kwargs)

    def no_download(*args: Any) -> None:
        raise AssertionError(f"the setup tried to download {args}")

    hooks = replace(
        default_hooks(),
        load_model=load_model,
        train_transcoders=train,
        build_features=build,
        trace=trace,
        pull_model=no_download,
        build_corpus=no_download,
    )
    return replace(hooks, **overrides)


@dataclass
class Env:
    home: Path
    url: str
    sessions: Any
    plan: SetupPlan
    calls: Counter

    def run(self, hooks: EngineHooks | None = None, *, plan: SetupPlan | None = None) -> tuple[str, str]:
        """Claim and run the setup job in this thread; returns (job id, outcome)."""
        plan = plan or self.plan
        claim = claim_setup_job(
            self.sessions, plan, worker_name=f"setup@test:{os.getpid()}", heartbeat_timeout_s=30
        )
        assert claim is not None
        outcome = execute_setup(
            claim,
            plan,
            sessions=self.sessions,
            hooks=hooks or tiny_hooks(self.calls),
            home=self.home,
            heartbeat_interval_s=0.05,
            timeout_s=600,
        )
        return claim.job_id, outcome

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job


def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets: dict[str, Path], **plan: Any) -> Env:
    home = tmp_path / "home"
    monkeypatch.setenv("GLASSBOX_HOME", str(home))
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    values: dict[str, Any] = dict(
        model=str(assets["model"]),
        corpus=str(assets["corpus"]),
        train_features=16,
        feature_tokens=600,
        max_feature_nodes=20,
        device="cpu",
    )
    values.update(plan)
    return Env(home, url, make_sessionmaker(engine), SetupPlan(**values), Counter())


def step_statuses(job: Job) -> dict[str, str]:
    return {s["name"]: s["status"] for s in job.request["steps"]}


# ---- the pipeline runner ---------------------------------------------------------------------


class FakeStep:
    def __init__(self, name: str, weight: float, *, done: bool = False, makes: bool = True):
        self.name, self.title, self.weight = name, name.title(), weight
        self.done, self.makes, self.ran = done, makes, 0

    def is_done(self) -> bool:
        return self.done

    def run(self, progress: Any) -> None:
        self.ran += 1
        progress(0.5, "half way")
        self.done = self.makes


def test_pipeline_weights_progress_and_skips_finished_steps():
    steps = [FakeStep("a", 1.0, done=True), FakeStep("b", 2.0), FakeStep("c", 1.0)]
    seen: list[tuple[float, str]] = []
    states = run_pipeline(steps, report=lambda f, phase, s: seen.append((round(f, 3), phase)))
    assert [s.status for s in states] == ["skipped", "done", "done"]
    assert [step.ran for step in steps] == [0, 1, 1]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert (0.5, "2/3 B: half way") in seen  # a's weight 1 of 4, then half of b's 2
    assert (0.875, "3/3 C: half way") in seen


def test_pipeline_refuses_a_step_that_leaves_nothing_behind():
    states: list[list[StepState]] = []
    with pytest.raises(SetupError, match="'b' ran but its result is not there"):
        run_pipeline(
            [FakeStep("a", 1), FakeStep("b", 1, makes=False)], report=lambda f, p, s: states.append(s)
        )
    assert [s.status for s in states[-1]] == ["done", "failed"]


# ---- the whole setup on a tiny model ---------------------------------------------------------


def test_setup_trains_builds_traces_and_a_second_run_skips_everything(tmp_path, monkeypatch, assets):
    env = make_env(tmp_path, monkeypatch, assets)
    mid_run: dict[str, Any] = {}

    def watching_trace(prompt: str, **kwargs: Any) -> Any:
        """On the 5th featured prompt, read the job row as the setup page would."""
        env.calls["trace"] += 1
        if env.calls["trace"] == 5:
            kwargs["progress"](0.5, "watched")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and "tracing" not in (mid_run.get("phase") or ""):
                job = latest_job(env)
                mid_run.update(
                    status=job.status, progress=job.progress, phase=job.phase, steps=step_statuses(job)
                )
                time.sleep(0.05)
            with env.sessions() as session:
                mid_run["view"] = read_setup_progress(session)
            mid_run["dashboards built"] = (env.plan.features_dir(env.home) / "manifest.json").exists()
        return tiny_trace(prompt, **kwargs)

    assert set(missing_content(env.sessions, env.plan, tiny_hooks(env.calls))) == {
        "model",
        "transcoders",
        "features",
        "featured",
    }  # the corpus is a local file
    job_id, outcome = env.run(tiny_hooks(env.calls, trace=watching_trace))
    assert outcome == "done"
    assert env.calls["train"] == 1 and env.calls["features"] == 1 and env.calls["trace"] == len(FEATURED)

    # progress was visible while it ran
    assert mid_run["status"] == JobStatus.RUNNING and 0.5 < mid_run["progress"] < 1.0
    assert mid_run["phase"].startswith("4/5 Featured graphs: tracing") and "featured" in mid_run["steps"]
    assert mid_run["steps"]["transcoders"] == "done" and mid_run["steps"]["featured"] == "running"
    view = mid_run["view"]  # what the home and new-graph pages showed then
    assert (view.state, view.can_trace, view.step_number, view.step_count) == ("running", True, 4, 5)
    assert view.step_title == "Featured graphs" and view.eta_s is not None and view.time_left
    assert [(m.key, m.ready) for m in view.milestones] == [
        ("tracing", True),
        ("featured", False),
        ("dashboards", False),
    ]
    assert not mid_run["dashboards built"]  # the featured graphs come first

    job = env.job(job_id)
    assert (job.status, job.progress, job.phase, job.error) == (JobStatus.DONE, 1.0, "done", None)
    assert job.duration_s is None  # not a trace: stays out of the trace-duration histogram
    assert step_statuses(job) == {
        "model": "done",
        "corpus": "skipped",
        "transcoders": "done",
        "featured": "done",
        "features": "done",
    }

    with env.sessions() as session:
        tset = setup_store.find_transcoder_set(session, "tiny-gemma", "setup-plt-16")
        assert tset is not None and tset.is_default and tset.n_layers == 2
        assert tset.source == str(env.home / "transcoders" / "tiny-gemma--setup-plt-16")
        n_dashboards = setup_store.count_dashboards(session, tset.id)
        one = session.scalar(select(Feature).where(Feature.transcoder_set_id == tset.id).limit(1))
        assert one is not None and one.auto_label
        featured = setup_store.list_featured(session)
        assert [g.slug for g in featured] == [item.slug for item in FEATURED]
        for record, item in zip(featured, FEATURED, strict=True):
            assert record.prompt == f"Fact : {item.prompt}" and record.model_id == tset.model_id
            assert record.transcoder_set_id == tset.id and record.owner_id is None
            assert record.parameters["featured"]["key"] == item.key and record.node_count > 0
            doc = json.loads(gzip.decompress(session.get(GraphBlob, record.id).data_gz))
            assert doc["metadata"]["slug"] == item.slug and doc["metadata"]["scan"] == "tiny-gemma"
            assert record.parameters["featured"]["labelled"] is True
            assert feature_clerps(doc) == labels_of(session, tset.id, doc)  # written in after the dashboards
    assert n_dashboards > 0

    # the second run finds everything and makes nothing twice
    env.calls.clear()
    assert missing_content(env.sessions, env.plan, tiny_hooks(env.calls)) == []
    second, outcome = env.run()
    assert outcome == "done" and second != job_id
    assert step_statuses(env.job(second)) == dict.fromkeys(
        ("model", "corpus", "transcoders", "features", "featured"), "skipped"
    )
    assert env.calls["train"] == env.calls["features"] == env.calls["trace"] == env.calls["load_model"] == 0
    with env.sessions() as session:
        assert len(setup_store.list_featured(session)) == len(FEATURED)
        assert setup_store.count_dashboards(session, tset.id) == n_dashboards

    # retried through the API (POST /api/jobs/{id}/retry queues it), a queue worker runs it
    with env.sessions() as session:
        session.execute(update(Job).where(Job.id == second).values(status=JobStatus.QUEUED, attempt=2))
        session.commit()
    worker = SimpleNamespace(
        sessions=env.sessions, name="worker@test:1", settings=Settings(job_heartbeat_interval_s=0.05)
    )
    assert is_setup_job(env.sessions, second) and not is_setup_job(env.sessions, "0" * 32)
    assert run_setup_job(worker, second) == "done"
    assert (env.job(second).status, env.job(second).worker_name) == (JobStatus.DONE, "worker@test:1")
    assert run_setup_job(worker, second) == "skipped"  # no longer queued


def feature_clerps(doc: dict[str, Any]) -> dict[tuple[int, int], str]:
    """(layer, index) -> clerp of the graph JSON's transcoder features that have one."""
    return {
        (int(n["layer"]), int(n["node_id"].split("_")[1])): n["clerp"]
        for n in doc["nodes"]
        if n["feature_type"] == "cross layer transcoder" and n["clerp"]
    }


def labels_of(session: Any, tset_id: int, doc: dict[str, Any]) -> dict[tuple[int, int], str]:
    """The stored auto labels of the graph JSON's transcoder features."""
    keys = {
        (int(n["layer"]), int(n["node_id"].split("_")[1]))
        for n in doc["nodes"]
        if n["feature_type"] == "cross layer transcoder"
    }
    rows = session.scalars(select(Feature).where(Feature.transcoder_set_id == tset_id))
    return {(f.layer, f.index): f.auto_label for f in rows if (f.layer, f.index) in keys and f.auto_label}


def test_the_steps_open_tracing_first_and_weigh_their_expected_seconds(tmp_path, monkeypatch, assets):
    env = make_env(tmp_path, monkeypatch, assets, train_budget_s=900.0, feature_tokens=100_000)
    ctx = SetupContext(plan=env.plan, sessions=env.sessions, hooks=tiny_hooks(env.calls), home=env.home)
    steps = build_steps(ctx)
    assert [s.name for s in steps] == ["model", "corpus", "transcoders", "featured", "features"]
    weights = {s.name: s.weight for s in steps}
    assert weights["transcoders"] > 900 > weights["features"] > weights["featured"]  # seconds
    given = replace(env.plan, transcoders=str(assets["transcoders"]))
    assert build_steps(replace(ctx, plan=given))[2].weight < 60  # a given set is only checked


def test_tracing_opens_before_the_dashboards_and_the_featured_graphs_get_labels_after(
    tmp_path, monkeypatch, assets
):
    env = make_env(tmp_path, monkeypatch, assets, transcoders=str(assets["transcoders"]))
    slugs = [item.slug for item in FEATURED]
    seen: dict[str, Any] = {}

    def watching_build(model: Any, tset: Any, **kwargs: Any) -> Path:
        """As the dashboards start: what people can do on the site meanwhile."""
        with env.sessions() as session:
            entry = registry.get_model(session, "tiny-gemma")
            seen["default set"] = registry.get_transcoder_set(session, entry, None).name  # what a trace gets
            seen["featured"] = [g.slug for g in setup_store.list_featured(session)]
            seen["unlabelled"] = [g.slug for g in setup_store.unlabelled_featured(session, slugs)]
            seen["dashboards"] = session.scalar(select(Feature.id).limit(1))
            seen["view"] = read_setup_progress(session)
        env.calls["features"] += 1
        return setup_engine.build_features(model, tset, **kwargs, config=TINY_FEATURES)

    job_id, outcome = env.run(tiny_hooks(env.calls, build_features=watching_build))
    assert outcome == "done" and env.calls["features"] == 1
    assert seen["default set"] == "tiny-tc" and seen["dashboards"] is None
    assert seen["featured"] == slugs and seen["unlabelled"] == slugs  # traced, labels to come
    view = seen["view"]
    assert view.can_trace and view.featured == len(FEATURED) and view.step_title == "Feature dashboards"
    assert [(m.key, m.ready) for m in view.milestones] == [
        ("tracing", True),
        ("featured", True),
        ("dashboards", False),
    ]
    assert view.milestones[2].eta_s is not None and view.milestones[2].eta_s >= 0

    with env.sessions() as session:
        assert setup_store.unlabelled_featured(session, slugs) == []
        tset = setup_store.find_transcoder_set(session, "tiny-gemma", "tiny-tc")
        record = next(r for r in setup_store.list_featured(session) if r.slug == "featured-jordan")
        blob = session.get(GraphBlob, record.id)
        doc = json.loads(gzip.decompress(blob.data_gz))
        labels = feature_clerps(doc)
        assert labels and labels == labels_of(session, tset.id, doc)
        assert record.size_bytes == len(gzip.decompress(blob.data_gz))
        done = read_setup_progress(session)
        assert (done.show, done.state) == (False, "idle")  # the pages drop the banner

        # stopped after the dashboards were stored, before this graph got its labels
        for node in doc["nodes"]:
            if node["feature_type"] == "cross layer transcoder":
                node["clerp"] = ""
        blob.data_gz = gzip.compress(json.dumps(doc).encode())
        record.parameters = {**record.parameters, "featured": {"key": "jordan", "title": "x"}}
        session.commit()
    assert missing_content(env.sessions, env.plan, tiny_hooks(env.calls)) == ["features"]
    env.calls.clear()
    again, outcome = env.run()
    assert outcome == "done" and step_statuses(env.job(again))["features"] == "done"
    assert env.calls["features"] == env.calls["trace"] == env.calls["load_model"] == 0  # labels only
    with env.sessions() as session:
        record = next(r for r in setup_store.list_featured(session) if r.slug == "featured-jordan")
        doc = json.loads(gzip.decompress(session.get(GraphBlob, record.id).data_gz))
        assert feature_clerps(doc) == labels and record.parameters["featured"]["labelled"] is True


def latest_job(env: Env) -> Job:
    with env.sessions() as session:
        job = latest_setup_job(session)
        assert job is not None
        return job


def test_a_failed_step_fails_the_job_with_its_message_and_the_next_run_resumes(tmp_path, monkeypatch, assets):
    env = make_env(tmp_path, monkeypatch, assets, transcoders=str(assets["transcoders"]))

    def broken_build(*args: Any, **kwargs: Any) -> Path:
        raise SetupError("the disk is full")

    job_id, outcome = env.run(tiny_hooks(env.calls, build_features=broken_build))
    assert outcome == "failed"
    job = env.job(job_id)
    assert job.status == JobStatus.FAILED and job.error == "the disk is full"
    assert step_statuses(job) == {
        "model": "done",
        "corpus": "skipped",
        "transcoders": "done",
        "featured": "done",  # traced before the dashboards
        "features": "failed",
    }

    again, outcome = env.run()
    assert (again, outcome) == (job_id, "done")
    job = env.job(job_id)
    assert job.attempt == 2 and job.error is None
    assert step_statuses(job) == {
        "model": "skipped",
        "corpus": "skipped",
        "transcoders": "skipped",
        "featured": "skipped",
        "features": "done",
    }
    assert env.calls["trace"] == len(FEATURED)  # the featured graphs of the first run are kept
    assert env.calls["train"] == 0  # given transcoders are registered, never trained
    with env.sessions() as session:
        tset = setup_store.find_transcoder_set(session, "tiny-gemma", "tiny-tc")
        assert tset is not None and tset.source == str(assets["transcoders"])


def blocking_trace(started: threading.Event, calls: Counter) -> Any:
    """A trace that keeps reporting progress until the setup is stopped (20 s at most)."""

    def trace(prompt: str, *, progress: Any, **kwargs: Any) -> Any:
        calls["trace"] += 1
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            progress(0.1, "blocked")
            time.sleep(0.02)
        raise AssertionError("the setup was not stopped")

    return trace


def test_stopping_the_server_interrupts_the_setup_and_the_next_start_takes_over(
    tmp_path, monkeypatch, assets
):
    env = make_env(tmp_path, monkeypatch, assets, transcoders=str(assets["transcoders"]))
    started = threading.Event()
    claim = claim_setup_job(env.sessions, env.plan, worker_name="setup@test:1", heartbeat_timeout_s=30)
    runner = SetupRunner(
        claim,
        env.plan,
        sessions=env.sessions,
        home=env.home,
        heartbeat_interval_s=0.05,
        timeout_s=600,
        hooks=tiny_hooks(env.calls, trace=blocking_trace(started, env.calls)),
    )
    runner.start()
    assert started.wait(30)
    runner.stop(timeout_s=10)
    assert runner.outcome == "stopped"
    job = env.job(claim.job_id)
    assert job.status == JobStatus.FAILED and job.error == INTERRUPTED

    # a live holder keeps it; a dead one on this machine (killed server) does not
    with env.sessions() as session:
        row = session.get(Job, claim.job_id)
        row.status, row.heartbeat_at = JobStatus.RUNNING, row.finished_at
        row.worker_name = "setup@elsewhere:1"
        session.commit()
    assert (
        claim_setup_job(env.sessions, env.plan, worker_name="setup@test:2", heartbeat_timeout_s=3600) is None
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with env.sessions() as session:
        session.get(Job, claim.job_id).worker_name = f"setup@{socket.gethostname()}:{dead.pid}"
        session.commit()
    taken = claim_setup_job(env.sessions, env.plan, worker_name="setup@test:2", heartbeat_timeout_s=3600)
    assert taken is not None and taken.job_id == claim.job_id and taken.attempt == 2


# ---- inside the server -----------------------------------------------------------------------


def embedded_app(
    monkeypatch: pytest.MonkeyPatch, home: Path, setup: dict[str, Any], hooks: EngineHooks
) -> Any:
    """The app on the embedded default (SQLite in the home folder), migrated like `glassbox serve`,
    with the setup settings `setup`."""
    from server.app import create_app

    for name in ("DATABASE_URL", "GLASSBOX_DATABASE_URL", "REDIS_URL", "GLASSBOX_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLASSBOX_HOME", str(home))
    settings = Settings(
        secret_key="setup-tests",
        password_hash_time_cost=1,
        password_hash_memory_kib=8,
        job_heartbeat_interval_s=0.1,
        maintenance_interval_s=0.5,
        device="cpu",
        **setup,
    )
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    engine.dispose()
    app = create_app(settings)
    app.state.setup_hooks = hooks
    return app


def tiny_setup_settings(assets: dict[str, Path], **values: Any) -> dict[str, Any]:
    return dict(
        setup_model=str(assets["model"]),
        setup_transcoders=str(assets["transcoders"]),
        setup_corpus=str(assets["corpus"]),
        setup_feature_tokens=1000,
        setup_max_feature_nodes=20,
        **values,
    )


def wait_for_setup(client: TestClient, status: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get("/api/setup").json()
        if body["job"] and body["job"]["status"] == status:
            return body
        assert time.monotonic() < deadline, f"setup did not reach {status}: {body}"
        time.sleep(0.1)


def test_first_start_runs_the_setup_job_that_pages_show_and_admins_cancel_and_resume(
    tmp_path, monkeypatch, assets, caplog
):
    caplog.set_level(logging.INFO, logger="firststart")
    calls: Counter = Counter()
    started = threading.Event()
    hooks = tiny_hooks(calls, trace=blocking_trace(started, calls))
    app = embedded_app(monkeypatch, tmp_path / "home", tiny_setup_settings(assets), hooks)
    with TestClient(app, base_url="https://testserver") as client:
        first = client.get("/api/setup").json()  # the row exists before the first request
        assert first["job"]["status"] in ("running", "done") and first["featured"] == []
        assert "setting up the demo content (missing: model, transcoders, featured, features)" in caplog.text
        assert started.wait(30)
        page = client.get("/setup")
        assert page.status_code == 200 and page.headers["refresh"] == "5"

        # the home and new-graph pages show where it is (tracing is open: the set was registered)
        app.state.setup_status.ttl_s = 0  # read the database on every request here
        deadline = time.monotonic() + 10  # the phase column follows the steps' states within 0.1 s
        while (status := client.get("/api/setup/status")).json()["activity"] == "":
            assert time.monotonic() < deadline, status.json()
            time.sleep(0.05)
        assert status.status_code == 200 and status.headers["cache-control"] == "public, max-age=2"
        body = status.json()
        assert (body["show"], body["state"], body["can_trace"]) == (True, "running", True)
        assert (body["step_number"], body["step_count"], body["step_title"]) == (4, 5, "Featured graphs")
        assert body["headline"] == "Setting up the demo content: step 4 of 5, Featured graphs."
        assert body["activity"] == "tracing opposite-en (blocked)"
        assert 0 < body["progress"] < 1 and body["eta_s"] > 0 and body["time_left"].endswith(" left")
        assert [(m["key"], m["ready"]) for m in body["milestones"]] == [
            ("tracing", True),
            ("featured", False),
            ("dashboards", False),
        ]
        for path in ("/", "/new"):
            html = client.get(path).text
            assert 'id="setup-banner"' in html and body["headline"] in html, path
            assert body["milestones"][1]["text"].split(",")[0] in html
            assert '<script type="module" src="/static/pages/setup-progress.js"></script>' in html
        assert "Featured graphs" in page.text and first["job"]["id"] in page.text

        assert client.get("/admin/jobs").status_code == 401
        assert client.post("/api/admin/setup").status_code == 401
        login(client, "admin")  # the first account is an administrator
        listed = client.get("/api/admin/jobs", params={"kind": "setup"}).json()
        assert [(j["id"], j["kind"], j["status"]) for j in listed] == [
            (first["job"]["id"], "setup", "running")
        ]
        admin_page = client.get("/admin/jobs")
        assert admin_page.status_code == 200 and 'data-kind="setup"' in admin_page.text
        assert client.get("/static/pages/admin-jobs.js").headers["content-type"].startswith("text/javascript")

        cancelled = client.post(f"/api/jobs/{first['job']['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert app.state.setup_runner.join(30) == "stopped"
        idle = client.get("/api/setup/status").json()  # no setup runs and tracing works: no banner
        assert (idle["show"], idle["state"], idle["can_trace"]) == (False, "idle", True)
        assert 'id="setup-banner"' not in client.get("/").text
        assert 'data-action="setup"' in client.get("/admin/jobs").text  # its button: run the setup again

        app.state.setup_hooks = tiny_hooks(calls)
        resumed = client.post("/api/admin/setup")
        assert resumed.status_code == 202 and resumed.json()["job"]["id"] == first["job"]["id"]
        done = wait_for_setup(client, "done")
        assert done["job"]["attempt"] == 2 and done["job"]["progress"] == 1.0
        assert [s["status"] for s in done["steps"]] == ["skipped", "skipped", "skipped", "done", "done"]
        assert [f["slug"] for f in done["featured"]] == [item.slug for item in FEATURED]
        assert client.get("/api/featured").json() == done["featured"]
        setup_page = client.get("/setup")
        assert "refresh" not in setup_page.headers and 'href="/graph/featured-jordan"' in setup_page.text
        assert client.get("/graph/featured-jordan").status_code == 200
        data = client.get("/api/graphs/featured-jordan/data")
        assert data.status_code == 200 and data.json()["metadata"]["prompt"].endswith(FEATURED[6].prompt)

    # the next start finds the demo content and starts nothing
    caplog.clear()
    app = embedded_app(monkeypatch, tmp_path / "home", tiny_setup_settings(assets), tiny_hooks(calls))
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/api/setup").json()["job"]["id"] == first["job"]["id"]
        assert app.state.setup_runner is None and "demo content is in place" in caplog.text


def login(client: TestClient, username: str) -> None:
    assert (
        client.post("/api/auth/register", json={"username": username, "password": PASSWORD}).status_code
        == 201
    )
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


@pytest.mark.parametrize("case", ["auto_setup off", "not the embedded default"])
def test_no_setup_job_when_turned_off_or_not_embedded(tmp_path, monkeypatch, assets, case):
    hooks = tiny_hooks(Counter())
    setup = tiny_setup_settings(assets, auto_setup=case != "auto_setup off")
    app = embedded_app(monkeypatch, tmp_path / "home", setup, hooks)
    if case == "not the embedded default":
        app.state.services.settings = app.state.services.settings.model_copy(
            update={"database_url": app.state.services.settings.resolved_database_url()}
        )
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/api/setup").json() == {"job": None, "steps": [], "featured": []}
        assert app.state.setup_runner is None
        status = client.get("/api/setup/status").json()  # nothing can be traced: the pages say why
        assert (status["show"], status["state"], status["can_trace"]) == (True, "none", False)
        page = client.get("/new").text
        assert 'id="setup-banner"' in page and "No transcoder set is registered yet" in page
        assert "No setup has run here" in client.get("/setup").text


# ---- settings, logs, featured prompts --------------------------------------------------------


def test_setup_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GLASSBOX_AUTO_SETUP", "false")
    monkeypatch.setenv("GLASSBOX_SETUP_TRANSCODERS", "/srv/tc")
    monkeypatch.setenv("GLASSBOX_LOG_FORMAT", "json")
    monkeypatch.setenv("GLASSBOX_DEVICE", "cuda")
    s = Settings()
    assert (s.auto_setup, s.log_format) == (False, "json")
    plan = SetupPlan.from_settings(s)
    assert (plan.transcoders, plan.transcoders_name, plan.device, plan.trains) == (
        "/srv/tc",
        "tc",
        "cuda",
        False,
    )
    assert SetupPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_json_logs_are_one_object_per_line():
    code = (
        "import logging; from persistence.logs import configure_logging\n"
        "configure_logging(fmt='json', level='info')\n"
        "logging.getLogger('glassbox.x').info('hello %s', 'world', extra={'job_id': 'j1'})\n"
        "logging.getLogger('uvicorn.access').info('%s - \"%s %s HTTP/%s\" %d',"
        " '1.2.3.4:5', 'GET', '/healthz', '1.1', 200)\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    logging.getLogger('glassbox.y').exception('boom')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(r["level"], r["logger"], r["msg"]) for r in lines] == [
        ("INFO", "glassbox.x", "hello world"),
        ("INFO", "uvicorn.access", '1.2.3.4:5 - "GET /healthz HTTP/1.1" 200'),
        ("ERROR", "glassbox.y", "boom"),
    ]
    assert lines[0]["job_id"] == "j1" and lines[0]["ts"].endswith("Z") and lines[0]["pid"] > 0
    assert (lines[1]["method"], lines[1]["path"], lines[1]["status"]) == ("GET", "/healthz", 200)
    assert "ZeroDivisionError" in lines[2]["exc"]


def test_featured_prompts_have_unique_slugs_and_measure_on_a_model(assets):
    assert len({item.key for item in FEATURED}) == len(FEATURED) == 10
    assert all(re.match(SLUG_PATTERN, item.slug) for item in FEATURED)
    assert all(item.expected for item in FEATURED)  # every example has an answer to check
    assert get_featured("dallas") == get_featured("tokyo")  # a key of earlier setups' plans
    model = glassbox.load_model(assets["model"], device="cpu")
    rows = measure(model, k=3)
    assert [r.key for r in rows] == [item.key for item in FEATURED]
    assert all(len(r.top) == 3 and 0 < r.top[0][1] <= 1 for r in rows)
    assert all(r.expected_prob is not None and 0 <= r.expected_prob <= 1 for r in rows)


@pytest.mark.slow
def test_featured_prompts_suit_the_demo_model(gemma_model):
    """What glassbox/examples.py says about each prompt, checked on Gemma 3 270M: every
    expected token is the model's top 1, and the unknown-entity frame answers a known name."""
    rows = {r.key: r for r in measure(gemma_model, k=5)}
    for item in FEATURED:
        assert rows[item.key].top[0][0] == item.expected, (item.key, rows[item.key].top)
    batkin = get_featured("batkin")
    known = replace(batkin, key="known", prompt=batkin.prompt.replace("Michael Batkin", "Michael Jordan"),
                    expected=" basketball")
    (row,) = measure(gemma_model, (known,), k=3)
    assert row.top[0][0] == " basketball", row.top
