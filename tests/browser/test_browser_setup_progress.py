"""The first-start setup's banner on the home and new-graph pages, against a setup job in progress
(its row written here as the setup job writes it): the step, the progress bar and the time left;
the new-graph form does not trace before a transcoder set exists and opens by itself once one
does; when the setup ends the banner goes and the featured graph appears, without a reload."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from gbx_browser_pages import screenshot
from playwright.sync_api import expect
from sqlalchemy import delete, select, update

from firststart.featured import get_featured
from firststart.job import REQUEST_KEY, SETUP_KIND, setup_request
from firststart.pipeline import StepState
from firststart.plan import SetupPlan
from persistence.db import make_engine, make_sessionmaker
from persistence.graphs import GraphOrigin, decompress, store_graph
from persistence.tables import (
    GraphBlob,
    GraphRecord,
    GraphSource,
    Job,
    JobStatus,
    ModelEntry,
    Visibility,
    utcnow,
)

pytestmark = pytest.mark.browser

BARE = "tiny-before-its-transcoders"  # registered before its set, as the setup's model step does
STEPS = (
    ("model", "Demo model", 200.0),
    ("corpus", "Text corpus", 220.0),
    ("transcoders", "Transcoders", 960.0),
    ("featured", "Featured graphs", 110.0),
    ("features", "Feature dashboards", 610.0),
)
WAIT_MS = 25_000  # a page polls every 5 s; the server reads the job row again every 2 s


def steps_at(current: str, fraction: float, *, pace_s: float) -> tuple[list[StepState], float]:
    """The step states with `current` running at `fraction` (paced over the last `pace_s` seconds)
    and the steps before it finished; and the job's overall progress."""
    now, states, before, seen = time.time(), [], 0.0, False
    for name, title, weight in STEPS:
        state = StepState(name, title, weight=weight)
        if name == current:
            seen = True
            state.status, state.started_at = "running", now - pace_s - 10
            state.paced_at, state.paced_from = now - pace_s, 0.01
        elif not seen:
            state.status, state.seconds = ("skipped", 0.0) if name == "corpus" else ("done", weight)
            before += weight
        states.append(state)
    weight = dict((n, w) for n, _, w in STEPS)[current]
    return states, (before + fraction * weight) / sum(w for _, _, w in STEPS)


class SetupJobRow:
    """A running setup job's row, with the heartbeat a live setup writes (the app's reaper
    fails a running job whose heartbeat stops)."""

    def __init__(self, sessions: Any):
        self.sessions, self.id = sessions, uuid.uuid4().hex
        self.plan = SetupPlan()  # trains its transcoders, like the default first start
        self.stop = threading.Event()
        self.beat = threading.Thread(target=self._beat, daemon=True)

    def start(self, current: str, fraction: float, phase: str) -> None:
        states, progress = steps_at(current, fraction, pace_s=90)
        now = utcnow()
        with self.sessions() as session:
            session.add(
                Job(
                    id=self.id,
                    kind=SETUP_KIND,
                    request_key=REQUEST_KEY,
                    request=setup_request(self.plan, states),
                    status=JobStatus.RUNNING,
                    progress=progress,
                    phase=phase,
                    attempt=1,
                    worker_name="setup@browser-test:1",
                    started_at=now,
                    heartbeat_at=now,
                )
            )
            session.commit()
        self.beat.start()

    def move(self, current: str, fraction: float, phase: str) -> None:
        states, progress = steps_at(current, fraction, pace_s=20)
        self._set(request=setup_request(self.plan, states), progress=progress, phase=phase)

    def finish(self) -> None:
        self.stop.set()
        self._set(status=JobStatus.DONE, progress=1.0, phase="done", finished_at=utcnow())

    def remove(self) -> None:
        self.stop.set()
        with self.sessions() as session:
            session.execute(delete(Job).where(Job.id == self.id))
            session.commit()

    def _set(self, **values: Any) -> None:
        with self.sessions() as session:
            session.execute(update(Job).where(Job.id == self.id).values(heartbeat_at=utcnow(), **values))
            session.commit()

    def _beat(self) -> None:
        while not self.stop.wait(1.0):
            with self.sessions() as session:
                session.execute(
                    update(Job)
                    .where(Job.id == self.id, Job.status == JobStatus.RUNNING)
                    .values(heartbeat_at=utcnow())
                )
                session.commit()


@pytest.fixture
def sessions(app) -> Iterator[Any]:
    engine = make_engine(app.settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def enable_only(sessions: Any, names: list[str]) -> list[str]:
    """Enable the models `names`, disable every other; returns the names enabled before."""
    with sessions() as session:
        before = list(session.scalars(select(ModelEntry.name).where(ModelEntry.enabled.is_(True))))
        session.execute(update(ModelEntry).values(enabled=ModelEntry.name.in_(names)))
        session.commit()
    return before


def store_as_featured(sessions: Any, slug_from: str, key: str) -> None:
    """A copy of graph `slug_from` stored as the setup stores a featured graph."""
    item = get_featured(key)
    with sessions() as session:
        source = session.scalar(select(GraphRecord).where(GraphRecord.slug == slug_from))
        doc = json.loads(decompress(session.get(GraphBlob, source.id).data_gz))
        origin = GraphOrigin(
            source=GraphSource.TRACE,
            owner_id=None,
            visibility=Visibility.PUBLIC,
            model_id=source.model_id,
            transcoder_set_id=source.transcoder_set_id,
            parameters={"featured": {"key": item.key, "title": item.title}},
        )
        store_graph(session, doc, slug=item.slug, origin=origin)
        session.commit()


def test_pages_follow_the_setup_and_open_tracing_when_a_transcoder_set_exists(
    app, admin, users, tiny_dirs, texas_graph, sessions, open_page
):
    model_dir, tc_dir = tiny_dirs
    featured = get_featured("addition")
    r = admin.post("/api/models", json={"name": BARE, "source": str(model_dir), "display_name": "Tiny, bare"})
    assert r.status_code == 201, r.text
    enabled_before = enable_only(sessions, [BARE])  # no transcoder set anywhere: nothing can be traced
    row = SetupJobRow(sessions)
    try:
        row.start("transcoders", 0.31, "3/5 Transcoders: training step 212/780, FVU 0.214")
        # the server reads the job row again every 2 s: open the page once it reports this setup
        deadline = time.monotonic() + WAIT_MS / 1000
        while admin.get("/api/setup/status").json()["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)

        home = open_page("/")
        banner = home.locator("#setup-banner")
        expect(banner.locator("#setup-headline")).to_have_text(
            "Setting up the demo content: step 3 of 5, Transcoders."
        )
        expect(banner.locator("#setup-percent")).to_have_text(re.compile(r"^\d+% done$"))
        expect(banner.locator("#setup-time-left")).to_have_text(re.compile(r"^, about \d+ min left$"))
        expect(banner.locator("#setup-activity")).to_have_text("training step 212/780, FVU 0.214")
        assert 0.3 < float(banner.locator("#setup-bar").evaluate("el => el.value")) < 0.4  # time-weighted
        tracing = banner.locator("li[data-key=tracing]")
        expect(tracing).to_have_text(
            re.compile(r"^Tracing opens when the transcoders are trained, in about \d+ min\.$")
        )
        expect(tracing).to_have_attribute("data-ready", "false")
        home.evaluate("window.gbxNotReloaded = true")
        screenshot(home, "setup-banner-home")

        form = open_page("/new", user="ada")
        expect(form.locator("#setup-headline")).to_contain_text("step 3 of 5, Transcoders")
        submit = form.get_by_role("button", name="Trace graph")
        expect(submit).to_be_disabled()
        form.get_by_role("textbox", name="Prompt").fill("The capital of")
        form.locator("#trace-form").evaluate("f => f.requestSubmit()")  # what Enter in a field does
        expect(form.locator("#setup-announce")).to_contain_text("Tracing is not open yet")
        assert form.url.endswith("/new")
        expect(submit).to_be_disabled()
        screenshot(form, "setup-banner-new")

        # the transcoders are trained and registered; the featured graphs are being traced
        row.move("featured", 0.3, "4/5 Featured graphs: tracing addition (attribution)")
        body = {"name": "tc", "source": str(tc_dir), "is_default": True, "n_layers": 2}
        r = admin.post(f"/api/models/{BARE}/transcoder-sets", json=body)
        assert r.status_code == 201, r.text

        expect(form.locator("#transcoders option")).to_have_count(1, timeout=WAIT_MS)  # drawn again
        expect(form.get_by_role("textbox", name="Prompt")).to_have_value("The capital of")  # kept
        expect(submit).to_be_enabled()
        expect(form.locator("li[data-key=tracing]")).to_have_attribute("data-ready", "true")
        expect(home.locator("#setup-headline")).to_have_text(
            "Setting up the demo content: step 4 of 5, Featured graphs.", timeout=WAIT_MS
        )
        expect(home.locator("li[data-key=tracing]")).to_have_text(
            "Tracing is open: a transcoder set is registered."
        )
        expect(home.locator("li[data-key=featured]")).to_have_text(
            re.compile(r"^The featured graphs appear once traced, in (about \d+ min|under a minute)\.$")
        )

        # the setup ends: the banner goes and the featured graph shows, on the same page
        store_as_featured(sessions, texas_graph["slug"], featured.key)
        row.finish()
        expect(home.locator("#setup-banner")).to_be_hidden(timeout=WAIT_MS)
        expect(home.locator("#featured li a", has_text=featured.title)).to_have_attribute(
            "href", f"/graph/{featured.slug}", timeout=WAIT_MS
        )
        assert home.evaluate("window.gbxNotReloaded") is True
        expect(form.locator("#setup-banner")).to_be_hidden(timeout=WAIT_MS)
        expect(submit).to_be_enabled()
    finally:
        row.remove()
        with sessions() as session:
            session.execute(delete(GraphRecord).where(GraphRecord.slug == featured.slug))
            session.commit()
        enable_only(sessions, enabled_before)  # later modules see the session's models again
