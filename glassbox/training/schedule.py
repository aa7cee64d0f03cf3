"""How many steps each phase gets, and the learning rate at each step.

The schedule is a function of the step number and the plan only. A token budget fixes the plan
at the start, so a resumed run follows exactly the same curve. A time budget plans from the
measured speed and revises the plan every few steps until the time is spent (a machine that
slows down shortens the run instead of overrunning the budget); the plan is saved in checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

MIN_LR_FRACTION = 0.1


@dataclass
class Plan:
    local_steps: int
    e2e_steps: int
    local_fixed: bool
    e2e_fixed: bool

    @property
    def total(self) -> int:
        return self.local_steps + self.e2e_steps

    def to_dict(self) -> dict:
        return asdict(self)


def plan_for_tokens(tokens: int, tokens_per_step: int, e2e_frac: float) -> Plan:
    total = max(1, math.ceil(tokens / tokens_per_step))
    e2e = int(round(total * e2e_frac))
    local = max(1, total - e2e)
    return Plan(local, e2e, True, True)


def replan_local(plan: Plan, *, step: int, seconds_left_local: float, s_per_step: float) -> Plan:
    """Stretch or shrink the local phase to end when its share of the time budget is spent."""
    if plan.local_fixed:
        return plan
    # `step` steps are done: with no time left the phase ends now (a floor of step + 1 would
    # add one more step at every replan, and a run past its budget would never end)
    local = max(1, step, step + int(seconds_left_local / max(s_per_step, 1e-6)))
    return Plan(local, plan.e2e_steps, False, plan.e2e_fixed)


def replan_e2e(plan: Plan, *, e2e_done: int, seconds_left: float, s_per_step: float) -> Plan:
    if plan.e2e_fixed:
        return plan
    e2e = max(1, e2e_done, e2e_done + int(seconds_left / max(s_per_step, 1e-6)))
    return Plan(plan.local_steps, e2e, plan.local_fixed, False)


def lr_at(step: int, plan: Plan, *, lr: float, warmup: int, decay_start: float, e2e_scale: float) -> float:
    """Warmup, constant, cosine decay to 10% (local phase); the same shape, shorter, end to end."""
    if step < plan.local_steps:
        return lr * _shape(step, plan.local_steps, min(warmup, max(1, plan.local_steps // 10)), decay_start)
    e2e_step = step - plan.local_steps
    return lr * e2e_scale * _shape(e2e_step, plan.e2e_steps, min(10, max(1, plan.e2e_steps // 10)), 0.5)


def _shape(step: int, total: int, warmup: int, decay_start: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    start = int(decay_start * total)
    if step < start or total <= start:
        return 1.0
    t = min(1.0, (step - start) / max(1, total - start))
    return MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t))
