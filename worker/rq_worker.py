"""`glassbox worker`: an RQ worker that keeps models loaded across jobs.

RQ's default worker forks a fresh process per job, which would reload the model every time
(and CUDA does not survive fork). `GlassboxWorker` runs jobs in its own process instead, with
its `WorkerContext` (database, tracer and its model cache) installed for the job functions.
Run as many as you like, on as many machines, against the same Redis and database.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue, SimpleWorker

from persistence.db import make_engine, make_sessionmaker
from persistence.settings import Settings
from worker import context as worker_context
from worker.cache import ModelCache
from worker.context import WorkerContext, default_worker_name, unique_worker_name
from worker.maintenance import MaintenanceLoop
from worker.queue import RQJobQueue
from worker.tracing import EngineTracer, Tracer

log = logging.getLogger(__name__)


class GlassboxWorker(SimpleWorker):
    """An RQ worker that runs jobs in-process with a long-lived `WorkerContext`."""

    def __init__(self, queues: list[Queue], *, context: WorkerContext, **kwargs: object):
        super().__init__(queues, name=context.name.replace("@", "-"), **kwargs)  # type: ignore[arg-type]
        self.context = context

    def execute_job(self, job, queue):  # type: ignore[no-untyped-def]
        worker_context.install(self.context)
        return super().execute_job(job, queue)


def build_context(
    settings: Settings, *, tracer: Tracer | None = None, name: str | None = None
) -> WorkerContext:
    """The worker's context: sessions on DATABASE_URL and the engine tracer with its cache,
    under `name` (default `worker@host:pid`) made unique to this start."""
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url()))
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    if tracer is None:
        cache = ModelCache(capacity=settings.model_cache_size, device=settings.device, dtype=settings.dtype)
        tracer = EngineTracer(cache)
    return WorkerContext(settings, sessions, tracer, unique_worker_name(name or default_worker_name()))


def run_worker(
    settings: Settings,
    *,
    tracer: Tracer | None = None,
    name: str | None = None,
    burst: bool = False,
    max_jobs: int | None = None,
) -> bool:
    """Work the trace queue until stopped (or until empty with `burst`); True if it ran jobs."""
    if not settings.redis_url:
        raise ValueError(
            "REDIS_URL is not set: separate workers need Redis. Without it the server runs jobs itself."
        )
    context = build_context(settings, tracer=tracer, name=name)
    worker_context.install(context)
    connection = Redis.from_url(settings.redis_url)
    job_queue = RQJobQueue(connection, settings.queue_name, job_timeout_s=settings.job_timeout_s)
    maintenance = MaintenanceLoop(
        context.sessions,
        job_queue,
        interval_s=settings.maintenance_interval_s,
        heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
        requeue_grace_s=settings.requeue_grace_s,
    )
    worker = GlassboxWorker([job_queue.queue], context=context, connection=connection)
    maintenance.start()
    log.info("worker %s on queue %s", context.name, settings.queue_name)
    try:
        return worker.work(burst=burst, max_jobs=max_jobs, with_scheduler=False)
    finally:
        maintenance.stop()
        connection.close()
        context.sessions.kw["bind"].dispose()
