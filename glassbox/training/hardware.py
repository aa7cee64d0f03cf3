"""What a training run gets out of the machine it runs on: the device, the threads, the batch.

A budgeted run trains for a fixed wall-clock time, so the hardware decides how many tokens it
sees. On a GPU the same budget buys far more tokens: the batch grows so that each step keeps the
device busy. On a CPU every usable core is a torch thread (torch's default can be fewer, and a
server may have lowered it for request handling).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

GPU_BATCH = 64  # sequences per step on a GPU: an H200 trains 54k tokens/s at 64 x 128 (bench/RESULTS.md)
CPU_BATCH = 16


@dataclass(frozen=True)
class TrainingHardware:
    device: str  # "cpu", "cuda", "cuda:1"
    name: str  # what a person reads: "2 CPU cores", "NVIDIA H200 (139 GiB)"
    threads: int | None  # torch threads on a CPU; None on a GPU
    batch_size: int

    @property
    def is_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def train_options(self) -> dict[str, Any]:
        """TrainConfig fields this hardware sets."""
        return {"batch_size": self.batch_size}

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Every core for the run (CPU), the process' own thread count again afterwards."""
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def describe(self, budget_s: float, batch_size: int | None = None) -> str:
        batch = self.batch_size if batch_size is None else batch_size
        return f"training on {self.name} for {budget_s / 60:.0f} min, {batch} sequences per step"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def detect(device: str | torch.device | None = None) -> TrainingHardware:
    """The hardware a run on `device` (None: a GPU when there is one) trains on."""
    wanted = str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda"):
        index = torch.device(wanted).index or 0
        props = torch.cuda.get_device_properties(index)
        name = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
        return TrainingHardware(device=wanted, name=name, threads=None, batch_size=GPU_BATCH)
    cores = usable_cores()
    return TrainingHardware(device="cpu", name=f"{cores} CPU core{'s' if cores != 1 else ''}", threads=cores,
                            batch_size=CPU_BATCH)
