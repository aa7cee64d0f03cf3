"""One prompt's attribution context: its local replacement model, sources, and the transpose.

Freezing every attention pattern and normalisation scale at its value on the prompt, and
replacing each MLP output by (transcoder reconstruction + error), makes the map

    sources (token embeddings, feature decoder writes, errors) -> targets (feature
    pre-activations, demeaned logits)

linear (`glassbox.frozen` holds that frozen model and runs it forward).
`AttributionContext.backward_rows` evaluates the map's transpose (one row of the adjacency
matrix per target, batched, top layer to bottom); `linear_forward` evaluates the map itself
around the prompt and is the oracle the tests check rows against.

Shapes: T positions, d model width, H heads, K kv-heads, hd head size, B rows in a batch,
n active features. Feature/error/token columns are laid out [features | errors (l*T+p) | tokens].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from glassbox.errors import GlassboxError
from glassbox.frozen import FrozenLayer, freeze
from glassbox.models.forward import ForwardResult
from glassbox.models.loaded import LoadedModel
from glassbox.transcoders.base import TranscoderSet


@dataclass
class DecoderReadout:
    """Every active feature's write into one layer's MLP output: column, position, vector."""

    cols: torch.Tensor  # (m,) column index of the source feature
    pos: torch.Tensor  # (m,)
    vecs: torch.Tensor  # (m, d) activation * decoder row (already in residual units, pre tc_out)


@dataclass
class SourceReadout:
    """Every source writing into one layer's MLP output (features and errors), by position.

    Rows offsets[p]:offsets[p+1] are the sources at position p, so reading edges is one
    small matrix product per position instead of a gather of (rows x sources x d).
    """

    cols: torch.Tensor  # (m,) source column
    vecs: torch.Tensor  # (m, d) what the source writes
    offsets: list[int]  # (T + 1,)


class AttributionContext:
    """Everything about one prompt that attribution and the oracle need."""

    def __init__(self, model: LoadedModel, transcoders: TranscoderSet, tokens: list[int],
                 *, compute_dtype: torch.dtype | None = None, zero_bos: bool = True) -> None:
        transcoders.check_compatible(model)
        if len(tokens) < 1:
            raise GlassboxError("the prompt has no tokens")
        self.model, self.tc = model, transcoders
        self.tokens = list(tokens)
        self.dtype = compute_dtype or (torch.float64 if model.dtype == torch.float64 else torch.float32)
        self.device = model.device
        special = set(getattr(model.tokenizer, "all_special_ids", []))
        # Leading positions held constant: BOS, or a chat set's whole template prefix.
        self.held = transcoders.held_positions(self.tokens, special) if zero_bos else 0
        fwd = model.forward(self.tokens, logits_at="last")
        self.logits = fwd.logits[0, -1].float()  # (V,) after soft-cap, for probabilities
        self._freeze(fwd)
        self._encode()
        self._build_readouts()

    # ---- phase 1: freeze the forward pass --------------------------------------------------
    @property
    def n_pos(self) -> int:
        return len(self.tokens)

    @property
    def n_layers(self) -> int:
        return self.model.n_layers

    def _c(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    def _freeze(self, fwd: ForwardResult) -> None:
        """The local replacement model of the prompt, in the compute dtype."""
        self.frozen = freeze(self.model, self.tc, fwd, dtype=self.dtype, skip_dtype=self.dtype,
                             held=self.held)
        self.layers: list[FrozenLayer] = self.frozen.layers
        self.embeddings = self.frozen.embeddings  # (T, d)
        T = self.n_pos
        self.final_scale = self.frozen.final[T - 1]  # (d,)
        self.final_resid = self._c(fwd.final_resid[0, T - 1])

    # ---- phase 1b: transcoder activations and errors --------------------------------------
    def _encode(self) -> None:
        """Active features (layer, pos, feature) in lexicographic order, and their activations."""
        triples, values = [], []
        for l in range(self.n_layers):
            pre = self.pre_activations(l)  # (T, d_tc)
            acts = self.tc.activate(l, pre)
            acts[: self.held] = 0
            pos, feat = acts.nonzero(as_tuple=True)  # row-major: sorted by (pos, feat)
            triples.append(torch.stack([torch.full_like(pos, l), pos, feat], dim=1))
            values.append(acts[pos, feat])
        self.active_features = torch.cat(triples).cpu()  # (n, 3)
        self.activation_values = self._c(torch.cat(values))  # (n,)
        self.layer_offsets = [0]
        for t in triples:
            self.layer_offsets.append(self.layer_offsets[-1] + t.shape[0])

    @property
    def n_active(self) -> int:
        return int(self.active_features.shape[0])

    @property
    def n_cols(self) -> int:
        """Source columns: active features, errors, tokens."""
        return self.n_active + self.n_layers * self.n_pos + self.n_pos

    def error_col(self, layer: int, pos: int) -> int:
        return self.n_active + layer * self.n_pos + pos

    def token_col(self, pos: int) -> int:
        return self.n_active + self.n_layers * self.n_pos + pos

    def layer_slice(self, layer: int) -> slice:
        return slice(self.layer_offsets[layer], self.layer_offsets[layer + 1])

    def _build_readouts(self) -> None:
        """Decoder writes per output layer, and the errors the reconstruction leaves."""
        L, T = self.n_layers, self.n_pos
        per_out: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in range(L)]
        for src in range(L):
            sl = self.layer_slice(src)
            feats = self.active_features[sl]
            if feats.shape[0] == 0:
                continue
            rows = self.tc.decoder_rows(src, feats[:, 2])  # (m, n_out, d)
            vecs = self._c(rows) * self.activation_values[sl, None, None]
            cols = torch.arange(sl.start, sl.stop)
            for j in range(rows.shape[1]):
                per_out[src + j].append((cols, feats[:, 1], vecs[:, j]))
        readouts: list[DecoderReadout] = []
        self.errors: list[torch.Tensor] = []  # (T, d) per layer
        for l in range(L):
            parts = per_out[l]
            d = self.embeddings.shape[1]
            cols = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, dtype=torch.long)
            pos = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, dtype=torch.long)
            vecs = torch.cat([p[2] for p in parts]) if parts else self.embeddings.new_zeros(0, d)
            readouts.append(DecoderReadout(cols=cols.to(self.device), pos=pos.to(self.device), vecs=vecs))
            recon = self.embeddings.new_zeros(T, d).index_add_(0, pos.to(self.device), vecs)
            recon = recon + self._c(self.tc.layers[l].b_dec)
            fl = self.layers[l]
            if fl.skip is not None:
                recon = recon + fl.x0 @ fl.skip
            err = fl.y0 - recon
            err[: self.held] = 0
            self.errors.append(err)
        self.sources = [self._source_readout(l, readouts[l]) for l in range(L)]

    def _source_readout(self, layer: int, ro: DecoderReadout) -> SourceReadout:
        T = self.n_pos
        first = self.held
        err_pos = torch.arange(first, T, device=self.device)
        cols = torch.cat([ro.cols, self.error_col(layer, 0) + err_pos])
        pos = torch.cat([ro.pos, err_pos])
        vecs = torch.cat([ro.vecs, self.errors[layer][first:]])
        order = torch.argsort(pos, stable=True)
        counts = torch.bincount(pos, minlength=T).tolist()
        offsets = [0]
        for c in counts:
            offsets.append(offsets[-1] + c)
        return SourceReadout(cols=cols[order], vecs=vecs[order].contiguous(), offsets=offsets)

    # ---- the transpose: rows of the adjacency matrix ---------------------------------------
    def backward_rows(self, inject_layer: torch.Tensor, inject_pos: torch.Tensor,
                      inject_vec: torch.Tensor) -> torch.Tensor:
        """Adjacency rows for B targets, (B, n_cols).

        A target reads `inject_vec[b] . x` at position inject_pos[b], where x is the
        transcoder input of layer inject_layer[b], or, for inject_layer == n_layers, the
        final normalised residual (a logit direction). Rows are processed top layer first;
        a row joins the sweep when the sweep reaches its layer, and only positions up to
        the largest target position are touched (causality).
        """
        L = self.n_layers
        order = torch.argsort(inject_layer, descending=True, stable=True)
        layer_s, pos_s = inject_layer[order].cpu(), inject_pos[order].cpu()
        vec_s = self._c(inject_vec[order.to(inject_vec.device)])
        B, P = len(order), int(pos_s.max()) + 1
        d = self.embeddings.shape[1]
        out = torch.zeros(B, self.n_cols, dtype=self.dtype, device=self.device)
        G = torch.zeros(B, P, d, dtype=self.dtype, device=self.device)  # d(target)/d(residual)
        top = torch.nonzero(layer_s == L).flatten()
        G[top, pos_s[top]] = vec_s[top] * self.final_scale
        for l in reversed(range(L)):
            fl = self.layers[l]
            a = int((layer_s > l).sum())  # rows already live above this layer's MLP
            b = int((layer_s >= l).sum())
            if a:
                g_out = G[:a] if fl.tc_out is None else G[:a] * fl.tc_out[:P]
                self._read_mlp_sources(l, g_out, out[:a], P)
            g_x = torch.zeros(b, P, d, dtype=self.dtype, device=self.device)
            if a and fl.skip is not None:
                g_x[:a] = g_out @ fl.skip.T
                g_x[:a, : self.held] = 0  # a held MLP output is a constant (see linear_forward)
            here = torch.nonzero(layer_s == l).flatten()
            g_x[here, pos_s[here]] += vec_s[here]
            G[:b] += fl.tc_in[:P] * g_x
            if b:
                G[:b] += fl.attn_in[:P] * self.frozen.attention_vjp(l, G[:b], P)
        out[:, self.token_col(0):self.token_col(0) + P] = torch.einsum("bpd,pd->bp", G, self.embeddings[:P])
        result = torch.empty_like(out)
        result[order.to(self.device)] = out
        return result

    def _read_mlp_sources(self, layer: int, g_out: torch.Tensor, out: torch.Tensor, P: int) -> None:
        """Edges from every source writing into this layer's MLP output (features, errors)."""
        src = self.sources[layer]
        end = src.offsets[P]
        if end == 0:
            return
        R = g_out.new_empty(g_out.shape[0], end)
        for p in range(P):
            s, e = src.offsets[p], src.offsets[p + 1]
            if e > s:
                R[:, s:e] = g_out[:, p] @ src.vecs[s:e].T
        out.index_add_(1, src.cols[:end], R)

    def _feature_writes(self, layer: int, delta_acts: torch.Tensor) -> torch.Tensor:
        """(T, d): what changing feature activations by delta_acts adds to a layer's output."""
        src = self.sources[layer]
        is_feat = src.cols < self.n_active
        cols, vecs = src.cols[is_feat], src.vecs[is_feat]
        pos = torch.repeat_interleave(torch.arange(self.n_pos, device=self.device),
                                      torch.tensor(src.offsets).diff().to(self.device))[is_feat]
        scale = delta_acts[cols] / self.activation_values[cols]
        return self.embeddings.new_zeros(self.embeddings.shape).index_add_(0, pos, vecs * scale[:, None])

    def pre_activations(self, layer: int) -> torch.Tensor:
        """(T, d_tc) encoder pre-activations of a layer on the prompt (recomputed)."""
        return self.tc.encode(layer, self.layers[layer].x0.to(self.tc.dtype))

    # ---- the map itself, around the prompt: the oracle -------------------------------------
    def linear_forward(
        self,
        *,
        delta_embed: torch.Tensor | None = None,  # (T, d)
        delta_acts: torch.Tensor | None = None,  # (n,)
        delta_errors: torch.Tensor | None = None,  # (L, T, d)
        logit_vecs: torch.Tensor | None = None,  # (k, d) directions read at the last position
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature pre-activations (n,) and logit-direction values (k,) of the frozen model.

        Attention patterns and norm scales stay frozen, MLP outputs are their true values
        plus the skip path's change plus the given source changes. With no deltas this is
        the real forward pass. When BOS is dropped, its whole MLP output is a constant: its
        features and error are not nodes, and neither is its skip path. (The post-MLP norm
        scale frozen there is 1/rms of a near-zero vector in Gemma's later layers, so a live
        BOS skip path would route the BOS embedding through gains of 1e2-1e4 and swamp the
        graph; circuit-tracer keeps it live, which changes only the BOS token's column.)
        """
        resid = self.embeddings + (0 if delta_embed is None else self._c(delta_embed))
        writes = [self._source_change(l, delta_acts, delta_errors) for l in range(self.n_layers)]
        pres: list[torch.Tensor] = []
        final = self.frozen.run(resid[None], writes=writes,
                                on_input=lambda l, x: pres.append(self._active_pre(l, x)))
        final = self.final_scale * final[0, self.n_pos - 1]
        logit_vals = final.new_zeros(0) if logit_vecs is None else self._c(logit_vecs) @ final
        return torch.cat(pres), logit_vals

    def _source_change(self, layer: int, delta_acts: torch.Tensor | None,
                       delta_errors: torch.Tensor | None) -> torch.Tensor | None:
        """(T, d) what changed sources add to a layer's output-hook value, or None."""
        change = None if delta_acts is None else self._feature_writes(layer, self._c(delta_acts))
        if delta_errors is not None:
            err = self._c(delta_errors[layer])
            change = err if change is None else change + err
        return change

    def _active_pre(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations (m,) of a layer's active features for transcoder input x (T, d)."""
        feats = self.active_features[self.layer_slice(layer)]
        W = self._c(self.tc.encoder_rows(layer, feats[:, 2]))  # (m, d)
        b_enc = self._c(self.tc.layers[layer].b_enc[feats[:, 2].to(self.tc.device)])
        return (x[feats[:, 1].to(self.device)] * W).sum(-1) + b_enc
