"""A worker process for tests: `run_worker` with the fake tracer, settings from the environment.

Started by gbx_stack.Stack.start_worker_process; killed with SIGKILL by the dead-worker test.
"""

from __future__ import annotations

import logging
import os

from gbx_fakes import FakeTracer

from persistence.settings import Settings
from worker.rq_worker import run_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="worker-proc %(levelname)s %(name)s: %(message)s")
    tracer = FakeTracer(
        steps=int(os.environ.get("GBX_FAKE_STEPS", "3")),
        step_delay_s=float(os.environ.get("GBX_FAKE_STEP_DELAY_S", "0")),
    )
    run_worker(Settings(), tracer=tracer)
