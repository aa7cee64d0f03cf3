"""The setup's progress as the site shows it: the step it is on, how long is left, and when
tracing, the featured graphs and the feature dashboards become available.

Read from the setup job's row (its progress column, which the job writes every half second,
and its steps' states) and from the registry. The home and new-graph pages show it while the
setup runs, and while no transcoder set exists, since nothing can be traced before one does
(server: GET /api/setup/status).

    progress = read_setup_progress(session)
    progress.show, progress.headline, progress.time_left, [m.text for m in progress.milestones]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from firststart import store
from firststart.featured import FEATURED
from firststart.job import SETUP_KIND, latest_setup_job
from firststart.pipeline import StepState, TimeLeft, time_left
from persistence.tables import Job, JobStatus, ModelEntry, TranscoderSetEntry

POLL_S = 5  # how often a page asks again while the setup runs
IDLE_POLL_S = 30  # while none runs but nothing can be traced (an administrator may start one)

# What becomes possible at the end of which step, in the order the setup reaches them.
MILESTONES = (("tracing", "transcoders"), ("featured", "featured"), ("dashboards", "features"))


@dataclass(frozen=True)
class Milestone:
    key: str  # tracing | featured | dashboards
    ready: bool
    eta_s: float | None  # seconds until it is ready (None: ready, or not known)
    text: str


@dataclass(frozen=True)
class SetupProgress:
    """What a page shows. `state`: running or queued (a setup job is active); stopped (the last
    setup job failed or was cancelled) or none (no setup job), both only while no transcoder set
    exists; idle otherwise (nothing to show)."""

    show: bool
    state: str
    can_trace: bool
    headline: str
    progress: float | None = None
    step_number: int | None = None
    step_count: int | None = None
    step_title: str | None = None
    activity: str = ""
    eta_s: float | None = None
    time_left: str | None = None
    milestones: tuple[Milestone, ...] = ()
    featured: int = 0
    poll_s: int = POLL_S

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_setup_progress(session: Session, *, now: float | None = None) -> SetupProgress:
    """The setup's progress now. Cheap: the active setup job is found through the jobs' status
    index; the newest setup job of any status is read only while no transcoder set exists."""
    can_trace = (
        session.scalar(
            select(TranscoderSetEntry.id)
            .join(ModelEntry, TranscoderSetEntry.model_id == ModelEntry.id)
            .where(ModelEntry.enabled.is_(True))
            .limit(1)
        )
        is not None
    )
    job = session.scalar(
        select(Job)
        .where(Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)), Job.kind == SETUP_KIND)
        .order_by(Job.created_at.desc())
        .limit(1)
    )
    if job is None and not can_trace:
        job = latest_setup_job(session)
    featured = len(store.present_slugs(session, [item.slug for item in FEATURED]))
    return describe(job, can_trace=can_trace, featured=featured, now=time.time() if now is None else now)


def describe(job: Job | None, *, can_trace: bool, featured: int, now: float) -> SetupProgress:
    """The progress of setup job `job` (or None) as sentences and numbers (no database)."""
    active = job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    if not active and can_trace:
        return SetupProgress(show=False, state="idle", can_trace=True, headline="", featured=featured)
    raw: list[dict[str, Any]] = list((job.request or {}).get("steps") or []) if job is not None else []
    states = [StepState.from_dict(s) for s in raw]
    trains = job is not None and (job.request or {}).get("plan", {}).get("transcoders", "") is None
    if not active:
        headline = (
            "No transcoder set is registered yet, so no graph can be traced. An administrator adds "
            "one on /admin/jobs or runs the setup (glassbox setup)."
            if job is None
            else "The setup stopped before tracing could open. An administrator can start it again "
            "on /admin/jobs; /setup shows where it stopped."
        )
        return SetupProgress(
            show=True,
            state="none" if job is None else "stopped",
            can_trace=False,
            headline=headline,
            milestones=_milestones(states, None, can_trace=False, trains=trains),
            featured=featured,
            poll_s=IDLE_POLL_S,
        )
    assert job is not None
    paced = bool(raw) and all("weight" in s for s in raw)  # rows of older setups have no weights
    left = time_left(states, job.progress, now=now) if paced else None
    current = left.current if left is not None else _running(states)
    title = states[current].title if current is not None else None
    if job.status == JobStatus.QUEUED:
        headline = "The setup of the demo content is queued; it starts when a worker takes it."
    elif current is not None:
        headline = f"Setting up the demo content: step {current + 1} of {len(states)}, {title}."
    else:
        headline = "Setting up the demo content."
    return SetupProgress(
        show=True,
        state=job.status.value,
        can_trace=can_trace,
        headline=headline,
        progress=round(float(job.progress or 0.0), 4),
        step_number=current + 1 if current is not None else None,
        step_count=len(states) or None,
        step_title=title,
        activity=_activity(job.phase or "", current, states),
        eta_s=round(left.total) if left is not None else None,
        time_left=_left_text(left.total) if left is not None else None,
        milestones=_milestones(states, left, can_trace=can_trace, trains=trains),
        featured=featured,
    )


def _running(states: list[StepState]) -> int | None:
    return next((i for i, s in enumerate(states) if s.status == "running"), None)


def _activity(phase: str, current: int | None, states: list[StepState]) -> str:
    """What the running step is doing: the job's phase without its "3/5 Transcoders" label. The
    phase column is written a moment after the steps' states, so a phase of another step (the
    one before, just finished) says nothing about this one."""
    if current is None:
        return ""
    label = f"{current + 1}/{len(states)} {states[current].title}"
    return phase.removeprefix(f"{label}: ") if phase.startswith(f"{label}: ") else ""


def _milestones(
    states: list[StepState], left: TimeLeft | None, *, can_trace: bool, trains: bool
) -> tuple[Milestone, ...]:
    index = {s.name: i for i, s in enumerate(states)}
    out = []
    for key, step in MILESTONES:
        i = index.get(step)
        ready = can_trace if key == "tracing" else i is not None and states[i].status in ("done", "skipped")
        eta = round(left.until_end_of(i)) if not ready and left is not None and i is not None else None
        out.append(Milestone(key=key, ready=ready, eta_s=eta, text=_milestone_text(key, ready, eta, trains)))
    return tuple(out)


def _milestone_text(key: str, ready: bool, eta: float | None, trains: bool) -> str:
    when = f", {_in_text(eta)}" if eta is not None else ""
    if key == "tracing":
        if ready:
            return "Tracing is open: a transcoder set is registered."
        return f"Tracing opens when the transcoders are {'trained' if trains else 'checked'}{when}."
    if key == "featured":
        return "The featured graphs are ready." if ready else f"The featured graphs appear once traced{when}."
    if ready:
        return "Feature dashboards and labels are in."
    return (
        f"Feature dashboards and labels fill in when the dashboards are built{when}; "
        "graphs traced before then get them too."
    )


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _in_text(seconds: float) -> str:
    """Like "in about 12 min", "in under a minute"."""
    return "in under a minute" if seconds < 60 else f"in about {_minutes(seconds)}"


def _left_text(seconds: float) -> str:
    """Like "about 12 min left", "less than a minute left"."""
    return "less than a minute left" if seconds < 60 else f"about {_minutes(seconds)} left"
