"""`glassbox setup` (also `python -m firststart`): make the demo content in the foreground.

For operators and for docker compose (a one-shot service against Postgres), where the server
does not set up on its own. The job row is the same one the server would make: it shows on
/setup and /admin/jobs, and a second run skips every step that is done.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

log = logging.getLogger(__name__)


def setup_command(
    transcoders: Annotated[
        str | None,
        typer.Option(
            help="Transcoder folder or hub id (default: GLASSBOX_SETUP_TRANSCODERS; unset: train a set)."
        ),
    ] = None,
    train_budget_s: Annotated[
        float | None, typer.Option(min=1, help="Training seconds (default: GLASSBOX_SETUP_TRAIN_BUDGET_S).")
    ] = None,
    feature_tokens: Annotated[
        int | None, typer.Option(min=1000, help="Dashboard tokens (default: GLASSBOX_SETUP_FEATURE_TOKENS).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only list what is missing; exit 1 if anything is.")
    ] = False,
    migrate: Annotated[bool, typer.Option(help="Run `alembic upgrade head` first.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Pull the demo model, get transcoders, build feature dashboards and trace the featured
    graphs, skipping what is done. Settings: docs/configuration.md and docs/deployment.md."""
    from firststart.auto import missing_content
    from firststart.engine import default_hooks
    from firststart.job import INTERRUPTED, claim_setup_job, execute_setup
    from firststart.plan import SetupPlan
    from glassbox.home import glassbox_home
    from persistence.db import make_engine, make_sessionmaker
    from persistence.jobs import fail_job
    from persistence.logs import configure_logging
    from persistence.migrate import upgrade
    from persistence.settings import Settings
    from worker.context import default_worker_name

    overrides = {
        "setup_transcoders": transcoders,
        "setup_train_budget_s": train_budget_s,
        "setup_feature_tokens": feature_tokens,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(fmt=settings.log_format, level=log_level)
    engine = make_engine(settings.resolved_database_url())
    if migrate:
        upgrade(engine)
    sessions = make_sessionmaker(engine)
    plan = SetupPlan.from_settings(settings)
    hooks = default_hooks()
    missing = missing_content(sessions, plan, hooks)
    typer.echo(f"missing: {', '.join(missing)}" if missing else "the demo content is in place")
    if check or not missing:
        raise typer.Exit(1 if check and missing else 0)
    claim = claim_setup_job(
        sessions,
        plan,
        worker_name=default_worker_name("setup"),
        heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
    )
    if claim is None:
        typer.secho("error: another process is running the setup job (see /admin/jobs)", err=True, fg="red")
        raise typer.Exit(1)
    try:
        outcome = execute_setup(
            claim,
            plan,
            sessions=sessions,
            hooks=hooks,
            home=glassbox_home(),
            heartbeat_interval_s=settings.job_heartbeat_interval_s,
            timeout_s=settings.setup_timeout_s,
        )
    except KeyboardInterrupt:
        fail_job(sessions, claim, INTERRUPTED)
        raise typer.Exit(130) from None
    finally:
        engine.dispose()
    typer.echo(f"setup job {claim.job_id}: {outcome}")
    raise typer.Exit(0 if outcome == "done" else 1)
