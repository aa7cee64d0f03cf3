"""`glassbox serve`: migrate the database, then run the web server."""

from __future__ import annotations

from typing import Annotated

import typer


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    migrate: Annotated[bool, typer.Option(help="Run `alembic upgrade head` before starting.")] = True,
    processes: Annotated[
        int, typer.Option(min=1, help="Server processes (more than one needs REDIS_URL).")
    ] = 1,
    proxy_headers: Annotated[
        bool, typer.Option(help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a proxy).")
    ] = False,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="Proxies whose forwarded headers count.")
    ] = "127.0.0.1",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the web application and its API (settings: docs/configuration.md)."""
    import uvicorn

    from persistence.db import make_engine
    from persistence.logs import configure_logging
    from persistence.migrate import upgrade
    from persistence.settings import Settings
    from server.app import create_app

    settings = Settings()
    log_config = configure_logging(fmt=settings.log_format, level=log_level)
    if migrate:
        engine = make_engine(settings.resolved_database_url())
        upgrade(engine)
        engine.dispose()
    if processes > 1 and not settings.redis_url:
        raise typer.BadParameter(
            "--processes > 1 needs REDIS_URL (jobs and rate limits are shared through it)"
        )
    options = dict(
        host=host,
        port=port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level=log_level,
        log_config=log_config,
    )
    if processes > 1:
        uvicorn.run("server.app:app_from_env", factory=True, workers=processes, **options)
    else:
        uvicorn.run(create_app(settings), **options)
