"""`build_features`: one streaming pass over a corpus, then the store.

Phases, each restartable:
1. prepare  - the output folder gets `build.json` (model, transcoders, corpus, settings, weight
              fingerprints); a folder with another unfinished build is refused, not mixed.
2. tokenize - the corpus becomes `tokens.npy` (rows of BOS + seq_len - 1 tokens).
3. stream   - batches of rows run through the model with no grad, stopping after the last
              needed layer; an MLP override hands each layer's transcoder input to
              `LayerUpdater` as it is computed, so no layer records are kept. The state is
              checkpointed atomically every `checkpoint_seconds` (and at the end); a killed run
              resumes at the row after its last checkpoint and ends with the same state, because
              batches, their order and the reservoir keys depend only on the row index.
4. finalize - decoder logits, display groups, auto labels; `features.sqlite`, `vocab.json` and
              finally `manifest.json`; the checkpoint is then deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassbox.features import codec
from glassbox.features.config import BuildConfig
from glassbox.features.errors import FeatureBuildError
from glassbox.features.finalize import Finalizer
from glassbox.features.inputs import input_from_override
from glassbox.features.labels import METHOD, Vocab
from glassbox.features.logits import feature_directions, top_bottom_logits
from glassbox.features.relabel import label_row
from glassbox.features.state import LayerState, LayerUpdater, batch_generator
from glassbox.features.store import (
    DATABASE,
    FORMAT,
    MANIFEST,
    TOKENS,
    VERSION,
    VOCAB,
    StoreWriter,
    write_manifest,
    write_vocab,
)
from glassbox.features.tokens import load_tokens, save_tokens, tokenize_corpus
from glassbox.models.loaded import LoadedModel
from glassbox.transcoders.base import TranscoderSet

log = logging.getLogger(__name__)

BUILD = "build.json"
CHECKPOINT = "checkpoint.pt"
OWNED_FILES = (BUILD, CHECKPOINT, TOKENS, DATABASE, VOCAB, MANIFEST)

# progress(phase, done, total): phase "tokenize" | "stream" (tokens) | "finalize" (layers)
Progress = Callable[[str, int, int], None]


def default_output_dir(model_name: str, transcoders_name: str) -> Path:
    """GLASSBOX_HOME/features/<model>--<transcoders>."""
    from glassbox.home import home_subdir

    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"

    return home_subdir("features") / f"{slug(model_name)}--{slug(transcoders_name)}"


def build_features(
    model: LoadedModel,
    transcoders: TranscoderSet,
    corpus: str | Path,
    *,
    n_tokens: int,
    output_dir: str | Path,
    config: BuildConfig | None = None,
    layers: Sequence[int] | None = None,
    split: str = "train",
    overwrite: bool = False,
    progress: Progress | None = None,
    checkpoint_seconds: float = 120.0,
    checkpoint_every: int | None = None,
) -> Path:
    """Build (or resume building) the feature store in `output_dir`; returns the folder.

    checkpoint_every: also checkpoint after every this many batches (tests use it).
    """
    cfg = config or BuildConfig()
    transcoders.check_compatible(model)
    chosen = _layers(layers, model.n_layers)
    folder = _prepare(Path(output_dir).expanduser(), overwrite=overwrite)
    params = _params(model, transcoders, corpus, n_tokens=n_tokens, cfg=cfg, layers=chosen, split=split)
    _claim(folder, params)
    tokens = _tokens(folder, model, corpus, n_tokens=n_tokens, cfg=cfg, split=split, progress=progress)
    run = _Stream(model, transcoders, cfg, chosen, tokens, folder, params["digest"])
    run.resume_or_start()
    run.go(progress=progress, checkpoint_seconds=checkpoint_seconds, checkpoint_every=checkpoint_every)
    _finalize(folder, model, transcoders, run, params, progress=progress)
    return folder


# ---- phase 1: the folder and what it is for -------------------------------------------------

def _layers(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    if layers is None:
        return list(range(n_layers))
    chosen = sorted({int(layer) for layer in layers})
    bad = [layer for layer in chosen if not 0 <= layer < n_layers]
    if bad or not chosen:
        raise FeatureBuildError(f"layers must be in 0-{n_layers - 1}, got {list(layers)}")
    return chosen


def _prepare(folder: Path, *, overwrite: bool) -> Path:
    if folder.exists() and not folder.is_dir():
        raise FeatureBuildError(f"output {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in OWNED_FILES:
            for path in (folder / name, folder / (name + ".tmp")):
                path.unlink(missing_ok=True)
    elif (folder / MANIFEST).is_file():
        raise FeatureBuildError(f"{folder} already holds a finished feature store; pass --overwrite to "
                                "rebuild it, or choose another --output")
    return folder


def _digest(tensors: Sequence[torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=12)
    for t in tensors:
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _params(model: LoadedModel, tc: TranscoderSet, corpus: str | Path, *, n_tokens: int, cfg: BuildConfig,
            layers: list[int], split: str) -> dict[str, Any]:
    """What a build is for; a resumed build must match it exactly."""
    emb = model.decoder.embed_tokens.weight
    params = {
        "model": {"name": model.name, "n_layers": model.n_layers, "d_model": model.d_model,
                  "vocab_size": model.vocab_size, "dtype": str(model.dtype).removeprefix("torch."),
                  "fingerprint": _digest([emb[:4], model.decoder.norm.weight])},
        "transcoders": {"name": tc.name, "kind": tc.kind, "activation": tc.activation, "k": tc.k,
                        "d_transcoder": tc.d_transcoder, "input_hook": tc.input_hook,
                        "output_hook": tc.output_hook, "dtype": str(tc.dtype).removeprefix("torch."),
                        "fingerprint": _digest([t for lw in tc.layers for t in (lw.W_enc[:2], lw.b_enc)])},
        "corpus": str(corpus), "split": split, "n_tokens": int(n_tokens), "layers": layers,
        "config": cfg.streaming_fields(),
    }
    text = json.dumps(params, sort_keys=True).encode()
    params["digest"] = hashlib.blake2b(text, digest_size=12).hexdigest()
    params["display"] = cfg.to_dict()
    return params


def _claim(folder: Path, params: dict[str, Any]) -> None:
    """Write build.json, or check that the unfinished build in the folder is this one."""
    path = folder / BUILD
    if not path.is_file():
        tmp = folder / (BUILD + ".tmp")
        tmp.write_text(json.dumps(params, indent=1))
        tmp.replace(path)
        return
    old = json.loads(path.read_text())
    if old.get("digest") == params["digest"]:
        log.info("resuming the build in %s", folder)
        path.write_text(json.dumps(params, indent=1))  # display settings may change
        return
    diffs = _differences(old, params)
    raise FeatureBuildError(
        f"{folder} holds an unfinished build with other settings ({'; '.join(diffs[:4])}); pass --overwrite "
        "to start again there, or choose another --output")


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key in ("digest", "display"):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


# ---- phase 2: tokens --------------------------------------------------------------------------

def _tokens(folder: Path, model: LoadedModel, corpus: str | Path, *, n_tokens: int, cfg: BuildConfig,
            split: str, progress: Progress | None) -> np.ndarray:
    path = folder / TOKENS
    if not path.is_file():
        if progress:
            progress("tokenize", 0, 1)
        rows = tokenize_corpus(corpus, model.tokenizer, n_tokens=n_tokens, seq_len=cfg.seq_len, split=split,
                               seed=cfg.seed)
        save_tokens(path, rows)
        if progress:
            progress("tokenize", 1, 1)
    tokens = load_tokens(path)
    if tokens.ndim != 2 or tokens.shape[1] != cfg.seq_len:
        raise FeatureBuildError(f"{path} has shape {tokens.shape}, expected (rows, {cfg.seq_len})")
    return tokens


# ---- phase 3: stream --------------------------------------------------------------------------

class _Stream:
    """The streaming pass and its checkpoints."""

    def __init__(self, model: LoadedModel, tc: TranscoderSet, cfg: BuildConfig, layers: list[int],
                 tokens: np.ndarray, folder: Path, digest: str) -> None:
        self.model, self.tc, self.cfg, self.layers = model, tc, cfg, layers
        self.tokens, self.folder, self.digest = tokens, folder, digest
        self.updater = LayerUpdater(cfg)
        special = sorted(set(getattr(model.tokenizer, "all_special_ids", [])))
        self.special = torch.tensor(special, dtype=torch.long)
        self.states: dict[int, LayerState] = {}
        self.next_row = 0
        self.seconds = 0.0  # streaming wall time over all runs
        self.cpu_seconds = 0.0  # ... and CPU time of this process (all threads)

    @property
    def n_rows(self) -> int:
        return int(self.tokens.shape[0])

    def mask(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, T) True where a token counts (not BOS or another special token)."""
        return ~torch.isin(batch, self.special)

    def n_counted(self) -> int:
        """Positions that count, over the whole token stream."""
        total = 0
        for start in range(0, self.n_rows, 4096):
            total += int(self.mask(torch.from_numpy(np.array(self.tokens[start: start + 4096]))).sum())
        return total

    def resume_or_start(self) -> None:
        path = self.folder / CHECKPOINT
        if path.is_file():
            ck = torch.load(path, weights_only=True)
            if ck.get("digest") != self.digest:
                raise FeatureBuildError(f"{path} belongs to another build; pass --overwrite to start again")
            self.states = {int(layer): LayerState.from_dict(d) for layer, d in ck["layers"].items()}
            self.next_row, self.seconds = int(ck["next_row"]), float(ck["seconds"])
            self.cpu_seconds = float(ck.get("cpu_seconds", 0.0))
            log.info("resuming at row %d of %d", self.next_row, self.n_rows)
            return
        F = self.tc.d_transcoder
        self.states = {layer: LayerState.empty(F, self.cfg) for layer in self.layers}

    def save(self) -> None:
        path = self.folder / CHECKPOINT
        tmp = self.folder / (CHECKPOINT + ".tmp")
        torch.save({"digest": self.digest, "next_row": self.next_row, "seconds": self.seconds,
                    "cpu_seconds": self.cpu_seconds,
                    "layers": {str(layer): st.to_dict() for layer, st in self.states.items()}}, tmp)
        tmp.replace(path)

    def go(self, *, progress: Progress | None, checkpoint_seconds: float,
           checkpoint_every: int | None) -> None:
        B, T = self.cfg.batch_size, self.cfg.seq_len
        last_save, done_batches = time.monotonic(), 0
        if progress:
            progress("stream", self.next_row * T, self.n_rows * T)
        while self.next_row < self.n_rows:
            t0, c0 = time.monotonic(), time.process_time()
            rows = np.array(self.tokens[self.next_row: self.next_row + B], dtype=np.int64)
            self.batch(torch.from_numpy(rows), first_row=self.next_row)
            self.next_row += rows.shape[0]
            self.seconds += time.monotonic() - t0
            self.cpu_seconds += time.process_time() - c0
            done_batches += 1
            finished = self.next_row >= self.n_rows
            due = (checkpoint_every and done_batches % checkpoint_every == 0) or \
                time.monotonic() - last_save >= checkpoint_seconds
            if finished or due:
                self.save()
                last_save = time.monotonic()
            if progress:
                progress("stream", self.next_row * T, self.n_rows * T)

    def batch(self, rows: torch.Tensor, *, first_row: int) -> None:
        """Run rows (B, T) and fold every chosen layer's activations into its state."""
        mask = self.mask(rows)[..., None].to(self.model.device)  # (B, T, 1)
        batch_index = first_row // self.cfg.batch_size
        hook, eps, tc = self.tc.input_hook, self.model.spec.norm_eps, self.tc

        def on_mlp(layer: int, mlp_in: torch.Tensor, resid_mid: torch.Tensor,
                   true_out: torch.Tensor | None) -> torch.Tensor:
            if layer in self.states:
                x = input_from_override(hook, mlp_in, resid_mid, eps)  # (B, T, d)
                acts = tc.activate(layer, tc.encode(layer, x)) * mask  # (B, T, F)
                self.updater.update(self.states[layer], acts.float().cpu(), first_row=first_row,
                                    gen=batch_generator(self.cfg.seed, batch_index, layer))
            return true_out  # the model itself runs unchanged

        with torch.no_grad():
            self.model.forward(rows, keep_layers=False, logits_at="none", stop_after_layer=max(self.layers),
                               mlp_override=on_mlp)


# ---- phase 4: finalize ------------------------------------------------------------------------

def decode_vocab(model: LoadedModel) -> list[str]:
    """Every id decoded on its own (ids past the tokenizer decode to '')."""
    tok = model.tokenizer
    n_tok = len(tok)
    strings = tok.batch_decode([[i] for i in range(n_tok)], clean_up_tokenization_spaces=False)
    return list(strings) + [""] * max(0, model.vocab_size - n_tok)


def _finalize(folder: Path, model: LoadedModel, tc: TranscoderSet, run: _Stream, params: dict[str, Any], *,
              progress: Progress | None) -> None:
    cfg = BuildConfig.from_dict(params["display"])
    vocab = decode_vocab(model)
    write_vocab(folder, vocab)
    tokens = np.asarray(run.tokens)
    labeller = Vocab(vocab, np.bincount(tokens.ravel(), minlength=len(vocab)))
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    writer = StoreWriter(folder, d_transcoder=tc.d_transcoder)
    fin = Finalizer(cfg)
    t0, c0 = time.monotonic(), time.process_time()
    for i, layer in enumerate(run.layers):
        if progress:
            progress("finalize", i, len(run.layers))
        logits = top_bottom_logits(model, feature_directions(model, tc, layer), n=cfg.n_logits)
        summaries = list(fin.layer(run.states[layer], logits))
        writer.add_features(layer, ((s.feature, s.n_fires, s.act_max, s.act_mean, codec.encode(s.blob))
                                    for s in summaries))
        writer.add_labels(layer, "auto", (label_row(s.feature, s.n_fires, s.blob, tokens, labeller, built_at)
                                          for s in summaries))
    writer.commit()
    n_counted = run.n_counted()
    spent = (time.monotonic() - t0, time.process_time() - c0)
    write_manifest(folder, _manifest(params, cfg, run, tokens, n_counted, built_at, spent))
    if progress:
        progress("finalize", len(run.layers), len(run.layers))
    for name in (CHECKPOINT, BUILD):
        (folder / name).unlink(missing_ok=True)


def _manifest(params: dict[str, Any], cfg: BuildConfig, run: _Stream, tokens: np.ndarray, n_counted: int,
              built_at: str, finalize: tuple[float, float]) -> dict[str, Any]:
    import glassbox

    return {
        "format": FORMAT, "version": VERSION, "glassbox_version": glassbox.__version__,
        "built_at": built_at,
        "model": params["model"], "transcoders": params["transcoders"],
        "corpus": params["corpus"], "split": params["split"],
        "n_tokens_requested": params["n_tokens"],
        "n_rows": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]),
        "n_tokens": int(tokens.size), "n_tokens_counted": int(n_counted),
        "layers": run.layers, "d_transcoder": run.tc.d_transcoder, "label_method": METHOD,
        "config": cfg.to_dict(),
        "histogram_edges": cfg.edges().tolist(),
        "stream_seconds": round(run.seconds, 1), "stream_cpu_seconds": round(run.cpu_seconds, 1),
        "finalize_seconds": round(finalize[0], 1), "finalize_cpu_seconds": round(finalize[1], 1),
        "conventions": {
            "firing": "activation > 0; BOS and other special tokens are not counted",
            "activation_frequency": "firings / n_tokens_counted",
            "top_examples": "the largest per-row maxima (one example per row), window around the max",
            "histogram": "counts in bins: (0, e0), [e_i-1, e_i) ..., [e_n, inf) over histogram_edges",
            "logits": "decoder direction * final-norm gain through W_U, minus its mean over the "
                      "vocabulary (pre-softcap); see glassbox.features.logits",
            "index": "Cantor pair of (layer, feature), as in graph node `feature` fields",
        },
    }
