"""The training loop: calibrate, train every layer on streamed activations, fine-tune end to end.

Phases (one optimizer, one step counter):
1. calibrate: per-layer scales and a least-squares affine start (skip + b_dec) on the first
   `calib_batches` batches;
2. local: each step runs the model once (bf16, stops after the last layer), takes every layer's
   (MLP input, MLP output) and trains all transcoders on them. From `splice_start` on, a growing
   share of the batch rows (up to `splice_max`) is run through the *spliced* model (earlier
   transcoders in place of the MLPs), so each layer also learns the inputs it will see when it
   replaces its MLP; the target is still the true MLP's output for that input;
3. end to end: the spliced model's next-token distribution is pulled towards the model's own
   (KL on `e2e_kl_positions` positions per row), plus the local loss on clean inputs so each
   transcoder stays a faithful model of its MLP.
Activations are never stored: each batch is used once and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from glassbox.errors import GlassboxError
from glassbox.models.forward import run_forward
from glassbox.models.loaded import LoadedModel, parse_dtype
from glassbox.training import calibrate as cal
from glassbox.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from glassbox.training.config import TrainConfig
from glassbox.training.data import train_batches
from glassbox.training.losses import aux_k_loss, fvu, kl_to_teacher, sparsity_penalty
from glassbox.training.schedule import Plan, lr_at, plan_for_tokens, replan_e2e, replan_local
from glassbox.training.splice import logits_at, record_io, splice_override, spliced_forward
from glassbox.training.stack import TranscoderStack

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
PairFn = Callable[[int], tuple[torch.Tensor, torch.Tensor]]  # layer -> normalised (inputs, targets) (N, d)
HISTORY_EVERY = 10  # steps between history entries


@dataclass
class TrainState:
    """Everything besides weights and optimizer moments that a resume needs."""

    step: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    plan: Plan | None = None
    last_fired: torch.Tensor | None = None  # (L, F) token count when each feature last fired
    history: list[dict[str, Any]] = field(default_factory=list)
    calib: dict[str, Any] = field(default_factory=dict)
    fvu_ema: list[float] = field(default_factory=list)
    kl_ema: float | None = None
    phase_s: dict[str, float] = field(default_factory=lambda: {"local": 0.0, "e2e": 0.0})
    phase_steps: dict[str, int] = field(default_factory=lambda: {"local": 0, "e2e": 0})
    step_s_ema: dict[str, float] = field(default_factory=dict)  # recent seconds per step, per phase

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "tokens": self.tokens, "elapsed_s": self.elapsed_s,
                "plan": None if self.plan is None else self.plan.to_dict(), "last_fired": self.last_fired,
                "history": self.history, "calib": self.calib, "fvu_ema": self.fvu_ema, "kl_ema": self.kl_ema,
                "phase_s": self.phase_s, "phase_steps": self.phase_steps, "step_s_ema": self.step_s_ema}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainState:
        plan = None if d.get("plan") is None else Plan(**d["plan"])
        return cls(step=d["step"], tokens=d["tokens"], elapsed_s=d["elapsed_s"], plan=plan,
                   last_fired=d["last_fired"], history=d["history"], calib=d["calib"],
                   fvu_ema=d["fvu_ema"], kl_ema=d["kl_ema"], phase_s=d["phase_s"],
                   phase_steps=d["phase_steps"], step_s_ema=d.get("step_s_ema", {}))


@dataclass
class TrainResult:
    stack: TranscoderStack
    state: TrainState
    config: TrainConfig
    finished: bool  # False when stopped early on purpose (stop_after_steps)


class Trainer:
    def __init__(self, config: TrainConfig, model: LoadedModel, out_dir: str | Path, *,
                 progress: Progress | None = None) -> None:
        self.cfg = config.validate()
        self.model = model
        self.out_dir = Path(out_dir)
        self.progress = progress or (lambda info: None)
        self.device = model.device
        self.compute_dtype = parse_dtype(config.compute_dtype)
        if self.device.type == "cpu" and self.compute_dtype == torch.float16:
            raise GlassboxError("float16 matmuls are slow on CPUs; use bfloat16 or float32")
        self.L, self.d = model.n_layers, model.d_model
        self.tokens_per_step = config.batch_size * (config.seq_len - 1)
        self.stack: TranscoderStack | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.state = TrainState()

    # ---- setup -----------------------------------------------------------------------------
    def _new_stack(self) -> TranscoderStack:
        c = self.cfg
        return TranscoderStack(n_layers=self.L, d_model=self.d, n_features=c.trained_features,
                               activation=c.activation, k=c.k if c.activation == "topk" else None,
                               skip=c.skip, seed=c.seed, enc_scale=c.enc_init_scale).to(self.device)

    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.stack.parameters(), lr=self.cfg.lr, betas=(0.9, 0.999))

    def _init_fresh(self, batches) -> None:
        torch.manual_seed(self.cfg.seed)
        self.stack = self._new_stack()
        self.state = TrainState(last_fired=torch.zeros(self.L, self.cfg.trained_features, dtype=torch.long),
                                fvu_ema=[1.0] * self.L)
        t0 = time.perf_counter()
        self._calibrate([next(batches) for _ in range(self.cfg.calib_batches)])
        self.opt = self._new_optimizer()
        self.state.elapsed_s = time.perf_counter() - t0
        self.state.calib["seconds"] = round(self.state.elapsed_s, 2)
        self.state.calib["tokens"] = self.cfg.calib_batches * self.tokens_per_step

    def _resume(self, ckpt: dict[str, Any]) -> None:
        saved = TrainConfig.from_dict(ckpt["config"])
        diff = self.cfg.same_run(saved)
        if diff:
            raise GlassboxError(f"the checkpoint in {self.out_dir} was made with other options "
                                f"({', '.join(diff)}); resume with the same options, or train into a new "
                                "folder")
        if "W_enc" in ckpt["stack"]:
            raise GlassboxError(f"the checkpoint in {self.out_dir} was written by an earlier Glassbox, which "
                                "kept all layers in one tensor; it cannot be resumed. Start over with "
                                "--force, or train into a new folder")
        self.stack = self._new_stack()
        self.stack.load_state_dict(ckpt["stack"])
        self.opt = self._new_optimizer()
        self.opt.load_state_dict(ckpt["optim"])
        self.state = TrainState.from_dict(ckpt["state"])
        log.info("resumed from step %d (%d tokens)", self.state.step, self.state.tokens)

    @torch.no_grad()
    def _calibrate(self, batches: list[torch.Tensor]) -> None:
        c, L, d = self.cfg, self.L, self.d
        moments = [cal.new_moments(d, self.device) for _ in range(L)]
        samples = cal.Samples(L, c.trained_features if c.data_init else 0, len(batches), seed=c.seed)
        for tokens in batches:
            fwd = run_forward(self.model, tokens.to(self.device), stop_after_layer=L - 1)
            for layer, rec in enumerate(fwd.layers):
                x, y = record_io(self.model, layer, rec, c.input_hook, c.output_hook)
                x, y = x[:, 1:].reshape(-1, d), y[:, 1:].reshape(-1, d)
                cal.accumulate(moments[layer], x, y)
                samples.add(layer, x, y)
        for layer, m in enumerate(moments):
            s_in, s_out = cal.scales(m, d)
            self.stack.s_in[layer], self.stack.s_out[layer] = s_in, s_out
            if c.affine_init:
                W, b = cal.affine_fit(m, s_in, s_out)
                self.stack.W_skip[layer].copy_(W)
                self.stack.b_dec[layer].copy_(b)
            else:
                self.stack.b_dec[layer].copy_(cal.mean_output(m, s_out))
            if c.data_init:
                self._data_init(layer, *samples.get(layer), s_in, s_out)
        self.state.calib = {"s_in": self.stack.s_in.tolist(), "s_out": self.stack.s_out.tolist(),
                            "affine_init": c.affine_init, "data_init": c.data_init}

    def _data_init(self, layer: int, x: torch.Tensor, y: torch.Tensor, s_in: float, s_out: float) -> None:
        """Feature i starts as 'inputs like calibration token i get what the affine map missed there'."""
        st, n = self.stack, x.shape[0]
        x, y = x.float() / s_in, y.float() / s_out
        pred = st.b_dec[layer] + (x @ st.W_skip[layer] if st.W_skip is not None else 0.0)
        enc = x - x.mean(0)
        enc = enc / enc.norm(dim=-1, keepdim=True).clamp(min=1e-6) * self.cfg.enc_init_scale
        dec = y - pred
        dec = dec / dec.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        st.W_enc[layer][:n] = enc
        st.b_enc[layer][:n] = -(enc @ x.mean(0))
        st.W_dec[layer][:n] = dec

    # ---- one step --------------------------------------------------------------------------
    def _normalise(self, layer: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, d) hook values -> normalised (N, d) rows, BOS dropped."""
        x = x[:, 1:].reshape(-1, self.d).float() / self.stack.s_in[layer]
        y = y[:, 1:].reshape(-1, self.d).float() / self.stack.s_out[layer]
        return x, y

    def _record_pairs(self, fwd) -> PairFn:
        """Training pairs of every layer straight from a forward's records."""
        return lambda layer: self._normalise(layer, *record_io(self.model, layer, fwd.layers[layer],
                                                               self.cfg.input_hook, self.cfg.output_hook))

    def _correction_pairs(self, clean, spliced, n_splice: int) -> PairFn:
        """Clean rows: (input, true output). Spliced rows: (spliced input, what the block must add so that
        the spliced residual stream equals the clean one after this layer)."""
        c, n_clean = self.cfg, clean.layers[0].resid_mid.shape[0] - n_splice

        def pairs(layer: int) -> tuple[torch.Tensor, torch.Tensor]:
            x_c, y_c = record_io(self.model, layer, clean.layers[layer], c.input_hook, c.output_hook)
            rec_c, rec_s = clean.layers[layer], spliced.layers[layer]
            x_s = record_io(self.model, layer, rec_s, c.input_hook, c.output_hook)[0]
            y_s = (rec_c.resid_mid[n_clean:] + rec_c.mlp_out[n_clean:]).float() - rec_s.resid_mid.float()
            x = torch.cat([x_c[:n_clean].float(), x_s.float()])
            y = torch.cat([y_c[:n_clean].float(), y_s])
            return self._normalise(layer, x, y)

        return pairs

    def _splice_rows(self, step: int) -> int:
        c, plan = self.cfg, self.state.plan
        start = int(c.splice_start * plan.local_steps)
        if c.splice_max <= 0 or step < start:
            return 0
        ramp = min(1.0, (step - start + 1) / max(1, (plan.local_steps - start) // 2))
        return int(round(ramp * c.splice_max * c.batch_size))

    def _local_losses(self, pairs: PairFn, *, backward: bool, coef: float = 1.0) -> list[dict[str, float]]:
        """Reconstruction (+ sparsity, AuxK) of every layer on `pairs(layer)`; backward per layer."""
        c, stats = self.cfg, []
        for layer in range(self.L):
            x, y = pairs(layer)
            out = self.stack.forward_layer(layer, x, compute_dtype=self.compute_dtype)
            rec = fvu(out.y, y)
            loss = rec + sparsity_penalty(self.stack, layer, out, l1_coef=c.l1_coef, l0_coef=c.l0_coef)
            dead = self._dead(layer)
            n_dead = int(dead.sum())
            if c.activation == "topk" and c.aux_coef > 0 and n_dead > 0:
                loss = loss + c.aux_coef * aux_k_loss(self.stack, layer, x, (y - out.y).detach(), dead,
                                                      c.aux_k, self.compute_dtype, max_rows=c.aux_rows)
            if backward:
                (coef * loss).backward()
            self._mark_fired(layer, out)
            l0 = float((out.vals > 0).float().sum(-1).mean())
            stats.append({"fvu": float(rec.detach()), "l0": l0, "dead": n_dead})
        return stats

    def _dead(self, layer: int) -> torch.Tensor:
        seen = self.state.tokens - self.state.last_fired[layer]
        return (seen > self.cfg.dead_tokens).to(self.device)

    def _mark_fired(self, layer: int, out) -> None:
        if out.idx is not None:
            fired = out.idx[out.vals > 0].unique()
        else:
            fired = (out.vals > 0).any(0).nonzero().squeeze(-1)
        self.state.last_fired[layer, fired.cpu()] = self.state.tokens

    def _local_step(self, tokens: torch.Tensor, step: int) -> dict[str, Any]:
        c, last = self.cfg, self.L - 1
        n_splice = self._splice_rows(step)
        fns = [self._layer_fn(layer) for layer in range(self.L)]
        hooks = dict(input_hook=c.input_hook, output_hook=c.output_hook)
        if n_splice and c.splice_target == "clean":
            clean = run_forward(self.model, tokens, stop_after_layer=last)
            spliced = run_forward(self.model, tokens[-n_splice:], stop_after_layer=last,
                                  mlp_override=splice_override(self.model, fns, **hooks))
            pairs = self._correction_pairs(clean, spliced, n_splice)
        else:
            override = None
            if n_splice:
                rows = torch.arange(tokens.shape[0], device=self.device) >= tokens.shape[0] - n_splice
                override = splice_override(self.model, fns, rows=rows, **hooks)
            pairs = self._record_pairs(run_forward(self.model, tokens, mlp_override=override,
                                                   stop_after_layer=last))
        stats = self._local_losses(pairs, backward=True)
        return {"layers": stats, "spliced_rows": n_splice}

    def _layer_fn(self, layer: int):
        stack, dtype = self.stack, self.compute_dtype
        s_in, s_out = stack.s_in[layer], stack.s_out[layer]

        def fn(x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            out = stack.forward_layer(layer, x.reshape(-1, shape[-1]).float() / s_in, compute_dtype=dtype)
            return (out.y * s_out).reshape(shape)

        return fn

    def _e2e_step(self, tokens: torch.Tensor, step: int) -> dict[str, Any]:
        c = self.cfg
        B, T = tokens.shape
        with torch.no_grad():
            fwd = run_forward(self.model, tokens, logits_at="none", keep_layers=True)
            pos = self._kl_positions(B, T, step)
            teacher = logits_at(self.model, _gather_positions(fwd.final_resid, pos))
        stats = self._local_losses(self._record_pairs(fwd), backward=True, coef=c.e2e_local_coef)
        del fwd
        fns = [self._layer_fn(layer) for layer in range(self.L)]
        final = spliced_forward(self.model, tokens, fns, input_hook=c.input_hook, output_hook=c.output_hook)
        student = logits_at(self.model, _gather_positions(final, pos))
        kl = kl_to_teacher(student, teacher)
        kl.backward()
        return {"layers": stats, "kl": float(kl.detach())}

    def _kl_positions(self, B: int, T: int, step: int) -> torch.Tensor:
        """(B, P) positions >= 1, drawn from a generator seeded by (seed, step): resumable."""
        P = min(self.cfg.e2e_kl_positions, T - 1)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        pos = torch.stack([torch.randperm(T - 1, generator=gen)[:P] + 1 for _ in range(B)])
        return pos.sort(dim=-1).values.to(self.device)

    # ---- the loop --------------------------------------------------------------------------
    def run(self, *, resume: bool = False, stop_after_steps: int | None = None) -> TrainResult:
        c = self.cfg
        ckpt_file = checkpoint_path(self.out_dir)
        if resume and ckpt_file.is_file():
            self._resume(load_checkpoint(ckpt_file))
            skip = c.calib_batches + self.state.step
        else:
            if resume:
                log.info("no checkpoint in %s; starting a fresh run", self.out_dir)
            skip = 0
        batches = train_batches(c.corpus, self.model.tokenizer, seq_len=c.seq_len, batch_size=c.batch_size,
                                seed=c.seed, start=skip)
        if self.stack is None:
            self._init_fresh(batches)
        if self.state.plan is None:
            self.state.plan = self._initial_plan()
        last_ckpt = time.perf_counter()
        while self.state.step < self.state.plan.total:
            if stop_after_steps is not None and self.state.step >= stop_after_steps:
                self.save_checkpoint()
                return TrainResult(self.stack, self.state, c, finished=False)
            tokens = next(batches).to(self.device)
            self._one_step(tokens)
            if time.perf_counter() - last_ckpt > c.checkpoint_every_s:
                self.save_checkpoint()
                last_ckpt = time.perf_counter()
        self.save_checkpoint()
        return TrainResult(self.stack, self.state, c, finished=True)

    def _initial_plan(self) -> Plan:
        c = self.cfg
        if c.tokens is not None:
            return plan_for_tokens(c.tokens, self.tokens_per_step, c.e2e_frac)
        # a first guess (1 s per step) until real steps have been timed
        local = max(10, int(c.budget_s * (1 - c.e2e_frac)))
        e2e = max(1, int(c.budget_s * c.e2e_frac / 4)) if c.e2e_frac > 0 else 0
        return Plan(local, e2e, False, c.e2e_frac <= 0)

    def _one_step(self, tokens: torch.Tensor) -> None:
        st, plan, c = self.state, self.state.plan, self.cfg
        t0 = time.perf_counter()
        phase = "local" if st.step < plan.local_steps else "e2e"
        lr = lr_at(st.step, plan, lr=c.lr, warmup=c.warmup_steps, decay_start=c.decay_start,
                   e2e_scale=c.e2e_lr_scale)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        info = self._local_step(tokens, st.step) if phase == "local" else self._e2e_step(tokens, st.step)
        self.opt.step()
        if c.activation != "relu":
            self.stack.normalize_decoder()
        if self.stack.log_threshold is not None:
            self.stack.clamp_thresholds(1e-4)
        dt = time.perf_counter() - t0
        st.step += 1
        st.tokens += self.tokens_per_step
        st.elapsed_s += dt
        st.phase_s[phase] += dt
        st.phase_steps[phase] += 1
        prev = st.step_s_ema.get(phase)
        st.step_s_ema[phase] = dt if prev is None else 0.8 * prev + 0.2 * dt
        self._update_stats(info, phase, lr, dt)
        self._maybe_replan(phase)

    def _update_stats(self, info: dict[str, Any], phase: str, lr: float, dt: float) -> None:
        st = self.state
        decay = 0.9
        fvus = [s["fvu"] for s in info["layers"]]
        st.fvu_ema = [decay * e + (1 - decay) * f for e, f in zip(st.fvu_ema, fvus, strict=True)]
        if "kl" in info:
            st.kl_ema = info["kl"] if st.kl_ema is None else decay * st.kl_ema + (1 - decay) * info["kl"]
        entry = {"step": st.step, "tokens": st.tokens, "phase": phase, "lr": lr,
                 "seconds": round(st.elapsed_s, 2), "step_s": round(dt, 3),
                 "fvu_ema": [round(f, 5) for f in st.fvu_ema],
                 "l0": [round(s["l0"], 2) for s in info["layers"]],
                 "dead": [s["dead"] for s in info["layers"]],
                 "spliced_rows": info.get("spliced_rows", 0), "kl": info.get("kl")}
        if st.step % HISTORY_EVERY == 0 or st.step == st.plan.total:
            st.history.append(entry)
        self.progress({**entry, "fvu": fvus, "total_steps": st.plan.total, "fraction": self._fraction(),
                       "mean_fvu": sum(st.fvu_ema) / len(st.fvu_ema), "kl_ema": st.kl_ema,
                       "tokens_per_s": self.tokens_per_step / max(dt, 1e-9)})

    def _fraction(self) -> float:
        st, c = self.state, self.cfg
        if c.budget_s is not None:
            return min(1.0, max(st.elapsed_s / c.budget_s, st.step / max(st.plan.total, 1)))
        return st.step / max(st.plan.total, 1)

    def _maybe_replan(self, phase: str) -> None:
        c, st = self.cfg, self.state
        if c.budget_s is None:
            return
        s_per_step = st.step_s_ema[phase]
        if phase == "local" and not st.plan.local_fixed and (st.step % 5 == 0 or st.elapsed_s > c.budget_s):
            left = c.budget_s * (1 - c.e2e_frac) - st.elapsed_s
            st.plan = replan_local(st.plan, step=st.step, seconds_left_local=left, s_per_step=s_per_step)
        elif phase == "e2e" and not st.plan.e2e_fixed:
            done = st.step - st.plan.local_steps
            st.plan = replan_e2e(st.plan, e2e_done=done, seconds_left=c.budget_s - st.elapsed_s,
                                 s_per_step=s_per_step)

    def save_checkpoint(self) -> None:
        save_checkpoint(checkpoint_path(self.out_dir), {
            "config": self.cfg.to_dict(), "state": self.state.to_dict(),
            "stack": self.stack.state_dict(), "optim": self.opt.state_dict(),
        })


def _gather_positions(resid: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """resid (B, T, d), pos (B, P) -> (B, P, d)."""
    return resid.gather(1, pos[..., None].expand(-1, -1, resid.shape[-1]))
