"""`python -m worker`: the same as `glassbox worker`, settings from the environment."""

from __future__ import annotations

import logging

from server.settings import Settings
from worker.rq_worker import run_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(Settings())
