"""`python -m worker`: the same as `glassbox worker`, settings from the environment."""

from __future__ import annotations

from glassbox.setup.logs import configure_logging
from glassbox.setup.settings import SetupSettings
from server.settings import Settings
from worker.rq_worker import run_worker

if __name__ == "__main__":
    configure_logging(fmt=SetupSettings().log_format, level="info")
    run_worker(Settings())
