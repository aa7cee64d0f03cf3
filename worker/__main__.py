"""`python -m worker`: the same as `glassbox worker`, settings from the environment."""

from __future__ import annotations

from persistence.logs import configure_logging
from persistence.settings import Settings
from worker.rq_worker import run_worker

if __name__ == "__main__":
    settings = Settings()
    configure_logging(fmt=settings.log_format, level="info")
    run_worker(settings)
