"""Operations pages: every job for administrators, the setup's progress, the featured graphs.

- `/admin/jobs` (administrators): every job, newest first, with status, progress, worker and
  error. Its Retry and Cancel buttons (frontend/static/pages/admin-jobs.js) call the jobs API
  (`POST /api/jobs/{id}/retry|cancel`); the setup job's "Run setup" button calls
  `POST /api/admin/setup`; its "Add a model" form calls `POST /api/admin/models`, which queues
  a model-add job (download, convert, check, register: worker/model_add.py). JSON twin:
  `/api/admin/jobs`.
- `/setup` (everyone): the setup job's progress and steps, reloaded every few seconds while it
  runs; links to the featured graphs once they exist. JSON twin: `/api/setup`.
- `/api/featured`: the featured graphs that exist, in their order.

Like the other HTML pages, each page renders the dict its JSON twin returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from firststart import store as setup_store
from firststart.auto import SetupRunner, launch_setup
from firststart.featured import FEATURED
from firststart.job import latest_setup_job
from persistence.errors import Conflict
from persistence.tables import Job, JobStatus, User
from server.deps import AdminUser, OptionalUser, ServicesDep, SessionDep
from server.errors import problems
from server.routes.params import Limit, Offset
from server.schemas import JobPublic, ModelAddCreate
from server.services.model_add import submit_model_add
from server.strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
SETUP_REFRESH_S = 5
HIDDEN_ERROR = "the setup failed; an administrator can read why on /admin/jobs"


class AdminJob(JobPublic):
    """A job as administrators see it: whose, on which worker, last heartbeat."""

    owner: str | None
    worker_name: str | None
    heartbeat_at: datetime | None

    @classmethod
    def of_job(cls, job: Job, owner: str | None) -> AdminJob:
        base = JobPublic.of(job).model_dump()
        return cls(**base, owner=owner, worker_name=job.worker_name, heartbeat_at=job.heartbeat_at)


class SetupStep(BaseModel):
    name: str
    title: str
    status: str
    detail: str = ""
    seconds: float | None = None


class FeaturedGraph(BaseModel):
    key: str
    title: str
    prompt: str
    slug: str
    url: str


class SetupStatus(BaseModel):
    """The newest setup job (null before the first one) and its steps, and the featured graphs."""

    job: JobPublic | None
    steps: list[SetupStep]
    featured: list[FeaturedGraph]


# ---- JSON ------------------------------------------------------------------------------------


@router.get("/api/admin/jobs", tags=["admin"], responses=problems(401, 403))
def list_all_jobs(
    admin: AdminUser,
    session: SessionDep,
    services: ServicesDep,
    status: JobStatus | None = None,
    kind: str | None = Query(
        default=None, pattern="^[a-z][a-z-]{0,31}$", description="trace, intervention, setup or model-add"
    ),
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[AdminJob]:
    """Every user's jobs and the setup job, newest first (administrators)."""
    return _all_jobs(
        session, status=status, kind=kind, limit=min(limit, services.settings.max_page_size), offset=offset
    )


@router.post("/api/admin/setup", status_code=202, tags=["admin"], responses=problems(401, 403, 409))
def run_setup(request: Request, admin: AdminUser, session: SessionDep) -> SetupStatus:
    """Start the setup now in this server (administrators): resumes a failed or cancelled setup,
    or checks a finished one again; steps whose result is there are skipped."""
    runner: SetupRunner | None = getattr(request.app.state, "setup_runner", None)
    if runner is not None and runner.is_alive():
        raise Conflict(f"the setup is running (job {runner.job_id})")
    session.close()
    if launch_setup(request.app) is None:
        raise Conflict("another process is running the setup job")
    return _setup_status(session, admin)


@router.post("/api/admin/models", status_code=202, tags=["admin"], responses=problems(401, 403, 409))
def add_model(
    body: ModelAddCreate, admin: AdminUser, session: SessionDep, services: ServicesDep
) -> JobPublic:
    """Download, check and register a model and a transcoder set, as a job (administrators).
    A misspelt reference is a 422 and a registered model or set a 409; an identical request
    that is queued or running answers with that job (`deduplicated: true`). The model is
    listed (GET /api/models, the new-graph form) once the job is done."""
    submitted = submit_model_add(session, services.queue, admin, body)
    return JobPublic.of(submitted.job, deduplicated=submitted.deduplicated)


@router.get("/api/setup", tags=["setup"], responses=problems(401))
def setup_status(session: SessionDep, user: OptionalUser) -> SetupStatus:
    """The first-start setup's job and steps, and the featured graphs made so far."""
    return _setup_status(session, user)


@router.get("/api/featured", tags=["graphs"])
def featured_graphs(session: SessionDep) -> list[FeaturedGraph]:
    """The featured example graphs that exist (made by the setup), in their order."""
    return _featured(session)


# ---- pages -----------------------------------------------------------------------------------


@router.get("/admin/jobs", response_class=HTMLResponse, include_in_schema=False)
def admin_jobs_page(
    request: Request, admin: AdminUser, session: SessionDep, services: ServicesDep
) -> Response:
    """Jobs for administrators (JSON twin: GET /api/admin/jobs)."""
    jobs = _all_jobs(session, status=None, kind=None, limit=services.settings.max_page_size, offset=0)
    context = {
        "jobs": [j.model_dump(mode="json") for j in jobs],
        "active": any(j.status in ACTIVE for j in jobs),
        "user": admin.username,
    }
    return services.templates.TemplateResponse(request, "server/admin_jobs.html", context)


@router.get("/setup", response_class=HTMLResponse, include_in_schema=False)
def setup_page(request: Request, user: OptionalUser, session: SessionDep, services: ServicesDep) -> Response:
    """The setup's progress (JSON twin: GET /api/setup)."""
    status = _setup_status(session, user).model_dump(mode="json")
    job = status["job"]
    context = {
        "status": status,
        "active": job is not None and job["status"] in ("queued", "running"),
        "user": user.username if user else None,
    }
    response = services.templates.TemplateResponse(request, "server/setup.html", context)
    if context["active"]:
        response.headers["Refresh"] = str(SETUP_REFRESH_S)  # reload while it runs, without a script
    return response


# ---- helpers ---------------------------------------------------------------------------------


def _all_jobs(
    session: Session, *, status: JobStatus | None, kind: str | None, limit: int, offset: int
) -> list[AdminJob]:
    stmt = select(Job)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    jobs = list(session.scalars(stmt.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)))
    owner_ids = {j.owner_id for j in jobs if j.owner_id is not None}
    names: dict[int, str] = {}
    if owner_ids:
        names = dict(session.execute(select(User.id, User.username).where(User.id.in_(owner_ids))).all())
    return [AdminJob.of_job(j, names.get(j.owner_id) if j.owner_id else None) for j in jobs]


def _setup_status(session: Session, user: User | None) -> SetupStatus:
    job = latest_setup_job(session)
    if job is None:
        return SetupStatus(job=None, steps=[], featured=_featured(session))
    public = JobPublic.of(job)
    if public.error and not (user is not None and user.is_admin):
        public.error = HIDDEN_ERROR
    steps: list[dict[str, Any]] = job.request.get("steps", [])
    return SetupStatus(job=public, steps=[SetupStep(**s) for s in steps], featured=_featured(session))


def _featured(session: Session) -> list[FeaturedGraph]:
    by_slug = {item.slug: item for item in FEATURED}
    return [
        FeaturedGraph(
            key=by_slug[r.slug].key,
            title=by_slug[r.slug].title,
            prompt=r.prompt,
            slug=r.slug,
            url=f"/graph/{r.slug}",
        )
        for r in setup_store.list_featured(session)
    ]
