"""The setup pipeline: a list of steps, each idempotent, run in order with weighted progress.

A step says whether its result is already there (`is_done`, cheap: files and rows, never a
model load) and makes it (`run`). The runner skips finished steps, so a setup that was stopped
resumes where it was, and checks `is_done` again after each run: a step that claims to have
finished but left nothing behind is an error, not a silent success.

    states = run_pipeline(steps, report=lambda fraction, phase, states: ...)

A step's weight is the seconds it is expected to take, so the overall fraction tracks time.
`time_left` turns the states and the overall fraction back into seconds per step: the running
step's own pace once it has measured some, the expected seconds before that and for the steps
after it (pages show it while the setup runs).
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
    weight: float  # expected seconds (a 2-core CPU): its share of the progress bar and of the time left

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
    weight: float = 1.0
    started_at: float | None = None  # wall clock (epoch s) when this attempt began the step
    paced_at: float | None = None  # wall clock of its first report of progress past 0
    paced_from: float | None = None  # the step's fraction at that report (a resumed step starts late)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepState:
        """A state as the job row keeps it (rows written before a field existed lack it)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


Report = Callable[[float, str, list[StepState]], None]  # (overall fraction, phase, every step)


def pending_steps(steps: Sequence[Step]) -> list[str]:
    """Names of the steps whose result is not there yet."""
    return [step.name for step in steps if not step.is_done()]


def run_pipeline(steps: Sequence[Step], *, report: Report) -> list[StepState]:
    """Run every unfinished step in order; returns the step states. A step's exception
    propagates after its state is marked failed (and reported)."""
    states = [StepState(step.name, step.title, weight=float(step.weight)) for step in steps]
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
    state.status, state.started_at = "running", time.time()
    report(start, label, states)
    t0 = time.monotonic()

    def progress(fraction: float, detail: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        state.detail = detail
        if state.paced_at is None and fraction > 0:
            state.paced_at, state.paced_from = time.time(), fraction
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


# ---- time left -------------------------------------------------------------------------------

PACE_MIN_PROGRESS = 0.02  # the step's share it must have done before its own pace counts
PACE_MIN_SECONDS = 3.0
PACE_TRUSTED_AT = 0.3  # from this much measured progress on, the pace alone decides


@dataclass(frozen=True)
class TimeLeft:
    """Seconds left per step (0 for finished ones), the running step and how far it is."""

    seconds: list[float]
    current: int | None  # index of the running step
    current_fraction: float

    @property
    def total(self) -> float:
        return sum(self.seconds)

    def until_end_of(self, index: int) -> float:
        """Seconds until step `index` is finished (the steps before it included)."""
        return sum(self.seconds[: index + 1])


def time_left(states: Sequence[StepState], progress: float, *, now: float) -> TimeLeft:
    """How long each step has left, from the steps' states (weights: expected seconds) and the
    overall fraction the job row holds. The running step goes by its own pace (the progress it
    made since its first report, so a resumed step is not taken for a fast one) blended with its
    expected seconds while it has measured little; steps to come by their expected seconds."""
    total = sum(s.weight for s in states) or 1.0
    base, seconds, current, current_fraction = 0.0, [], None, 0.0
    for i, state in enumerate(states):
        share = state.weight / total
        if state.status in ("done", "skipped"):
            seconds.append(0.0)
        elif state.status == "running":
            fraction = min(max((progress - base) / share, 0.0), 1.0) if share > 0 else 0.0
            current, current_fraction = i, fraction
            seconds.append(_running_left(state, fraction, now))
        else:
            seconds.append(max(state.weight, 0.0))
        base += share
    return TimeLeft(seconds=seconds, current=current, current_fraction=current_fraction)


def _running_left(state: StepState, fraction: float, now: float) -> float:
    expected = state.weight * (1.0 - fraction)
    if state.paced_at is None or state.paced_from is None:
        spent = now - state.started_at if state.started_at is not None else 0.0
        return max(expected - max(spent, 0.0), 0.1 * expected)  # it has not measured its pace yet
    measured, seconds = fraction - state.paced_from, now - state.paced_at
    if measured < PACE_MIN_PROGRESS or seconds < PACE_MIN_SECONDS:
        return expected
    paced = seconds * (1.0 - fraction) / measured
    trust = min(measured / PACE_TRUSTED_AT, 1.0)
    return trust * paced + (1.0 - trust) * expected
