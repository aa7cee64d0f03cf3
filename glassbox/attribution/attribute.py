"""Attribution: the exact linear graph of one prompt under the frozen replacement model.

Algorithm (circuit-tracer's definitions, our implementation):
1. Context. Run the model once; freeze attention patterns and norm scales; encode every
   layer's transcoder; error = true MLP output - reconstruction. Features and errors at a
   BOS position 0 are dropped.
2. Targets. Logits to explain: top tokens until cumulative probability >= desired_logit_prob
   (at most max_n_logits), or the caller's tokens / custom directions.
3. Logit rows. One backward sweep per batch of targets gives their edges from every source.
4. Feature rows. Each active feature's pre-activation is a target too. When
   max_feature_nodes is set, features are visited in order of their estimated influence on
   the logits (recomputed every `update_interval` batches from the rows known so far).
5. Assembly. Adjacency over [selected features | errors | tokens | logits], rows = targets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import torch

from glassbox.attribution.context import AttributionContext
from glassbox.attribution.targets import Targets, TargetSpec, resolve_targets
from glassbox.errors import GlassboxError
from glassbox.graph.graph import Graph
from glassbox.models.loaded import LoadedModel
from glassbox.transcoders.base import TranscoderSet

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


def attribute(
    prompt: str | Sequence[int],
    model: LoadedModel,
    transcoders: TranscoderSet,
    *,
    max_n_logits: int = 10,
    desired_logit_prob: float = 0.95,
    max_feature_nodes: int | None = None,
    batch_size: int = 64,
    targets: TargetSpec = None,
    update_interval: int = 4,
    max_tokens: int | None = None,
    compute_dtype: torch.dtype | None = None,
    progress: Progress | None = None,
) -> Graph:
    """Compute the attribution graph of `prompt` (a string, or token ids with BOS)."""
    t0 = time.perf_counter()
    report = progress or (lambda phase, frac: None)
    _check_options(batch_size, max_feature_nodes, update_interval)
    ids = model.tokenize(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
    if len(ids) < 2:
        raise GlassboxError("the prompt is empty: give at least one token after BOS")
    if max_tokens is not None and len(ids) > max_tokens:
        raise GlassboxError(f"the prompt has {len(ids)} tokens; the limit is {max_tokens}")

    report("forward", 0.0)
    ctx = AttributionContext(model, transcoders, ids, compute_dtype=compute_dtype)
    tg = resolve_targets(model, ctx.logits, targets, max_n_logits=max_n_logits,
                         desired_logit_prob=desired_logit_prob)
    t_ctx = time.perf_counter()
    log.info("%d tokens, %d active features, %d logit targets",
             ctx.n_pos, ctx.n_active, len(tg.logit_targets))

    logit_rows = _logit_rows(ctx, tg, batch_size)
    n_visit = ctx.n_active if max_feature_nodes is None else min(max_feature_nodes, ctx.n_active)
    # With every feature selected, rows are written straight into the adjacency matrix:
    # one N x N buffer instead of two.
    full = None
    if n_visit == ctx.n_active:
        N = ctx.n_cols + logit_rows.shape[0]
        full = torch.zeros(N, N, dtype=logit_rows.dtype)
    feature_rows, visited_order = _feature_rows(
        ctx, logit_rows, tg.probabilities, n_visit, batch_size, update_interval, report,
        out=None if full is None else full[: ctx.n_active, : ctx.n_cols])
    report("assemble", 1.0)
    graph = _assemble(ctx, tg, logit_rows, feature_rows, visited_order, model, transcoders, prompt,
                      full=full)
    graph.metadata.update(
        max_n_logits=max_n_logits, desired_logit_prob=desired_logit_prob,
        max_feature_nodes=max_feature_nodes, batch_size=batch_size,
        n_active_features=ctx.n_active, n_selected_features=graph.n_selected,
        seconds_context=round(t_ctx - t0, 3), seconds_total=round(time.perf_counter() - t0, 3),
        compute_dtype=str(ctx.dtype).removeprefix("torch."),
        model_dtype=str(model.dtype).removeprefix("torch."),
    )
    return graph


def _check_options(batch_size: int, max_feature_nodes: int | None, update_interval: int) -> None:
    if batch_size < 1:
        raise GlassboxError("batch_size must be at least 1")
    if max_feature_nodes is not None and max_feature_nodes < 0:
        raise GlassboxError("max_feature_nodes must be >= 0 (or None for all features)")
    if update_interval < 1:
        raise GlassboxError("update_interval must be at least 1")


def _logit_rows(ctx: AttributionContext, tg: Targets, batch_size: int) -> torch.Tensor:
    """(k, n_cols) rows of the logit targets."""
    k = len(tg.logit_targets)
    rows = []
    for s in range(0, k, batch_size):
        n = min(batch_size, k - s)
        rows.append(ctx.backward_rows(
            torch.full((n,), ctx.n_layers), torch.full((n,), ctx.n_pos - 1), tg.vectors[s:s + n],
        ).to(_row_dtype(ctx)).cpu())
    return torch.cat(rows)


def _row_dtype(ctx: AttributionContext) -> torch.dtype:
    """Adjacency precision: float32, or float64 when the whole computation is float64."""
    return torch.float64 if ctx.dtype == torch.float64 else torch.float32


def _feature_batch(ctx: AttributionContext, idx: torch.Tensor) -> torch.Tensor:
    """Rows for active features idx: inject each encoder row at its layer and position."""
    feats = ctx.active_features[idx]
    vecs = torch.empty(len(idx), ctx.tc.d_model, dtype=ctx.tc.dtype, device=ctx.tc.device)
    for layer in feats[:, 0].unique().tolist():
        m = feats[:, 0] == layer
        vecs[m.to(vecs.device)] = ctx.tc.encoder_rows(layer, feats[m, 2])
    return ctx.backward_rows(feats[:, 0], feats[:, 1], vecs).to(_row_dtype(ctx)).cpu()


def _feature_rows(ctx: AttributionContext, logit_rows: torch.Tensor, logit_p: torch.Tensor,
                  n_visit: int, batch_size: int, update_interval: int,
                  report: Progress, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the visited features (in visit order) and their active-feature indices."""
    rows = out if out is not None else torch.zeros(n_visit, ctx.n_cols, dtype=_row_dtype(ctx))
    visited = torch.zeros(ctx.n_active, dtype=torch.bool)
    order = torch.zeros(n_visit, dtype=torch.long)
    done = 0
    while done < n_visit:
        if n_visit == ctx.n_active:
            pending = torch.arange(ctx.n_active)
        else:
            infl = partial_influence(logit_rows, rows[:done], logit_p, order[:done], ctx.n_active)
            ranked = torch.argsort(infl, descending=True, stable=True)
            pending = ranked[~visited[ranked]][: min(update_interval * batch_size, n_visit - done)]
            # Which features are visited is decided; batching them by (layer, position)
            # lets each sweep stop early and touch fewer positions.
            pending = pending[torch.argsort(pending)]  # active order = (layer, pos, feature)
        for s in range(0, len(pending), batch_size):
            idx = pending[s:s + batch_size]
            rows[done:done + len(idx)] = _feature_batch(ctx, idx)
            order[done:done + len(idx)] = idx
            visited[idx] = True
            done += len(idx)
            report("features", done / max(n_visit, 1))
    return rows, order


def partial_influence(logit_rows: torch.Tensor, feature_rows: torch.Tensor, logit_p: torch.Tensor,
                      feature_of_row: torch.Tensor, n_features: int, max_iter: int = 256) -> torch.Tensor:
    """Influence of every active feature on the logits through the rows known so far.

    A row's weight (logit probability for logit rows) is pushed to its sources in proportion
    to |edge| / sum |edges of the row|, and on through the rows of those sources, until
    nothing is left (the graph is a DAG). Works in row chunks: no copy of the rows is made.
    Returns (n_features,) influence scores.
    """
    blocks = (logit_rows, feature_rows)
    norms = [_row_abs_sums(b) for b in blocks]
    weights = [logit_p.float(), torch.zeros(feature_rows.shape[0])]
    total = torch.zeros(n_features)
    for _ in range(max_iter):
        scaled = [w / n for w, n in zip(weights, norms, strict=True)]
        if not any(bool(w.any()) for w in scaled):
            return total
        flow = sum(_weighted_abs_sum(b, w) for b, w in zip(blocks, scaled, strict=True))
        feat_flow = flow[:n_features]
        total += feat_flow
        weights = [torch.zeros(logit_rows.shape[0]), feat_flow[feature_of_row]]
    raise GlassboxError("influence did not converge: the graph has a cycle")


def _row_abs_sums(rows: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    sums = torch.empty(rows.shape[0])
    for s in range(0, rows.shape[0], chunk):
        sums[s:s + chunk] = rows[s:s + chunk].abs().sum(1)
    return sums.clamp(min=1e-10)


def _weighted_abs_sum(rows: torch.Tensor, w: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """sum_r w[r] * |rows[r]| without materialising |rows| all at once."""
    live = torch.nonzero(w).flatten()
    acc = torch.zeros(rows.shape[1])
    for s in range(0, len(live), chunk):
        r = live[s:s + chunk]
        acc += w[r] @ rows[r].abs().float()
    return acc


def _assemble(ctx: AttributionContext, tg: Targets, logit_rows: torch.Tensor,
              feature_rows: torch.Tensor, visited_order: torch.Tensor, model: LoadedModel,
              transcoders: TranscoderSet, prompt: str | Sequence[int],
              full: torch.Tensor | None = None) -> Graph:
    selected, perm = torch.sort(visited_order)  # node order = active-feature order
    n_sel, k = len(selected), logit_rows.shape[0]
    n_other = ctx.n_cols - ctx.n_active  # errors + tokens
    N = n_sel + n_other + k
    if full is not None:  # every feature visited in index order, rows already in place
        adj = full
        adj[N - k:, : n_sel + n_other] = logit_rows
    else:
        col_keep = torch.cat([selected, torch.arange(ctx.n_active, ctx.n_cols)])
        adj = torch.zeros(N, N, dtype=feature_rows.dtype)
        adj[:n_sel, : n_sel + n_other] = feature_rows[perm][:, col_keep]
        adj[N - k:, : n_sel + n_other] = logit_rows[:, col_keep]
    return Graph(
        input_string=prompt if isinstance(prompt, str) else model.tokenizer.decode(ctx.tokens),
        input_tokens=torch.tensor(ctx.tokens, dtype=torch.long),
        active_features=ctx.active_features.long(),
        activation_values=ctx.activation_values.float().cpu(),
        selected_features=selected,
        adjacency_matrix=adj,
        logit_targets=tg.logit_targets,
        logit_probabilities=tg.probabilities,
        n_layers=ctx.n_layers,
        vocab_size=model.vocab_size,
        model_name=model.name,
        transcoder_name=transcoders.name,
        token_strings=model.decode_tokens(ctx.tokens),
    )
