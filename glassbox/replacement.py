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
  edit reaches the targets only through the linear paths a graph's edges measure. The run is
  `glassbox.frozen.FrozenPrompt.run`, the forward `AttributionContext.linear_forward` checks
  graph rows with, here with any feature edited and every logit read.

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

from glassbox.errors import GlassboxError
from glassbox.frozen import FrozenPrompt, freeze
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
from glassbox.models.attention import KVCache, RopeTable, attention, rotary_tables
from glassbox.models.forward import unembed
from glassbox.models.hooks import layer_hooks
from glassbox.models.loaded import LoadedModel
from glassbox.models.norms import frozen_norm
from glassbox.transcoders.base import TranscoderSet

log = logging.getLogger(__name__)

UNBOUNDED = 1 << 62  # sequence length used to check persistent positions


# ---- what one run needs besides the model -----------------------------------------------------


@dataclass
class _CleanPrompt:
    """The clean run of a prompt: what free runs with frozen attention and constrained runs hold."""

    ids: tuple[int, ...]
    patterns: list[torch.Tensor]  # (1, H, T, T) per layer
    frozen: FrozenPrompt | None = None  # the local replacement model (constrained runs)
    acts: list[torch.Tensor] | None = None  # (T, d_tc) per layer, BOS zeroed (constrained runs)


@dataclass
class _Pass:
    """How one free pass runs: its positions and changes, and which attention rows it holds."""

    plan: PassPlan
    held: list[torch.Tensor] | None  # clean patterns (1, H, T0, T0): query rows < T0 use them
    n_held: int  # leading positions whose features are zero (BOS, or a chat prefix)
    want_acts: bool
    apply_activation: bool


@dataclass
class _PassOutput:
    logits: torch.Tensor  # (n or 1, V)
    activations: torch.Tensor | None  # (L, n, d_tc)


# ---- the model --------------------------------------------------------------------------------


class ReplacementModel:
    """A model plus its transcoders, for feature interventions, steering and generation."""

    def __init__(self, model: LoadedModel, transcoders: TranscoderSet) -> None:
        transcoders.check_compatible(model)
        self.model = model
        self.transcoders = transcoders
        self._persistent: list[FeatureEdit | Steering] = []
        self._hooks = layer_hooks(model, transcoders.input_hook, transcoders.output_hook)
        self._clean_last: _CleanPrompt | None = None  # the UI runs many interventions on one prompt

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
        self._persistent.extend(check_interventions([item], self._limits(UNBOUNDED, n_held=0)))

    # ---- checks ----------------------------------------------------------------------------
    def _limits(self, n_pos: int, *, n_held: int, n_prompt: int = 0) -> Limits:
        return Limits(self.model.n_layers, self.transcoders.d_transcoder, self.model.d_model, n_pos, n_held,
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

    def _n_held(self, ids: list[int]) -> int:
        """Leading positions held constant, as attribution holds them (BOS, or a chat prefix)."""
        return self.transcoders.held_positions(ids, set(getattr(self.model.tokenizer, "all_special_ids", [])))

    def _items(self, interventions: Sequence[Intervention], ids: list[int],
               max_new_tokens: int = 0) -> list[FeatureEdit | Steering]:
        """Persistent interventions (positions past the sequence never apply), then the call's.

        A call's positions must exist: in the prompt, or among the tokens generation may add.
        """
        n_held = self._n_held(ids)
        kept = check_interventions(self._persistent, self._limits(UNBOUNDED, n_held=n_held))
        lim = self._limits(len(ids) + max_new_tokens, n_held=n_held, n_prompt=len(ids))
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
        n_held = self._n_held(ids)
        plan = self._plan(items, start=0, n=len(ids), n_held=n_held)
        if constrained:
            out = self._run_constrained(ids, plan, n_held=n_held, want_acts=return_activations,
                                        apply_activation=apply_activation_function, logits_at=logits_at,
                                        softcap=softcap)
        else:
            held = self._clean(ids).patterns if freeze_attention and items else None
            p = _Pass(plan, held, n_held, return_activations, apply_activation_function)
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
        n_held = self._n_held(ids)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        eos = self._eos_ids() if stop_at_eos else set()
        cache = KVCache(self.model.n_layers)
        held = self._clean(ids).patterns if freeze_attention and items else None
        seq = list(ids)
        plan = self._plan(items, start=0, n=len(seq), n_held=n_held)
        p = _Pass(plan, held, n_held, False, True)
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
            plan = self._plan(items, start=len(seq) - 1, n=1, n_held=n_held)
            p = _Pass(plan, None, n_held, False, True)
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
    def _plan(self, items: list[FeatureEdit | Steering], *, start: int, n: int, n_held: int) -> PassPlan:
        return plan_pass(items, start=start, n=n, n_held=n_held, d_model=self.model.d_model,
                         device=self.model.device, dtype=self.model.dtype)

    def _clean(self, ids: list[int], *, linear: bool = False) -> _CleanPrompt:
        """The clean run of the prompt; with `linear`, its local replacement model too.

        The last prompt's record is kept: the UI runs many interventions on one prompt.
        """
        last = self._clean_last
        if last is not None and last.ids == tuple(ids) and (last.frozen is not None or not linear):
            return last
        fwd = self.model.forward(ids, logits_at="none")
        clean = _CleanPrompt(tuple(ids), [rec.pattern for rec in fwd.layers])
        if linear:
            n_held = self._n_held(ids)
            clean.frozen = freeze(self.model, self.transcoders, fwd, dtype=self.model.dtype, held=n_held)
            clean.acts = [self._activations(l, fl.x0, n_held=n_held, start=0)
                          for l, fl in enumerate(clean.frozen.layers)]
        self._clean_last = clean
        return clean

    def _activations(self, layer: int, x: torch.Tensor, *, n_held: int, start: int,
                     apply: bool = True) -> torch.Tensor:
        """(n, d_tc) activations (or pre-activations) of a layer's features; held rows zero."""
        acts = self.transcoders.encode(layer, x)
        if apply:
            acts = self.transcoders.activate(layer, acts)
        acts[: max(0, n_held - start)] = 0
        return acts

    def _run(self, tokens: torch.Tensor, p: _Pass, *, cache: KVCache | None, logits_at: str,
             softcap: bool = True) -> _PassOutput:
        """One free pass over tokens (1, n) at positions [plan.start, plan.start + n)."""
        start = p.plan.start
        if cache is not None and cache.length != start:
            raise GlassboxError(f"cache holds {cache.length} positions but the pass starts at {start}")
        if cache is None and start != 0:
            raise GlassboxError("a pass that does not start at position 0 needs a cache")
        dec, spec = self.model.decoder, self.model.spec
        resid = dec.embed_tokens(tokens)  # (1, n, d); Gemma's module scales by sqrt(d)
        ropes = rotary_tables(dec.rotary_emb, resid, spec, start=start)
        pending: list[torch.Tensor | None] = [None] * self.model.n_layers  # (n, d) at output hooks
        acts_out: list[torch.Tensor] = []
        for l in range(self.model.n_layers):
            resid = self._layer(l, resid, p, cache, ropes[spec.layer_types[l]], pending, acts_out)
        return self._output(resid, acts_out if p.want_acts else None, logits_at=logits_at, softcap=softcap)

    def _layer(self, l: int, resid: torch.Tensor, p: _Pass, cache: KVCache | None, rope: RopeTable,
               pending: list[torch.Tensor | None], acts_out: list[torch.Tensor]) -> torch.Tensor:
        """One decoder layer, norms live: attention, then the MLP block with this pass's changes."""
        mods, hooks, start = self.model.layer_mods[l], self._hooks[l], p.plan.start
        held = None if p.held is None else p.held[l]
        attn, _ = attention(mods.attn, mods.attn_norm(resid), rope, self.model.spec, l, start=start,
                            cache=cache, held=held)
        if mods.attn_out_norm is not None:
            attn = mods.attn_out_norm(attn)
        resid_mid = resid + attn  # (1, n, d)

        mlp_in = mods.mlp_norm(resid_mid)
        x = hooks.read(resid_mid[0], mlp_in=mlp_in[0])  # (n, d)
        edits = p.plan.edits.get(l)
        current = None
        if edits is not None or p.want_acts:
            current = self._activations(l, x, n_held=p.n_held, start=start)
        if p.want_acts:
            acts_out.append(current if p.apply_activation
                            else self._activations(l, x, n_held=p.n_held, start=start, apply=False))
        if edits is not None:
            self._write_deltas(l, edits.pos, edits.feat, edits.deltas(current), pending, resid.shape[1])
        delta = None if pending[l] is None else pending[l][None]
        resid = resid_mid + hooks.block_out(mlp_in, delta)
        steer = p.plan.steering.get(l)
        return resid if steer is None else resid + steer[None]

    def _run_constrained(self, ids: list[int], plan: PassPlan, *, n_held: int, want_acts: bool,
                         apply_activation: bool, logits_at: str, softcap: bool) -> _PassOutput:
        """The prompt through its local replacement model, with the plan's writes and steering.

        An edit's change is measured from the clean activation, so every write is known before
        the pass; what the encoders read during it is returned when asked.
        """
        clean = self._clean(ids, linear=True)
        L = self.model.n_layers
        pending: list[torch.Tensor | None] = [None] * L  # (n, d) at output hooks
        for l in sorted(plan.edits):
            edits = plan.edits[l]
            self._write_deltas(l, edits.pos, edits.feat, edits.deltas(clean.acts[l]), pending, len(ids))
        acts_out: list[torch.Tensor] = []

        def observe(layer: int, x: torch.Tensor) -> None:
            acts_out.append(self._activations(layer, x, n_held=n_held, start=0, apply=apply_activation))

        frozen = clean.frozen
        resid = frozen.run(frozen.embeddings[None], writes=pending,
                           steering=[plan.steering.get(l) for l in range(L)],
                           on_input=observe if want_acts else None)
        return self._output(resid, acts_out if want_acts else None, logits_at=logits_at, softcap=softcap,
                            final_scale=frozen.final)

    def _output(self, resid: torch.Tensor, acts: list[torch.Tensor] | None, *, logits_at: str,
                softcap: bool, final_scale: torch.Tensor | None = None) -> _PassOutput:
        """Logits of the final residual (1, n, d), through the final norm (live, or its frozen
        scale (T, d) in a constrained run), and the stacked activations."""
        final = resid[:, -1:] if logits_at == "last" else resid
        if final_scale is None:
            normed = self.model.decoder.norm(final)
        else:
            normed = frozen_norm(final, final_scale if logits_at == "all" else final_scale[-1:])
        logits = unembed(self.model.hf_model, normed, self.model.spec, softcap=softcap)[0]  # (n or 1, V)
        return _PassOutput(logits=logits, activations=None if acts is None else torch.stack(acts))

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
