"""The setup pipeline: a list of steps, each idempotent, run in order with weighted progress.

A step says whether its result is already there (`is_done`, cheap: files and rows, never a
model load) and makes it (`run`). The runner skips finished steps, so a setup that was stopped
resumes where it was, and checks `is_done` again after each run: a step that claims to have
finished but left nothing behind is an error, not a silent success.

    states = run_pipeline(steps, report=lambda fraction, phase, states: ...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from glassbox.errors import GlassboxError

StepProgress = Callable[[float, str], None]  # (fraction of this step, what it is doing)


class SetupError(GlassboxError):
    """A setup step cannot do its work (missing trainer, bad transcoders, ...)."""


class Step(Protocol):
    name: str  # short id: "model", "transcoders", ...
    title: str  # what people read
    weight: float  # share of the whole setup's time, roughly

    def is_done(self) -> bool: ...

    def run(self, progress: StepProgress) -> None: ...


@dataclass
class StepState:
    """How one step went, for the job row and the setup page."""

    name: str
    title: str
    status: str = "pending"  # pending | running | done | skipped | failed
    detail: str = ""
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Report = Callable[[float, str, list[StepState]], None]  # (overall fraction, phase, every step)


def pending_steps(steps: Sequence[Step]) -> list[str]:
    """Names of the steps whose result is not there yet."""
    return [step.name for step in steps if not step.is_done()]


def run_pipeline(steps: Sequence[Step], *, report: Report) -> list[StepState]:
    """Run every unfinished step in order; returns the step states. A step's exception
    propagates after its state is marked failed (and reported)."""
    states = [StepState(step.name, step.title) for step in steps]
    total = sum(step.weight for step in steps) or 1.0
    base = 0.0
    for i, (step, state) in enumerate(zip(steps, states, strict=True)):
        label = f"{i + 1}/{len(steps)} {step.title}"
        if step.is_done():
            state.status, state.detail = "skipped", "already done"
        else:
            _run_step(step, state, label, base / total, step.weight / total, states, report)
        base += step.weight
        report(base / total, label, states)
    report(1.0, "done", states)
    return states


def _run_step(
    step: Step,
    state: StepState,
    label: str,
    start: float,
    share: float,
    states: list[StepState],
    report: Report,
) -> None:
    state.status = "running"
    report(start, label, states)
    t0 = time.monotonic()

    def progress(fraction: float, detail: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        state.detail = detail
        report(start + share * fraction, f"{label}: {detail}" if detail else label, states)

    try:
        step.run(progress)
        if not step.is_done():
            raise SetupError(f"setup step {step.name!r} ran but its result is not there")
    except BaseException as exc:
        state.status, state.detail = "failed", str(exc)[:500]
        state.seconds = round(time.monotonic() - t0, 1)
        raise
    state.status, state.detail = "done", ""
    state.seconds = round(time.monotonic() - t0, 1)
