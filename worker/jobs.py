"""Job functions: what RQ (or a server thread) calls. They take ids, never objects."""

from __future__ import annotations

from worker import context as worker_context
from worker.context import WorkerContext
from worker.runner import run_trace


def run_trace_job(job_id: str, *, context: WorkerContext | None = None) -> str:
    """Run job `job_id` (trace its prompt and store the graph, or run its interventions and store
    the result, or run the demo setup; the job row's `kind` says which); a no-op if the job is
    not queued."""
    from glassbox.setup.job import is_setup_job, run_setup_job

    ctx = context or worker_context.current()
    if is_setup_job(ctx.sessions, job_id):  # a setup job retried through the API
        return run_setup_job(ctx, job_id)
    return run_trace(ctx, job_id)
