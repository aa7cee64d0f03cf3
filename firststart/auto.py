"""Running the setup inside the server: at the first start, or when an administrator asks.

`start_auto_setup(app)` is called when the app starts. On the embedded default (no
DATABASE_URL, no REDIS_URL) with GLASSBOX_AUTO_SETUP on, and when some demo content is
missing, it claims the one setup job (so the row exists before the first request) and runs it
in a daemon thread of the server: traces keep their own worker threads meanwhile.
`stop_setup(app)` asks the thread to stop at its next progress report when the app stops;
the job is then marked interrupted and resumes at the next start.

The setup reads the app's own settings (GLASSBOX_SETUP_*); the app may carry
`app.state.setup_hooks` (EngineHooks, for tests), otherwise the real engine does the work.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from firststart.engine import EngineHooks, default_hooks
from firststart.job import claim_setup_job, execute_setup
from firststart.pipeline import pending_steps
from firststart.plan import SetupPlan
from firststart.steps import SetupContext, build_steps
from glassbox.home import glassbox_home
from persistence.db import SessionFactory
from persistence.jobs import Claim
from persistence.settings import Settings
from worker.context import default_worker_name

log = logging.getLogger(__name__)


class SetupRunner:
    """One claimed setup job, run in a daemon thread; `options` are `execute_setup`'s keyword
    arguments (sessions, hooks, home, heartbeat_interval_s, timeout_s)."""

    def __init__(self, claim: Claim, plan: SetupPlan, **options: Any):
        self.claim, self.plan = claim, plan
        self.options = options
        self.stop_event = threading.Event()
        self.outcome: str | None = None
        self.thread = threading.Thread(target=self._run, name="glassbox-setup", daemon=True)

    @property
    def job_id(self) -> str:
        return self.claim.job_id

    def start(self) -> None:
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the setup to stop; waits `timeout_s` at most (a download in progress cannot be cut)."""
        self.stop_event.set()
        self.thread.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> str | None:
        self.thread.join(timeout_s)
        return self.outcome

    def _run(self) -> None:
        try:
            self.outcome = execute_setup(self.claim, self.plan, stop=self.stop_event, **self.options)
        except Exception:
            log.exception("setup job %s crashed", self.claim.job_id)
            self.outcome = "failed"


def is_embedded_default(settings: Settings) -> bool:
    """SQLite in the home folder and in-process workers: one machine, nothing configured."""
    return settings.database_url is None and settings.redis_url is None


def hooks_of(app: Any) -> EngineHooks:
    return getattr(app.state, "setup_hooks", None) or default_hooks()


def missing_content(sessions: SessionFactory, plan: SetupPlan, hooks: EngineHooks) -> list[str]:
    """The setup steps whose result is not there yet (cheap: files and rows only)."""
    ctx = SetupContext(plan=plan, sessions=sessions, hooks=hooks, home=glassbox_home())
    return pending_steps(build_steps(ctx))


def launch_setup(app: Any) -> SetupRunner | None:
    """Claim the setup job and run it in a thread of this server; None when another live
    process runs it already. The runner is kept on `app.state.setup_runner`."""
    services = app.state.services
    settings: Settings = services.settings
    plan = SetupPlan.from_settings(settings)
    claim = claim_setup_job(
        services.sessions,
        plan,
        worker_name=default_worker_name("setup"),
        heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
    )
    if claim is None:
        return None
    runner = SetupRunner(
        claim,
        plan,
        sessions=services.sessions,
        hooks=hooks_of(app),
        home=glassbox_home(),
        heartbeat_interval_s=settings.job_heartbeat_interval_s,
        timeout_s=settings.setup_timeout_s,
    )
    app.state.setup_runner = runner
    runner.start()
    return runner


def start_auto_setup(app: Any) -> SetupRunner | None:
    """At server start: launch the setup if this is a first start on the embedded default.
    Never raises: a server that cannot set up the demo still serves (the log says why)."""
    app.state.setup_runner = None
    services = app.state.services
    settings: Settings = services.settings
    if not settings.auto_setup or not is_embedded_default(settings):
        return None
    try:
        plan = SetupPlan.from_settings(settings)
        missing = missing_content(services.sessions, plan, hooks_of(app))
        if not missing:
            log.info("demo content is in place (set up before); featured graphs at /")
            return None
        runner = launch_setup(app)
    except Exception:
        log.exception("the first-start setup could not start; the server runs without it")
        return None
    if runner is not None:
        log.info(
            "setting up the demo content (missing: %s) in job %s; "
            "follow it at /setup (GLASSBOX_AUTO_SETUP=false turns this off)",
            ", ".join(missing),
            runner.job_id,
        )
    return runner


def stop_setup(app: Any) -> None:
    """At server stop: let a running setup stop at its next progress report."""
    runner: SetupRunner | None = getattr(app.state, "setup_runner", None)
    if runner is not None and runner.is_alive():
        runner.stop()
