"""Job functions: what RQ (or a server thread) calls. They take ids, never objects.

Every job goes through one function, `run_trace_job`, and the job row's `kind` picks the
handler: trace and intervention jobs run here; other kinds come from the application layers
above the worker (the setup job), which name their handler in the `glassbox.job_kinds` entry
point group, so the worker runs them without importing those layers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points

from sqlalchemy import select

from persistence.tables import Job, JobKind
from worker import context as worker_context
from worker.context import WorkerContext
from worker.runner import run_trace

log = logging.getLogger(__name__)

JobHandler = Callable[[WorkerContext, str], str]
ENTRY_POINT_GROUP = "glassbox.job_kinds"


def run_trace_job(job_id: str, *, context: WorkerContext | None = None) -> str:
    """Run job `job_id` (trace its prompt and store the graph, or run its interventions and store
    the result, or a job of another registered kind); a no-op if the job is not queued."""
    ctx = context or worker_context.current()
    with ctx.sessions() as session:
        kind = session.scalar(select(Job.kind).where(Job.id == job_id))
    if kind is None or kind in (JobKind.TRACE, JobKind.INTERVENTION):
        return run_trace(ctx, job_id)
    handler = handlers().get(kind)
    if handler is None:
        log.error("job %s is of kind %r, which no installed package handles", job_id, kind)
        return "skipped"
    return handler(ctx, job_id)


@cache
def handlers() -> dict[str, JobHandler]:
    """The job kinds that installed packages register, by kind."""
    found: dict[str, JobHandler] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except ImportError:
            log.warning("cannot load the handler of job kind %r (%s)", entry.name, entry.value)
    return found
