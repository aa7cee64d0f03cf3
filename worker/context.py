"""What job functions need besides the job id: settings, database sessions, the tracer.

RQ calls job functions with ids only, so the worker process installs one context at start
and the functions look it up; the in-process thread queue passes its own context explicitly.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from persistence.db import SessionFactory
from persistence.settings import Settings
from worker.tracing import Tracer


@dataclass
class WorkerContext:
    settings: Settings
    sessions: SessionFactory
    tracer: Tracer
    name: str


_current: WorkerContext | None = None


def default_worker_name(kind: str = "worker") -> str:
    """`kind@host:pid`: the same for every call in a process, which the setup relies on to
    tell its own job from another process's (firststart.job.holder_alive reads host and pid).
    Names registered where a previous process's may linger (RQ) use `unique_worker_name`."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def unique_worker_name(base: str) -> str:
    """`base` with a random tag, new at every call: `worker.3fa9c1@host:pid`, or `w1.3fa9c1`
    for a name without a host. RQ refuses a name whose registration a crashed worker left
    behind (for up to half an hour), and in a container the pid is always 1, so a restarted
    worker needs a name of its own; the tag goes before `@`, keeping `host:pid` readable."""
    tag = secrets.token_hex(3)
    name, at, place = base.partition("@")
    return f"{name}.{tag}{at}{place}"


def install(context: WorkerContext) -> None:
    global _current
    _current = context


def current() -> WorkerContext:
    if _current is None:
        raise RuntimeError("no worker context installed: start workers with `glassbox worker`")
    return _current
