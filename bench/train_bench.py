"""Transcoder-trainer throughput (tokens/s) on the demo model, phase by phase.

Measures, after warm-up steps that are not timed:
- the model forward alone (the floor: bf16, stops after the last layer, no unembedding);
- a local training step on clean activations (forward + every layer's transcoder + Adam);
- the same with `--dead-frac` of every layer's features dead, so that the AuxK revival loss
  runs (a real run has 5-20% dead features after its first 50k tokens);
- a local step with half the batch rows run through the spliced model;
- an end-to-end step (clean forward, KL through the spliced model, local loss).
Prints a Markdown table (for bench/RESULTS.md) and, with --json, writes the numbers.
The load average is recorded because shared machines slow every number down.

    python bench/train_bench.py                       # Gemma 3 270M, 4096 features, 4 timed steps
    python bench/train_bench.py --features 2048 --threads 2 --steps 6 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def _timed_steps(trainer, batches, n_warm: int, n_steps: int, before_step=None) -> float:
    """Seconds per step of trainer._one_step over n_steps after n_warm warm-up steps
    (`before_step` runs before each step, untimed)."""
    for _ in range(n_warm):
        if before_step:
            before_step()
        trainer._one_step(next(batches))
    _sync(trainer.device)
    total = 0.0
    for _ in range(n_steps):
        if before_step:
            before_step()
        _sync(trainer.device)
        t0 = time.perf_counter()
        trainer._one_step(next(batches))
        _sync(trainer.device)
        total += time.perf_counter() - t0
    return total / n_steps


def _kill_features(trainer, frac: float) -> None:
    """Mark the same random `frac` of every layer's features as not fired for longer than the dead
    threshold (seeded, so every call picks the same features)."""
    import torch

    st = trainer.state
    gen = torch.Generator().manual_seed(0)
    dead = torch.rand(st.last_fired.shape, generator=gen) < frac
    st.tokens = max(st.tokens, trainer.cfg.dead_tokens + 1)
    st.last_fired[~dead] = st.tokens
    st.last_fired[dead] = 0


def _sync(device) -> None:
    """Wait for queued GPU work, so that wall-clock time counts it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trainer(model, args, **overrides):
    from glassbox.training.config import TrainConfig
    from glassbox.training.data import train_batches
    from glassbox.training.schedule import Plan
    from glassbox.training.trainer import Trainer

    opts = dict(model=args.model, corpus=args.corpus, n_features=args.features, k=args.k, tokens=10**9,
                batch_size=args.batch_size, seq_len=args.seq_len, calib_batches=1)
    opts.update(overrides)
    trainer = Trainer(TrainConfig(**opts), model, Path("/nonexistent-bench-output"))
    batches = (b.to(model.device) for b in train_batches(args.corpus, model.tokenizer, seq_len=args.seq_len,
                                                         batch_size=args.batch_size, seed=0))
    trainer._init_fresh(batches)
    return trainer, batches, Plan


def bench(args) -> dict:
    import torch

    import glassbox
    from glassbox.models.forward import run_forward

    if args.threads:
        torch.set_num_threads(args.threads)
    model = glassbox.load_model(args.model, dtype="bfloat16", device=args.device)
    tok_per_step = args.batch_size * (args.seq_len - 1)
    rows = {}

    trainer, batches, Plan = _trainer(model, args, splice_max=0.0, e2e_frac=0.0)
    tokens = next(batches).to(model.device)
    run_forward(model, tokens, stop_after_layer=model.n_layers - 1)
    _sync(model.device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        run_forward(model, next(batches).to(model.device), stop_after_layer=model.n_layers - 1)
    _sync(model.device)
    rows["model forward only (bf16)"] = (time.perf_counter() - t0) / args.steps

    trainer.state.plan = Plan(10**6, 0, True, True)
    rows["local step, clean rows"] = _timed_steps(trainer, batches, args.warmup, args.steps)

    trainer, batches, Plan = _trainer(model, args, splice_max=0.0, e2e_frac=0.0)
    trainer.state.plan = Plan(10**6, 0, True, True)
    kill = lambda: _kill_features(trainer, args.dead_frac)  # noqa: E731
    rows[f"local step, {100 * args.dead_frac:.0f}% of features dead (AuxK)"] = _timed_steps(
        trainer, batches, args.warmup, args.steps, before_step=kill)

    trainer, batches, Plan = _trainer(model, args, splice_max=0.5, e2e_frac=0.0)
    trainer.state.plan = Plan(10**6, 0, True, True)
    trainer._splice_rows = lambda step: args.batch_size // 2  # bench only: skip the ramp
    rows["local step, half the rows spliced"] = _timed_steps(trainer, batches, args.warmup, args.steps)

    trainer, batches, Plan = _trainer(model, args, e2e_frac=0.5)
    trainer.state.plan = Plan(0, 10**6, True, True)
    rows["end-to-end step (KL + local)"] = _timed_steps(trainer, batches, args.warmup, args.steps)

    return {
        "model": args.model, "features": args.features, "k": args.k, "batch_size": args.batch_size,
        "seq_len": args.seq_len, "tokens_per_step": tok_per_step, "threads": torch.get_num_threads(),
        "device": str(model.device), "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "seconds_per_step": rows, "tokens_per_s": {k: tok_per_step / v for k, v in rows.items()},
    }


def markdown(res: dict) -> str:
    lines = [f"Trainer throughput: {res['model']}, {res['features']} features, k {res['k']}, "
             f"{res['batch_size']} x {res['seq_len']} tokens per step, {res['threads']} threads on "
             f"{res['device']} ({res['date']}, load average {res['load_average'][0]:.1f})", "",
             "| phase | s/step | tokens/s |", "|---|---|---|"]
    for name, secs in res["seconds_per_step"].items():
        lines.append(f"| {name} | {secs:.2f} | {res['tokens_per_s'][name]:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gemma-3-270m")
    p.add_argument("--corpus", default="offline")
    p.add_argument("--features", type=int, default=4096)
    p.add_argument("--k", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="timed steps per phase")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per phase")
    p.add_argument("--dead-frac", type=float, default=0.08, help="share of dead features in the AuxK row")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    res = bench(args)
    print(markdown(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
