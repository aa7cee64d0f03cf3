"""The setup's progress as the pages show it: time left per step (paced by the running step's
own progress, not fooled by a resumed step), the sentences of the banner, and the per-process
cache of GET /api/setup/status. The whole setup and the endpoint are in tests/test_setup.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from firststart.pipeline import StepState, time_left
from firststart.status import describe
from persistence.tables import JobStatus
from server.services import setup_status

NOW = 1_000_000.0
WEIGHTS = {"model": 200.0, "corpus": 220.0, "transcoders": 960.0, "featured": 110.0, "features": 610.0}
TITLES = {
    "model": "Demo model",
    "corpus": "Text corpus",
    "transcoders": "Transcoders",
    "featured": "Featured graphs",
    "features": "Feature dashboards",
}
TOTAL = sum(WEIGHTS.values())


def states(current: str | None, **running: Any) -> list[StepState]:
    """The five steps: those before `current` done (the corpus skipped), `current` running with
    the fields `running`, the rest pending."""
    out, seen = [], False
    for name, weight in WEIGHTS.items():
        state = StepState(name, TITLES[name], weight=weight)
        if name == current:
            state.status, seen = "running", True
            for key, value in running.items():
                setattr(state, key, value)
        elif not seen and current is not None:
            state.status = "skipped" if name == "corpus" else "done"
        out.append(state)
    return out


def overall(step: str, fraction: float) -> float:
    """The job's overall progress with `step` at `fraction` (the steps before it finished)."""
    before = 0.0
    for name, weight in WEIGHTS.items():
        if name == step:
            return (before + fraction * weight) / TOTAL
        before += weight
    raise KeyError(step)


def test_time_left_goes_by_the_running_steps_pace_and_the_expected_seconds_after_it():
    rows = states("transcoders", started_at=NOW - 120, paced_at=NOW - 90, paced_from=0.01)
    left = time_left(rows, overall("transcoders", 0.31), now=NOW)
    assert left.current == 2 and left.current_fraction == pytest.approx(0.31)
    # 30% of the step in 90 s: 69% left takes 207 s; then the featured graphs and dashboards
    assert left.seconds == pytest.approx([0, 0, 207, 110, 610])
    assert left.until_end_of(2) == pytest.approx(207) and left.total == pytest.approx(927)


def test_a_resumed_step_is_not_taken_for_a_fast_one():
    """Training resumed from a checkpoint at 50%: 5% more in 10 s does not mean 9 s are left."""
    rows = states("transcoders", started_at=NOW - 12, paced_at=NOW - 10, paced_from=0.5)
    left = time_left(rows, overall("transcoders", 0.55), now=NOW)
    expected = 0.45 * WEIGHTS["transcoders"]  # 432 s
    paced = 10 * 0.45 / 0.05  # 90 s, from the progress since the resumed start
    assert paced < left.seconds[2] < expected
    assert left.seconds[2] == pytest.approx(paced / 6 + expected * 5 / 6)  # 5% of 30% measured


def test_before_a_step_reports_progress_its_expected_seconds_count_down():
    rows = states("features", started_at=NOW - 100)
    left = time_left(rows, overall("features", 0.0), now=NOW)
    assert left.seconds == pytest.approx([0, 0, 0, 0, 510])
    late = time_left(states("features", started_at=NOW - 5000), overall("features", 0.0), now=NOW)
    assert late.seconds[4] == pytest.approx(61)  # over its time: a tenth of the estimate, not 0


def job(status: JobStatus, steps: list[StepState] | None, *, progress: float = 0.0, phase: str = "") -> Any:
    plan = {"transcoders": None, "train_budget_s": 900.0}
    request = {"plan": plan, "steps": [s.to_dict() for s in steps or []]}
    return SimpleNamespace(status=status, request=request, progress=progress, phase=phase)


def test_a_running_setup_says_its_step_the_time_left_and_when_tracing_opens():
    rows = states("transcoders", started_at=NOW - 120, paced_at=NOW - 90, paced_from=0.01)
    phase = "3/5 Transcoders: training step 212/780, FVU 0.214"
    view = describe(
        job(JobStatus.RUNNING, rows, progress=overall("transcoders", 0.31), phase=phase),
        can_trace=False,
        featured=0,
        now=NOW,
    )
    assert view.show and view.state == "running" and not view.can_trace
    assert view.headline == "Setting up the demo content: step 3 of 5, Transcoders."
    assert (view.step_number, view.step_count, view.step_title) == (3, 5, "Transcoders")
    assert view.activity == "training step 212/780, FVU 0.214"
    assert view.eta_s == 927 and view.time_left == "about 15 min left"
    assert [(m.key, m.ready, m.eta_s) for m in view.milestones] == [
        ("tracing", False, 207),
        ("featured", False, 317),
        ("dashboards", False, 927),
    ]
    assert [m.text for m in view.milestones] == [
        "Tracing opens when the transcoders are trained, in about 3 min.",
        "The featured graphs appear once traced, in about 5 min.",
        "Feature dashboards and labels fill in when the dashboards are built, in about 15 min; "
        "graphs traced before then get them too.",
    ]


def test_while_the_dashboards_build_tracing_and_the_featured_graphs_are_ready():
    rows = states("features", started_at=NOW - 100, paced_at=NOW - 50, paced_from=0.1)
    phase = "5/5 Feature dashboards: dashboards: stream"
    view = describe(
        job(JobStatus.RUNNING, rows, progress=overall("features", 0.4), phase=phase),
        can_trace=True,
        featured=10,
        now=NOW,
    )
    assert view.show and view.can_trace and view.featured == 10
    assert [(m.key, m.ready) for m in view.milestones] == [
        ("tracing", True),
        ("featured", True),
        ("dashboards", False),
    ]
    assert view.milestones[0].text == "Tracing is open: a transcoder set is registered."
    assert view.milestones[2].eta_s == view.eta_s == 100  # 30% in 50 s: 60% left
    assert view.time_left == "about 2 min left" and view.activity == "dashboards: stream"


def test_no_banner_once_tracing_works_and_no_setup_runs_and_a_dead_end_explained_otherwise():
    done = describe(job(JobStatus.DONE, states(None)), can_trace=True, featured=10, now=NOW)
    assert (done.show, done.state) == (False, "idle")
    assert describe(None, can_trace=True, featured=0, now=NOW).show is False

    nothing = describe(None, can_trace=False, featured=0, now=NOW)
    assert (nothing.show, nothing.state, nothing.progress, nothing.poll_s) == (True, "none", None, 30)
    assert nothing.headline.startswith("No transcoder set is registered yet")

    failed = describe(job(JobStatus.FAILED, states("transcoders")), can_trace=False, featured=0, now=NOW)
    assert (failed.show, failed.state, failed.eta_s) == (True, "stopped", None)
    assert "start it again on /admin/jobs" in failed.headline
    assert failed.milestones[0].text == "Tracing opens when the transcoders are trained."

    starting = describe(job(JobStatus.RUNNING, None, phase="starting"), can_trace=False, featured=0, now=NOW)
    assert (starting.show, starting.headline, starting.eta_s) == (True, "Setting up the demo content.", None)


def test_a_phase_of_the_step_before_is_not_taken_for_the_running_steps_activity():
    rows = states("featured", started_at=NOW - 1)
    stale = "3/5 Transcoders: checking and registering"  # the phase column lags the states a moment
    view = describe(job(JobStatus.RUNNING, rows, phase=stale), can_trace=True, featured=0, now=NOW)
    assert (view.step_title, view.activity) == ("Featured graphs", "")


def test_the_status_is_read_once_per_ttl_for_everyone(monkeypatch):
    reads: list[int] = []
    answer = describe(None, can_trace=False, featured=0, now=NOW)

    def read(session: Any) -> Any:
        reads.append(1)
        return answer

    class Sessions:
        def __call__(self) -> Any:
            return self

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    clock = [0.0]
    monkeypatch.setattr(setup_status, "read_setup_progress", read)
    cache = setup_status.SetupStatusCache(Sessions(), ttl_s=2.0, clock=lambda: clock[0])
    assert cache.fresh() is None
    assert cache.get() is answer and cache.get() is answer and len(reads) == 1
    clock[0] = 1.9
    assert cache.fresh() is answer and len(reads) == 1
    clock[0] = 2.1
    assert cache.fresh() is None and cache.get() is answer and len(reads) == 2
    assert cache.for_page() == answer.to_dict()

    def broken(session: Any) -> Any:
        raise RuntimeError("database down")

    monkeypatch.setattr(setup_status, "read_setup_progress", broken)
    clock[0] = 10.0
    assert cache.for_page() is None  # the page renders without the banner
