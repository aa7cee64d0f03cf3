"""The replacement model for experiments: change transcoder features, run on, generate.

Semantics of `feature_intervention` (circuit-tracer's, our implementation):

* free (default). The real model runs. At a layer with an edit, the MLP output becomes
  true_out + (new - current activation) * decoder row, where `current` is the feature's
  activation in this run (so upstream edits are seen); a cross-layer transcoder's feature
  writes every later MLP output too. Later layers run their real MLPs on the changed
  residual, so their features (and the implied errors) recompute. With `freeze_attention`
  (default) every attention pattern stays at its value on the clean prompt; norms recompute.
* constrained. Every layer is constrained: attention patterns, every norm scale and every
  MLP output are held at their clean values (plus the transcoder skip path's change), so an
  edit reaches the targets only through the linear paths a graph's edges measure. This is
  `AttributionContext.linear_forward` extended to any feature and to every logit.

Returned activations are what each layer's encoder reads in the run; an edited feature's own
entry is its value before the edit (as in circuit-tracer). Features at a BOS position are 0.

`generate` runs an incremental forward with a per-layer K/V cache (one new token per step,
its attention over the cache), always in free mode. Persistent interventions (`set_feature`,
...) and a call's own interventions apply to generated positions too. With
`freeze_attention=True` (default False) the prompt's positions keep their clean patterns and
new tokens attend freely; circuit-tracer's generate likewise freezes only the prompt pass.

The model and transcoders are treated as fixed: the clean record of the last prompt is kept.

Shapes: n positions in a pass, S cached positions, H heads, K kv-heads, hd head size,
d model width, V vocabulary, L layers, d_tc features per layer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from glassbox.errors import GlassboxError
from glassbox.interventions import (
    BeforeAfter,
    FeatureEdit,
    GenerationResult,
    Intervention,
    InterventionError,
    InterventionResult,
    Limits,
    PassPlan,
    Steering,
    before_after,
    check_interventions,
    plan_pass,
)
from glassbox.models.forward import ForwardResult, attention_output, inv_rms, norm_gain
from glassbox.models.loaded import LoadedModel
from glassbox.transcoders.base import TranscoderSet

log = logging.getLogger(__name__)

UNBOUNDED = 1 << 62  # sequence length used to check persistent positions


# ---- values of the clean prompt that a run may hold fixed ---------------------------------


@dataclass
class Frozen:
    """Clean-prompt patterns (always) and, for constrained runs, norm scales and MLP outputs."""

    n_pos: int
    patterns: list[torch.Tensor]  # (1, H, T, T) per layer
    scales: dict[str, list[torch.Tensor | None]] | None = None  # norm -> (T, d) inv_rms * gain
    final: torch.Tensor | None = None  # (T, d) final norm scale
    tc_in: list[torch.Tensor] | None = None  # (T, d) transcoder input = tc_in * resid_mid
    tc_inputs: list[torch.Tensor] | None = None  # (T, d) clean transcoder inputs
    out_values: list[torch.Tensor] | None = None  # (T, d) clean value at the output hook
    acts: list[torch.Tensor] | None = None  # (T, d_tc) clean activations, BOS zeroed


class KVCache:
    """Per-layer keys (after rotary) and values of every position run so far."""

    def __init__(self, n_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers  # (1, K, S, hd)
        self.values: list[torch.Tensor | None] = [None] * n_layers  # (1, K, S, hd)

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else int(self.keys[0].shape[2])

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


@dataclass
class _Pass:
    """How one pass runs: its positions, what is frozen, what changes."""

    plan: PassPlan
    frozen: Frozen | None  # patterns of query positions < frozen.n_pos are frozen
    constrained: bool
    bos: bool
    want_acts: bool
    apply_activation: bool


@dataclass
class _PassOutput:
    logits: torch.Tensor  # (n or 1, V)
    activations: torch.Tensor | None  # (L, n, d_tc)


def frozen_norm(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """An RMSNorm whose 1/RMS is held fixed: x * (inv_rms * gain), in >= float32."""
    ct = torch.promote_types(torch.float32, x.dtype)
    return (x.to(ct) * scale.to(ct)).to(x.dtype)


def causal_allowed(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None) -> torch.Tensor:
    """(n, S) True where the query at absolute q_pos may attend to the key at k_pos."""
    allowed = k_pos[None, :] <= q_pos[:, None]
    if window is not None:
        allowed &= (q_pos[:, None] - k_pos[None, :]) < window
    return allowed


# ---- the model --------------------------------------------------------------------------------


class ReplacementModel:
    """A model plus its transcoders, for feature interventions, steering and generation."""

    def __init__(self, model: LoadedModel, transcoders: TranscoderSet) -> None:
        transcoders.check_compatible(model)
        self.model = model
        self.transcoders = transcoders
        self._persistent: list[FeatureEdit | Steering] = []
        self._frozen_last: tuple[tuple, Frozen] | None = None  # (ids, full) -> record

    # ---- persistent interventions ---------------------------------------------------------
    @property
    def interventions(self) -> tuple[FeatureEdit | Steering, ...]:
        """The persistent interventions, applied to every run and every generated token."""
        return tuple(self._persistent)

    def set_feature(self, layer: int, feature: int, value: float, pos: int | None = None) -> None:
        """From now on, feature `feature` of `layer` has activation `value` (pos None: everywhere)."""
        self._register(FeatureEdit(layer, pos, feature, value, "set"))

    def ablate_feature(self, layer: int, feature: int, pos: int | None = None) -> None:
        self._register(FeatureEdit(layer, pos, feature, 0.0, "set"))

    def scale_feature(self, layer: int, feature: int, factor: float, pos: int | None = None) -> None:
        self._register(FeatureEdit(layer, pos, feature, factor, "scale"))

    def add_steering(self, layer: int, vector: torch.Tensor, pos: int | None = None, *,
                     coefficient: float = 1.0) -> None:
        """From now on, add coefficient * vector to the residual stream after `layer`."""
        self._register(Steering(layer, vector, pos, coefficient))

    def clear_interventions(self) -> None:
        self._persistent.clear()

    def _register(self, item: FeatureEdit | Steering) -> None:
        if isinstance(item.pos, int) and not isinstance(item.pos, bool) and item.pos < 0:
            raise InterventionError("a persistent intervention needs an absolute position (>= 0) or None")
        self._persistent.extend(check_interventions([item], self._limits(UNBOUNDED, bos=False)))

    # ---- checks ----------------------------------------------------------------------------
    def _limits(self, n_pos: int, *, bos: bool, n_prompt: int = 0) -> Limits:
        return Limits(self.model.n_layers, self.transcoders.d_transcoder, self.model.d_model, n_pos, bos,
                      n_prompt)

    def _ids(self, prompt: str | Sequence[int] | torch.Tensor) -> list[int]:
        if isinstance(prompt, str):
            ids = self.model.tokenize(prompt)
        elif isinstance(prompt, torch.Tensor):
            ids = [int(i) for i in prompt.flatten()]
        else:
            ids = [int(i) for i in prompt]
        if not ids:
            raise GlassboxError("the prompt has no tokens")
        V = self.model.vocab_size
        bad = [i for i in ids if not 0 <= i < V]
        if bad:
            raise GlassboxError(f"token ids {bad[:5]} are outside the vocabulary (size {V})")
        return ids

    def _has_bos(self, ids: list[int]) -> bool:
        return ids[0] in set(getattr(self.model.tokenizer, "all_special_ids", []))

    def _items(self, interventions: Sequence[Intervention], ids: list[int],
               max_new_tokens: int = 0) -> list[FeatureEdit | Steering]:
        """Persistent interventions (positions past the sequence never apply), then the call's.

        A call's positions must exist: in the prompt, or among the tokens generation may add.
        """
        bos = self._has_bos(ids)
        kept = check_interventions(self._persistent, self._limits(UNBOUNDED, bos=bos))
        lim = self._limits(len(ids) + max_new_tokens, bos=bos, n_prompt=len(ids))
        return kept + check_interventions(interventions, lim)

    # ---- one prompt ------------------------------------------------------------------------
    @torch.no_grad()
    def feature_intervention(
        self,
        prompt: str | Sequence[int] | torch.Tensor,
        interventions: Sequence[Intervention] = (),
        *,
        constrained: bool = False,
        freeze_attention: bool = True,
        return_activations: bool = False,
        apply_activation_function: bool = True,
        softcap: bool = True,
        logits_at: str = "all",
    ) -> InterventionResult:
        """Run the prompt with feature edits and steering; logits at every position.

        interventions: `(layer, pos, feature, value)` tuples (set), or `FeatureEdit` /
        `Steering` objects (see `glassbox.interventions`); persistent ones apply too.
        return_activations: also return every layer's transcoder activations (L, T, d_tc),
        or pre-activations with `apply_activation_function=False` (what graph edges explain).
        softcap=False returns logits before a final soft-cap (Gemma 2), which edges explain.
        logits_at="last" computes only the last position's logits (a large vocabulary makes
        the unembedding the most expensive step of a short prompt).
        """
        if logits_at not in ("all", "last"):
            raise GlassboxError(f"logits_at must be 'all' or 'last', got {logits_at!r}")
        ids = self._ids(prompt)
        items = self._items(interventions, ids)
        return self._intervene(ids, items, constrained=constrained, freeze_attention=freeze_attention,
                               return_activations=return_activations,
                               apply_activation_function=apply_activation_function, softcap=softcap,
                               logits_at=logits_at)

    def _intervene(self, ids: list[int], items: list[FeatureEdit | Steering], *, constrained: bool,
                   freeze_attention: bool, return_activations: bool = False,
                   apply_activation_function: bool = True, softcap: bool = True,
                   logits_at: str = "all") -> InterventionResult:
        bos = self._has_bos(ids)
        frozen = None
        if constrained:
            frozen = self._freeze(ids, full=True)
        elif freeze_attention and items:
            frozen = self._freeze(ids, full=False)
        plan = self._plan(items, start=0, n=len(ids), bos=bos)
        p = _Pass(plan, frozen, constrained, bos, return_activations, apply_activation_function)
        out = self._run(self.model.as_tensor(ids), p, cache=None, logits_at=logits_at, softcap=softcap)
        return InterventionResult(tokens=ids, logits=out.logits, activations=out.activations)

    @torch.no_grad()
    def top_next_tokens_before_after(
        self,
        prompt: str | Sequence[int] | torch.Tensor,
        interventions: Sequence[Intervention] = (),
        k: int = 10,
        *,
        constrained: bool = False,
        freeze_attention: bool = True,
    ) -> BeforeAfter:
        """The k most likely next tokens of the clean model and of the intervened one."""
        if k < 1:
            raise GlassboxError("k must be at least 1")
        ids = self._ids(prompt)
        before = self._intervene(ids, [], constrained=False, freeze_attention=False, logits_at="last")
        after = self.feature_intervention(ids, interventions, constrained=constrained,
                                          freeze_attention=freeze_attention, logits_at="last")
        return before_after(self.model.tokenizer, before.last_logits, after.last_logits, k)

    # ---- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt: str | Sequence[int] | torch.Tensor,
        *,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        interventions: Sequence[Intervention] = (),
        freeze_attention: bool = False,
        stop_at_eos: bool = True,
    ) -> GenerationResult:
        """Continue the prompt, greedily (temperature 0) or by sampling (seeded, optional top-p).

        Persistent interventions and `interventions` apply at every position they name,
        generated ones included (pos=None: every position after BOS).
        """
        ids = self._ids(prompt)
        _check_sampling(max_new_tokens, temperature, top_p)
        items = self._items(interventions, ids, max_new_tokens)
        return self._generate(ids, items, max_new_tokens=max_new_tokens, temperature=temperature,
                              top_p=top_p, seed=seed, freeze_attention=freeze_attention,
                              stop_at_eos=stop_at_eos)

    @torch.no_grad()
    def generate_before_after(
        self,
        prompt: str | Sequence[int] | torch.Tensor,
        interventions: Sequence[Intervention] = (),
        *,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        freeze_attention: bool = False,
        stop_at_eos: bool = True,
    ) -> tuple[GenerationResult, GenerationResult]:
        """The clean continuation and the intervened one (same seed), for side-by-side display."""
        ids = self._ids(prompt)
        _check_sampling(max_new_tokens, temperature, top_p)
        items = self._items(interventions, ids, max_new_tokens)
        if temperature > 0 and seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        opts = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                    freeze_attention=freeze_attention, stop_at_eos=stop_at_eos)
        return self._generate(ids, [], **opts), self._generate(ids, items, **opts)

    def _generate(self, ids: list[int], items: list[FeatureEdit | Steering], *, max_new_tokens: int,
                  temperature: float, top_p: float | None, seed: int | None, freeze_attention: bool,
                  stop_at_eos: bool) -> GenerationResult:
        bos = self._has_bos(ids)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        eos = self._eos_ids() if stop_at_eos else set()
        cache = KVCache(self.model.n_layers)
        frozen = self._freeze(ids, full=False) if freeze_attention and items else None
        seq = list(ids)
        plan = self._plan(items, start=0, n=len(seq), bos=bos)
        p = _Pass(plan, frozen, False, bos, False, True)
        logits = self._run(self.model.as_tensor(seq), p, cache=cache, logits_at="last").logits[-1]
        new: list[int] = []
        reason = "length"
        while True:
            nxt = pick_token(logits, temperature=temperature, top_p=top_p, generator=gen)
            new.append(nxt)
            seq.append(nxt)
            if nxt in eos:
                reason = "eos"
                break
            if len(new) >= max_new_tokens:
                break
            plan = self._plan(items, start=len(seq) - 1, n=1, bos=bos)
            p = _Pass(plan, None, False, bos, False, True)
            logits = self._run(self.model.as_tensor([nxt]), p, cache=cache, logits_at="last").logits[-1]
        text = self.model.tokenizer.decode(new, skip_special_tokens=True)
        return GenerationResult(prompt_ids=list(ids), new_ids=new, text=text, stop_reason=reason)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        tok_eos = getattr(self.model.tokenizer, "eos_token_id", None)
        cfg = getattr(self.model.hf_model, "generation_config", None)
        for v in (tok_eos, getattr(cfg, "eos_token_id", None)):
            if isinstance(v, int):
                ids.add(v)
            elif isinstance(v, list | tuple):
                ids.update(int(x) for x in v)
        return ids

    # ---- the forward pass ------------------------------------------------------------------
    def _plan(self, items: list[FeatureEdit | Steering], *, start: int, n: int, bos: bool) -> PassPlan:
        return plan_pass(items, start=start, n=n, bos=bos, d_model=self.model.d_model,
                         device=self.model.device, dtype=self.model.dtype)

    def _freeze(self, ids: list[int], *, full: bool) -> Frozen:
        """Record the clean prompt: patterns, and with `full` what a constrained run holds fixed.

        The last prompt's record is kept: the UI runs many interventions on one prompt.
        """
        key = (tuple(ids), full)
        if self._frozen_last is not None and self._frozen_last[0] in (key, (key[0], True)):
            return self._frozen_last[1]
        fwd = self.model.forward(ids, logits_at="none")
        frozen = Frozen(n_pos=len(ids), patterns=[rec.pattern for rec in fwd.layers])
        if full:
            self._freeze_linear(frozen, fwd, bos=self._has_bos(ids))
        self._frozen_last = (key, frozen)
        return frozen

    def _freeze_linear(self, frozen: Frozen, fwd: ForwardResult, *, bos: bool) -> None:
        """Norm scales, transcoder inputs, output-hook values and activations of the clean run.

        The same quantities, computed the same way, as `AttributionContext._freeze`.
        """
        spec = self.model.spec
        names = ("attn_in", "attn_out", "mlp_in", "mlp_out")
        scales: dict[str, list[torch.Tensor | None]] = {name: [] for name in names}
        frozen.tc_in, frozen.tc_inputs, frozen.out_values, frozen.acts = [], [], [], []
        for l, rec in enumerate(fwd.layers):
            mods = self.model.layer_mods[l]
            scales["attn_in"].append(rec.attn_in_inv_rms[0] * norm_gain(mods.attn_norm, spec))
            scales["attn_out"].append(None if mods.attn_out_norm is None
                                      else rec.attn_out_inv_rms[0] * norm_gain(mods.attn_out_norm, spec))
            mlp_inv = rec.mlp_in_inv_rms[0]  # (T, 1)
            scales["mlp_in"].append(mlp_inv * norm_gain(mods.mlp_norm, spec))
            scales["mlp_out"].append(None if mods.mlp_out_norm is None
                                     else rec.mlp_out_inv_rms[0] * norm_gain(mods.mlp_out_norm, spec))
            x = self._tc_input(rec.resid_mid[0], rec.mlp_in[0], mlp_inv)
            frozen.tc_in.append(self._tc_in_scale(mlp_inv, scales["mlp_in"][-1]))
            frozen.tc_inputs.append(x)
            frozen.out_values.append(rec.mlp_raw_out[0] if self._hook_before_post_norm(l) else rec.mlp_out[0])
            frozen.acts.append(self._activations(l, x, bos=bos, start=0))
        frozen.scales = scales
        frozen.final = fwd.final_inv_rms[0] * norm_gain(self.model.decoder.norm, spec)

    def _hook_before_post_norm(self, layer: int) -> bool:
        """The output hook is the raw MLP output, before a Gemma post-MLP norm."""
        post_norm = self.model.layer_mods[layer].mlp_out_norm
        return self.transcoders.output_hook == "mlp.hook_out" and post_norm is not None

    def _tc_input(self, resid_mid: torch.Tensor, mlp_in: torch.Tensor, mlp_inv: torch.Tensor) -> torch.Tensor:
        """What the transcoder reads (.., d), by input hook."""
        hook = self.transcoders.input_hook
        if hook == "mlp.hook_in":
            return mlp_in
        if hook == "ln2.hook_normalized":  # at least float32, as AttributionContext computes it
            return resid_mid.to(torch.promote_types(resid_mid.dtype, torch.float32)) * mlp_inv
        return resid_mid

    def _tc_in_scale(self, mlp_inv: torch.Tensor, mlp_in_scale: torch.Tensor) -> torch.Tensor:
        """(T, d) s with transcoder input = s * resid_mid under frozen norms."""
        hook = self.transcoders.input_hook
        if hook == "mlp.hook_in":
            return mlp_in_scale
        if hook == "ln2.hook_normalized":
            return mlp_inv.expand(-1, self.model.d_model)
        return torch.ones_like(mlp_inv).expand(-1, self.model.d_model)

    def _activations(self, layer: int, x: torch.Tensor, *, bos: bool, start: int,
                     apply: bool = True) -> torch.Tensor:
        """(n, d_tc) activations (or pre-activations) of a layer's features; BOS row zero."""
        acts = self.transcoders.encode(layer, x)
        if apply:
            acts = self.transcoders.activate(layer, acts)
        if bos and start == 0:
            acts[0] = 0
        return acts

    def _rope(self, x: torch.Tensor, start: int, n: int) -> dict[str, tuple]:
        """cos/sin tables for absolute positions start..start+n-1, per layer type."""
        spec, rotary = self.model.spec, self.model.decoder.rotary_emb
        position_ids = torch.arange(start, start + n, device=x.device)[None]
        if spec.rotary_per_layer_type:
            return {lt: rotary(x, position_ids, lt) for lt in set(spec.layer_types)}
        table = rotary(x, position_ids)
        return {lt: table for lt in set(spec.layer_types)}

    def _run(self, tokens: torch.Tensor, p: _Pass, *, cache: KVCache | None, logits_at: str,
             softcap: bool = True) -> _PassOutput:
        """One pass over tokens (1, n) at positions [plan.start, plan.start + n)."""
        start, n = p.plan.start, tokens.shape[1]
        if cache is not None and cache.length != start:
            raise GlassboxError(f"cache holds {cache.length} positions but the pass starts at {start}")
        if cache is None and start != 0:
            raise GlassboxError("a pass that does not start at position 0 needs a cache")
        dec = self.model.decoder
        resid = dec.embed_tokens(tokens)  # (1, n, d); Gemma's module scales by sqrt(d)
        ropes = self._rope(resid, start, n)
        pending: list[torch.Tensor | None] = [None] * self.model.n_layers  # (n, d) at output hooks
        acts_out: list[torch.Tensor] = []
        for l in range(self.model.n_layers):
            rope = ropes[self.model.spec.layer_types[l]]
            resid = self._layer(l, resid, p, cache, rope, pending, acts_out)
        final = resid[:, -1:] if logits_at == "last" else resid
        if p.constrained:
            scale = p.frozen.final if logits_at == "all" else p.frozen.final[-1:]
            normed = frozen_norm(final, scale)
        else:
            normed = dec.norm(final)
        logits = self.model.hf_model.lm_head(normed)[0]  # (n or 1, V)
        cap = self.model.spec.final_softcap
        if softcap and cap is not None:
            logits = torch.tanh(logits / cap) * cap
        acts = torch.stack(acts_out) if p.want_acts else None
        return _PassOutput(logits=logits, activations=acts)

    def _norm(self, module: torch.nn.Module, x: torch.Tensor, p: _Pass, kind: str,
              layer: int) -> torch.Tensor:
        """The norm module, or in a constrained run its clean-prompt scale."""
        if p.constrained:
            return frozen_norm(x, p.frozen.scales[kind][layer])
        return module(x)

    def _layer(self, l: int, resid: torch.Tensor, p: _Pass, cache: KVCache | None, rope: tuple,
               pending: list[torch.Tensor | None], acts_out: list[torch.Tensor]) -> torch.Tensor:
        """One decoder layer: attention, then the MLP block with this pass's changes."""
        mods = self.model.layer_mods[l]
        h = self._norm(mods.attn_norm, resid, p, "attn_in", l)
        attn = self._attention(l, h, p, cache, rope)
        if mods.attn_out_norm is not None:
            attn = self._norm(mods.attn_out_norm, attn, p, "attn_out", l)
        resid_mid = resid + attn  # (1, n, d)

        mlp_in = self._norm(mods.mlp_norm, resid_mid, p, "mlp_in", l)
        if p.constrained:
            x = self._tc_input_frozen(resid_mid[0], p.frozen.tc_in[l])
        else:
            x = self._tc_input(resid_mid[0], mlp_in[0], inv_rms(resid_mid[0], self.model.spec.norm_eps))
        edits = p.plan.edits.get(l)
        current = None
        if edits is not None or p.want_acts:
            current = self._activations(l, x, bos=p.bos, start=p.plan.start)
        if p.want_acts:
            acts_out.append(current if p.apply_activation
                            else self._activations(l, x, bos=p.bos, start=p.plan.start, apply=False))
        if edits is not None:
            base = p.frozen.acts[l] if p.constrained else current
            self._write_deltas(l, edits.pos, edits.feat, edits.deltas(base), pending, resid.shape[1])

        out = self._mlp_out(l, mlp_in, x, p, pending[l])
        resid = resid_mid + out
        steer = p.plan.steering.get(l)
        return resid if steer is None else resid + steer[None]

    def _tc_input_frozen(self, resid_mid: torch.Tensor, tc_in: torch.Tensor) -> torch.Tensor:
        """Transcoder input under frozen norms: tc_in * resid_mid, in >= float32."""
        ct = torch.promote_types(torch.float32, resid_mid.dtype)
        return tc_in.to(ct) * resid_mid.to(ct)

    def _write_deltas(self, layer: int, pos: torch.Tensor, feat: torch.Tensor, delta: torch.Tensor,
                      pending: list[torch.Tensor | None], n: int) -> None:
        """Add delta * decoder row to every output hook the features write (CLT: all later)."""
        keep = delta != 0
        if not bool(keep.any()):
            return
        pos, feat, delta = pos[keep], feat[keep], delta[keep]
        rows = self.transcoders.decoder_rows(layer, feat.cpu())  # (m, n_out, d)
        dtype = self.model.dtype
        wdtype = torch.promote_types(rows.dtype, delta.dtype)
        writes = rows.to(device=pos.device, dtype=wdtype) * delta[:, None, None]  # (m, n_out, d)
        for j in range(writes.shape[1]):
            target = layer + j
            if pending[target] is None:
                pending[target] = torch.zeros(n, writes.shape[-1], device=pos.device, dtype=dtype)
            pending[target].index_add_(0, pos, writes[:, j].to(dtype))

    def _attention(self, l: int, h: torch.Tensor, p: _Pass, cache: KVCache | None,
                   rope: tuple) -> torch.Tensor:
        """Attention output (1, n, d) for normalised input h (1, n, d), over the cache if any."""
        spec, attn = self.model.spec, self.model.layer_mods[l].attn
        _, n, _ = h.shape
        q = attn.q_proj(h).view(1, n, spec.n_heads, spec.head_dim)
        k = attn.k_proj(h).view(1, n, spec.n_kv_heads, spec.head_dim)
        v = attn.v_proj(h).view(1, n, spec.n_kv_heads, spec.head_dim).transpose(1, 2)  # (1, K, n, hd)
        if spec.qk_norm:
            q, k = attn.q_norm(q), attn.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)  # (1, H, n, hd), (1, K, n, hd)
        cos, sin = rope
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        if cache is not None:
            k, v = cache.extend(l, k, v)  # (1, K, S, hd)
        pattern = self._pattern(l, q, k, p)  # (1, H, n, S)
        return attention_output(attn, pattern, v, spec)

    def _pattern(self, l: int, q: torch.Tensor, k: torch.Tensor, p: _Pass) -> torch.Tensor:
        """Softmax weights (1, H, n, S); rows of clean-prompt positions frozen if asked."""
        spec = self.model.spec
        start, n, S = p.plan.start, q.shape[2], k.shape[2]
        k = k.repeat_interleave(spec.n_heads // spec.n_kv_heads, dim=1)  # (1, H, S, hd)
        scores = (q @ k.transpose(-1, -2)) * spec.attn_scale  # (1, H, n, S)
        if spec.attn_softcap is not None:
            scores = torch.tanh(scores / spec.attn_softcap) * spec.attn_softcap
        q_pos = torch.arange(start, start + n, device=q.device)
        allowed = causal_allowed(q_pos, torch.arange(S, device=q.device), spec.window(l))
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        softmax_dtype = torch.promote_types(torch.float32, q.dtype)
        pattern = torch.softmax(scores, dim=-1, dtype=softmax_dtype).to(q.dtype)
        if p.frozen is not None and start < p.frozen.n_pos:
            rows = min(n, p.frozen.n_pos - start)  # query rows inside the clean prompt
            T0 = p.frozen.n_pos
            pattern = pattern.clone()
            pattern[:, :, :rows] = 0
            pattern[:, :, :rows, :T0] = p.frozen.patterns[l][:, :, start:start + rows, :T0]
        return pattern

    def _mlp_out(self, l: int, mlp_in: torch.Tensor, x: torch.Tensor, p: _Pass,
                 delta: torch.Tensor | None) -> torch.Tensor:
        """What the MLP block adds to the residual (1, n, d), with the pending decoder writes."""
        mods = self.model.layer_mods[l]
        post, before_post = mods.mlp_out_norm, self._hook_before_post_norm(l)
        if p.constrained:
            y = p.frozen.out_values[l][None].clone()
            skip = self.transcoders.skip(l, x - p.frozen.tc_inputs[l].to(x.dtype))
            if skip is not None:
                if p.bos and p.plan.start == 0:
                    skip = skip.clone()
                    skip[0] = 0  # BOS MLP output stays constant, as in attribution
                y = y + skip.to(y.dtype)[None]
            if delta is not None:
                y = y + delta[None]
            return frozen_norm(y, p.frozen.scales["mlp_out"][l]) if before_post else y
        raw = mods.mlp(mlp_in)
        if before_post:
            return post(raw if delta is None else raw + delta[None])
        out = raw if post is None else post(raw)
        return out if delta is None else out + delta[None]


# ---- sampling -------------------------------------------------------------------------------


def _check_sampling(max_new_tokens: int, temperature: float, top_p: float | None) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise GlassboxError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not temperature >= 0:
        raise GlassboxError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_p is not None and not 0 < top_p <= 1:
        raise GlassboxError(f"top_p must be in (0, 1], got {top_p}")


def pick_token(logits: torch.Tensor, *, temperature: float, top_p: float | None,
               generator: torch.Generator | None) -> int:
    """Greedy (temperature 0) or a sample from softmax(logits / T), cut to the top-p nucleus."""
    if temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.double().cpu() / temperature, dim=-1)  # (V,)
    if top_p is not None and top_p < 1:
        sorted_p, order = probs.sort(descending=True)
        before = sorted_p.cumsum(0) - sorted_p  # mass of the tokens ranked above each one
        sorted_p[before >= top_p] = 0  # keep the smallest prefix that reaches top_p
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=generator))
