"""Job functions: what RQ (or a server thread) calls. They take ids, never objects."""

from __future__ import annotations

from worker import context as worker_context
from worker.context import WorkerContext
from worker.runner import run_trace


def run_trace_job(job_id: str, *, context: WorkerContext | None = None) -> str:
    """Run job `job_id` (trace its prompt and store the graph, or run its interventions and store
    the result; the job row's `kind` says which); a no-op if the job is not queued."""
    return run_trace(context or worker_context.current(), job_id)
