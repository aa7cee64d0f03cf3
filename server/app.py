"""`create_app(settings)`: the FastAPI application and the services it runs on.

With REDIS_URL set, traces go to RQ workers (`glassbox worker`); without it, worker threads
inside this process run them. Either way the server runs the job maintenance (reaper and
requeue) in a background thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from redis import Redis

import glassbox
from firststart.auto import start_auto_setup, stop_setup
from persistence.db import SessionFactory, make_engine, make_sessionmaker
from persistence.settings import Settings
from server.admission import AdmissionMiddleware
from server.deps import AppServices
from server.errors import ErrorResponses, install_error_handlers
from server.metrics import make_registry
from server.middleware import SecurityHeadersMiddleware
from server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from server.routes import ROUTERS, admin_jobs, api_docs
from server.security import password_hasher
from server.services.preview import PreviewService
from server.services.setup_status import install_setup_status
from worker.cache import ModelCache
from worker.context import WorkerContext, default_worker_name
from worker.jobs import run_trace_job
from worker.maintenance import MaintenanceLoop
from worker.queue import JobQueue, RQJobQueue, ThreadJobQueue
from worker.tracing import EngineTracer, Tracer

log = logging.getLogger(__name__)

DESCRIPTION = """Attribution graphs for language models: queue traces, fetch graphs, label features.

Anyone may read public data. Writing needs an account: log in for a session cookie (then send
the `X-CSRF-Token` header on writes) or create an API key and send `Authorization: Bearer <key>`.
Errors are JSON: `{"error": {"code", "message", "details"}}`."""


def create_app(
    settings: Settings, *, tracer: Tracer | None = None, preview_cache: ModelCache | None = None
) -> FastAPI:
    """The application for `settings`. `tracer` replaces the engine tracer of in-process
    workers and `preview_cache` the models used for tokenization (both for tests)."""
    services = build_services(settings, tracer=tracer, preview_cache=preview_cache)
    app = FastAPI(
        title="Glassbox",
        version=glassbox.__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        responses=ErrorResponses,
        docs_url=None,  # served from the vendored Swagger UI and ReDoc (server.routes.api_docs)
        redoc_url=None,
    )
    app.state.services = services
    app.state.templates = services.templates
    install_setup_status(app)  # the setup's progress: GET /api/setup/status and the pages' banner
    install_error_handlers(app)
    app.add_middleware(AdmissionMiddleware, limit=settings.request_threads)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: also on the admission's 503s
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(admin_jobs.router)  # jobs admin page, setup progress, featured graphs
    app.include_router(api_docs.router)
    static = Path(settings.frontend_dir) / "static"
    app.mount("/static", StaticFiles(directory=static, check_dir=False), name="static")
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory server.app:app_from_env` (settings from the environment)."""
    return create_app(Settings())


def build_services(
    settings: Settings, *, tracer: Tracer | None = None, preview_cache: ModelCache | None = None
) -> AppServices:
    engine = make_engine(
        settings.resolved_database_url(),
        pool_size=settings.server_pool_size(),
        max_overflow=0,
        pool_timeout_s=settings.db_pool_timeout_s,
    )
    sessions = make_sessionmaker(engine)
    redis = _connect_redis(settings)
    worker_cache = None
    if redis is None and tracer is None:  # in-process workers run the engine
        if settings.torch_threads:  # as `glassbox worker` does
            import torch

            torch.set_num_threads(settings.torch_threads)
        worker_cache = ModelCache(
            capacity=settings.model_cache_size, device=settings.device, dtype=settings.dtype
        )
        tracer = EngineTracer(worker_cache)
    queue = _make_queue(settings, sessions, redis, tracer)
    limiter: RateLimiter = RedisRateLimiter(redis, settings.redis_prefix) if redis else MemoryRateLimiter()
    cache = preview_cache or _preview_cache(settings, worker_cache)
    return AppServices(
        settings=settings,
        engine=engine,
        sessions=sessions,
        queue=queue,
        limiter=limiter,
        preview=PreviewService(
            cache, max_prompt_tokens=settings.max_prompt_tokens, max_prompt_chars=settings.max_prompt_chars
        ),
        hasher=password_hasher(
            time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib
        ),
        secret_key=settings.resolved_secret_key(),
        templates=Jinja2Templates(directory=Path(settings.frontend_dir) / "templates"),
        metrics=make_registry(sessions),
        maintenance=MaintenanceLoop(
            sessions,
            queue,
            interval_s=settings.maintenance_interval_s,
            heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
            requeue_grace_s=settings.requeue_grace_s,
        ),
        redis=redis,
        upload_slots=threading.BoundedSemaphore(settings.upload_concurrency),
    )


def _connect_redis(settings: Settings) -> Redis | None:
    """The server's Redis client; short timeouts, so a hung Redis delays a request by at most
    GLASSBOX_REDIS_TIMEOUT_S (the queue and the rate limits then carry on without it)."""
    if not settings.redis_url:
        return None
    timeout = settings.redis_timeout_s
    return Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)


def _preview_cache(settings: Settings, worker_cache: ModelCache | None) -> ModelCache:
    """Models for tokenization previews: the in-process workers' own when they run on the
    preview device, so a model is loaded once (a first trace then finds the model that
    counted its tokens) and held once in memory; else a cache of their own."""
    if worker_cache is not None and worker_cache.resolved_device() == settings.preview_device:
        return worker_cache
    return ModelCache(capacity=settings.model_cache_size, device=settings.preview_device)


def _make_queue(
    settings: Settings, sessions: SessionFactory, redis: Redis | None, tracer: Tracer | None
) -> JobQueue:
    if redis is not None:
        return RQJobQueue(redis, settings.queue_name, job_timeout_s=settings.job_timeout_s)
    if tracer is None:
        raise ValueError("in-process workers need a tracer")
    context = WorkerContext(settings, sessions, tracer, default_worker_name("server"))
    return ThreadJobQueue(
        lambda job_id: run_trace_job(job_id, context=context), threads=settings.inprocess_workers
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services: AppServices = app.state.services
    # blocking handlers run in anyio's default thread pool; its size is what the database
    # pool was sized for (Settings.server_pool_size)
    anyio.to_thread.current_default_thread_limiter().total_tokens = services.settings.request_threads
    services.queue.start()
    services.maintenance.start()
    start_auto_setup(app)  # first start on the embedded default: the demo setup job (firststart)
    try:
        yield
    finally:
        stop_setup(app)
        services.maintenance.stop()
        services.queue.stop()
        if services.redis is not None:
            services.redis.close()
        services.engine.dispose()
