"""What job functions need besides the job id: settings, database sessions, the tracer.

RQ calls job functions with ids only, so the worker process installs one context at start
and the functions look it up; the in-process thread queue passes its own context explicitly.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from server.db import SessionFactory
from server.settings import Settings
from worker.tracing import Tracer


@dataclass
class WorkerContext:
    settings: Settings
    sessions: SessionFactory
    tracer: Tracer
    name: str


_current: WorkerContext | None = None


def default_worker_name(kind: str = "worker") -> str:
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def install(context: WorkerContext) -> None:
    global _current
    _current = context


def current() -> WorkerContext:
    if _current is None:
        raise RuntimeError("no worker context installed: start workers with `glassbox worker`")
    return _current
