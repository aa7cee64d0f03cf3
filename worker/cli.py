"""`glassbox worker`: run trace jobs from the Redis queue (needs REDIS_URL and DATABASE_URL)."""

from __future__ import annotations

from typing import Annotated

import typer


def worker_command(
    name: Annotated[
        str | None,
        typer.Option(help="Worker name; a random tag is added at each start (default worker.<tag>@host:pid)"),
    ] = None,
    burst: Annotated[bool, typer.Option(help="Quit when the queue is empty.")] = False,
    max_jobs: Annotated[int | None, typer.Option(min=1, help="Quit after this many jobs.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run traces for the server: keeps models loaded between jobs and uses the GPU when there
    is one. Start as many as you like, on any machine that reaches Redis and the database."""
    from persistence.logs import configure_logging
    from persistence.settings import Settings
    from worker.rq_worker import run_worker

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=log_level)
    if not settings.redis_url:
        raise typer.BadParameter(
            "set REDIS_URL: workers take jobs from Redis (without it, `glassbox serve` runs jobs itself)"
        )
    run_worker(settings, name=name, burst=burst, max_jobs=max_jobs)
