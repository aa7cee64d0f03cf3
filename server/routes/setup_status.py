"""GET /api/setup/status: the first-start setup's progress as the home and new-graph pages show
it (frontend/templates/_setup_progress.html, static/pages/setup-progress.js). Public and the
same for everyone; served from a per-process cache (server/services/setup_status.py), so pages
polling it cost at most one database read every two seconds per process. The setup job itself,
its steps and error (for administrators) are at GET /api/setup.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from server.services.setup_status import SetupStatusCache
from server.strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute)


class SetupMilestone(BaseModel):
    key: str = Field(description="tracing, featured or dashboards")
    ready: bool
    eta_s: float | None = Field(description="Seconds until it is ready; null when ready or not known.")
    text: str = Field(
        description='What people read, e.g. "Tracing opens when the transcoders are trained, '
        'in about 12 min."'
    )


class SetupStatusPublic(BaseModel):
    """The setup's progress. `state`: running or queued (a setup job is active); stopped (the last
    setup failed or was cancelled) or none (no setup job), both only while no transcoder set
    exists; idle (nothing to show: no setup runs and tracing is possible)."""

    show: bool = Field(description="Whether pages show the setup banner.")
    state: str
    can_trace: bool = Field(description="A transcoder set is registered, so graphs can be traced.")
    headline: str
    progress: float | None = Field(description="Overall fraction done, 0 to 1 (while a setup job is active).")
    step_number: int | None
    step_count: int | None
    step_title: str | None
    activity: str = Field(description="What the current step is doing.")
    eta_s: float | None = Field(description="Seconds until the whole setup is done (an estimate).")
    time_left: str | None = Field(description='The same in words, e.g. "about 25 min left".')
    milestones: list[SetupMilestone]
    featured: int = Field(description="How many featured graphs exist.")
    poll_s: int = Field(description="How often pages ask again while the banner shows.")


@router.get("/api/setup/status", tags=["setup"])
async def setup_status(request: Request, response: Response) -> SetupStatusPublic:
    """The first-start setup's current step, progress, time left, and when tracing, the featured
    graphs and the feature dashboards become available (public; at most two seconds old)."""
    cache: SetupStatusCache = request.app.state.setup_status
    progress = cache.fresh() or await run_in_threadpool(cache.get)
    response.headers["Cache-Control"] = "public, max-age=2"
    return SetupStatusPublic.model_validate(asdict(progress))
