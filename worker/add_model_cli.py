"""`glassbox add-model MODEL --transcoders REF`: add a model and a transcoder set from a terminal.

The same job as the admin page's "Add a model" form (worker/model_add.py), run in the
foreground by this process: it shows on /admin/jobs with its progress while it runs, and a
failed one can be retried there (a worker then runs it). It needs the database, so it is an
application command (the `glassbox.commands` entry point group), not one of the engine's
`glassbox models` commands, which work without the app.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from persistence.db import SessionFactory

PRINT_EVERY_S = 2.0
INTERRUPTED = "interrupted: `glassbox add-model` was stopped; run it again, or Retry on /admin/jobs"


def add_model_command(
    model: Annotated[
        str, typer.Argument(help="Hub id (owner/name), demo model name, or a folder (relative is fine here).")
    ],
    transcoders: Annotated[
        str,
        typer.Option(
            "--transcoders",
            "-t",
            help="Hub reference (owner/repo[/folder][@revision], hf://...), alias (gemma, llama) or folder.",
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Registry name (default: from MODEL).")] = None,
    transcoders_name: Annotated[
        str | None, typer.Option(help="Name of the set (default: from --transcoders).")
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown in the pages.")] = None,
    migrate: Annotated[bool, typer.Option(help="Run `alembic upgrade head` first.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
) -> None:
    """Download a model and a transcoder set, check that they fit each other, and register
    both, so the new-graph form offers the model. Database: DATABASE_URL, or the embedded
    SQLite file in GLASSBOX_HOME (docs/deployment.md, "Adding models and transcoder sets")."""
    from glassbox.errors import GlassboxError
    from persistence.db import make_engine, make_sessionmaker
    from persistence.errors import ServerError
    from persistence.jobs import fail_job
    from persistence.logs import configure_logging
    from persistence.migrate import upgrade
    from persistence.settings import Settings
    from worker.context import default_worker_name
    from worker.model_add import ModelAddRequest, execute_model_add, start_here

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=log_level)
    try:
        request = ModelAddRequest.build(
            model=_absolute_if_folder(model),
            transcoders=_absolute_if_folder(transcoders),
            name=name,
            transcoders_name=transcoders_name,
            display_name=display_name,
        )
    except GlassboxError as exc:
        _fail(str(exc), code=2)
    engine = make_engine(settings.resolved_database_url())
    try:
        if migrate:
            upgrade(engine)
        sessions = make_sessionmaker(engine)
        try:
            claim = start_here(sessions, request, worker_name=default_worker_name("cli"))
        except ServerError as exc:
            _fail(exc.message)
        typer.echo(f"job {claim.job_id}: {request.to_request()['prompt']}", err=True)
        try:
            outcome = execute_model_add(
                claim,
                request,
                sessions=sessions,
                heartbeat_interval_s=settings.job_heartbeat_interval_s,
                timeout_s=settings.job_timeout_s,
                echo=_Printer(),
            )
        except KeyboardInterrupt:
            fail_job(sessions, claim, INTERRUPTED)
            raise typer.Exit(130) from None
        if outcome != "done":
            _fail(_job_error(sessions, claim.job_id) or f"the job ended {outcome}")
    finally:
        engine.dispose()
    typer.echo(f"registered model {request.name} with transcoder set {request.transcoders_name}")


def _absolute_if_folder(ref: str) -> str:
    """An existing folder as an absolute path (the job row must work from any folder)."""
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.is_dir() else ref


def _job_error(sessions: SessionFactory, job_id: str) -> str | None:
    from persistence.tables import Job

    with sessions() as session:
        job = session.get(Job, job_id)
        return job.error if job is not None else None


def _fail(message: str, *, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


class _Printer:
    """Progress lines on stderr: at each new phase, and every PRINT_EVERY_S seconds within one."""

    def __init__(self) -> None:
        self.phase = ""
        self.printed_at = 0.0

    def __call__(self, phase: str, fraction: float) -> None:
        now = time.monotonic()
        if phase == self.phase and now - self.printed_at < PRINT_EVERY_S:
            return
        self.phase, self.printed_at = phase, now
        typer.echo(f"{100 * fraction:5.1f}%  {phase}", err=True)
