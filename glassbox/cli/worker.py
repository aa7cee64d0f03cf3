"""`glassbox worker`: run trace jobs from the Redis queue (needs REDIS_URL and DATABASE_URL)."""

from __future__ import annotations

from typing import Annotated

import typer


def worker_command(
    name: Annotated[str | None, typer.Option(help="Worker name (default: worker@host:pid).")] = None,
    burst: Annotated[bool, typer.Option(help="Quit when the queue is empty.")] = False,
    max_jobs: Annotated[int | None, typer.Option(min=1, help="Quit after this many jobs.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run traces for the server: keeps models loaded between jobs and uses the GPU when there
    is one. Start as many as you like, on any machine that reaches Redis and the database."""
    from glassbox.setup.logs import configure_logging
    from glassbox.setup.settings import SetupSettings
    from server.settings import Settings
    from worker.rq_worker import run_worker

    configure_logging(fmt=SetupSettings().log_format, level=log_level)
    settings = Settings()
    if not settings.redis_url:
        raise typer.BadParameter(
            "set REDIS_URL: workers take jobs from Redis (without it, `glassbox serve` runs jobs itself)"
        )
    run_worker(settings, name=name, burst=burst, max_jobs=max_jobs)
