"""Where a transcoder set comes from (a local folder or a hub folder) and which file holds each
layer, worked out from config.yaml when there is one and from the file names otherwise.

Without a config.yaml, a folder is read as:
- circuit-tracer's layout: `layer_{i}.safetensors`, or `W_enc_{i}` + `W_dec_{i}.safetensors`;
- a native release: one `params.npz` / `params.safetensors` per layer, the layer being the
  `layer_{i}` part of its path (GemmaScope `layer_3/width_16k/average_l0_54/params.npz`,
  GemmaScope-2 `transcoder_all/layer_3_width_16k_l0_small_affine/params.safetensors`);
- SAELens: one folder per layer with `cfg.json` + `sae_weights.safetensors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from glassbox.errors import TranscoderError
from glassbox.transcoders import hub
from glassbox.transcoders.formats import read_saelens_cfg, saelens_layer

KIND_NAMES = {"transcoder_set": "plt", "cross_layer_transcoder": "clt"}
_LAYER_IN_PATH = re.compile(r"(?:^|/)layer_(\d+)(?=[_/])")


class Source:
    """A set's origin: a local folder, or a repo (or a folder inside one) on the hub."""

    def __init__(self, *, folder: Path | None = None, ref: hub.HubRef | None = None) -> None:
        self.folder, self.ref = folder, ref

    @classmethod
    def from_spec(cls, spec: str) -> Source:
        text = str(spec).strip()
        if text in hub.ALIASES:
            return cls(ref=hub.parse_hub_ref(text))
        local = Path(text).expanduser()
        if local.is_dir():
            return cls(folder=local.resolve())
        if local.exists() or text.startswith((".", "/", "~")):
            raise TranscoderError(f"transcoder folder not found: {spec}")
        return cls(ref=hub.parse_hub_ref(text))

    @property
    def is_local(self) -> bool:
        return self.folder is not None

    @property
    def label(self) -> str:
        """The set's name: the folder's name, or circuit-tracer's `repo[//path][@revision]`."""
        if self.folder is not None:
            return self.folder.name
        ref = self.ref
        where = f"{ref.repo_id}//{ref.path}" if ref.path else ref.repo_id
        return f"{where}@{ref.revision}" if ref.revision else where

    def __str__(self) -> str:
        return str(self.folder) if self.folder is not None else str(self.ref)

    def listing(self) -> list[str]:
        """Every file under the source, as a relative path with '/' separators."""
        if self.folder is not None:
            return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*")
                          if p.is_file() and not _hidden(p.relative_to(self.folder)))
        prefix = f"{self.ref.path}/" if self.ref.path else ""
        return sorted(n[len(prefix):] for n in hub.list_files(self.ref) if n.startswith(prefix))

    def fetch(self, name: str) -> Path:
        """A local path for `name` (relative to the source, absolute, or an hf:// URI)."""
        if name.startswith("hf://"):
            return hub.download(hub.parse_hf_uri(name))
        if self.folder is not None:
            path = Path(name) if Path(name).is_absolute() else self.folder / name
            if not path.is_file():
                raise TranscoderError(f"missing transcoder file: {path}")
            return path
        return hub.download(self.ref.child(name))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


@dataclass
class SetPlan:
    """Which files make up each layer, and the source's config.yaml ({} when it has none)."""

    kind: str  # "plt" | "clt"
    layers: list[tuple[str, ...]]  # per layer: (file,), (W_enc_i, W_dec_i) or (cfg.json, weights)
    config: dict[str, Any] = field(default_factory=dict)
    saelens: bool = False
    native: bool = False  # found by file names (params.*): per-layer or cross-layer by content

    @property
    def remote(self) -> bool:
        return any(name.startswith("hf://") for files in self.layers for name in files)


def plan_set(src: Source) -> SetPlan:
    listing = src.listing()
    if "config.yaml" in listing:
        config = read_config(src.fetch("config.yaml"))
        kind = KIND_NAMES.get(config.get("model_kind", ""))
        entries = config.get("transcoders")
        if entries:
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise TranscoderError(f"{src}: config.yaml 'transcoders' must be a list of paths")
            return SetPlan(kind or "plt", [(e,) for e in entries], config)
        plan = _plan_from_names(src, listing)
        if kind is not None and plan.kind != kind:
            raise TranscoderError(f"{src}: config.yaml says {config['model_kind']} but the files "
                                  f"are a {'cross-layer' if plan.kind == 'clt' else 'per-layer'} set")
        plan.config = config
        return plan
    return _plan_from_names(src, listing)


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TranscoderError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise TranscoderError(f"{path} must hold a mapping")
    if config.get("model_kind") not in (None, *KIND_NAMES):
        raise TranscoderError(f"{path}: unknown model_kind {config['model_kind']!r}")
    return config


def _plan_from_names(src: Source, listing: list[str]) -> SetPlan:
    top = [n for n in listing if "/" not in n]
    if any(re.fullmatch(r"layer_\d+\.safetensors", n) for n in top):
        return SetPlan("plt", [(n,) for n in numbered(top, "layer_{i}.safetensors", str(src))])
    if any(re.fullmatch(r"W_enc_\d+\.safetensors", n) for n in top):
        enc = numbered(top, "W_enc_{i}.safetensors", str(src))
        dec = numbered(top, "W_dec_{i}.safetensors", str(src))
        if len(enc) != len(dec):
            raise TranscoderError(f"{src}: {len(enc)} encoder files but {len(dec)} decoder files")
        return SetPlan("clt", list(zip(enc, dec, strict=True)))
    params = [n for n in listing if n.rpartition("/")[2] in ("params.npz", "params.safetensors")]
    if params:
        by_layer = _group(params, _layer_of_path, str(src))
        return SetPlan("plt", [(f,) for f in _one_per_layer(by_layer, str(src))], native=True)
    saes = [n for n in listing if n.endswith("sae_weights.safetensors")
            and _sibling(n, "cfg.json") in listing]
    if saes:
        def layer_of(name: str) -> int:
            cfg_path = src.fetch(_sibling(name, "cfg.json"))
            return saelens_layer(read_saelens_cfg(cfg_path), cfg_path)
        by_layer = _group(saes, layer_of, str(src))
        return SetPlan("plt", [(_sibling(f, "cfg.json"), f)
                               for f in _one_per_layer(by_layer, str(src))], saelens=True)
    raise TranscoderError(
        f"{src}: no config.yaml, and no layer_*.safetensors, W_enc_*.safetensors, "
        "params.npz / params.safetensors (GemmaScope) or cfg.json + sae_weights.safetensors "
        "(SAELens) files")


def _sibling(name: str, other: str) -> str:
    folder = name.rpartition("/")[0]
    return f"{folder}/{other}" if folder else other


def _layer_of_path(name: str) -> int | None:
    found = _LAYER_IN_PATH.findall(name)
    return int(found[-1]) if found else None


def _group(names: list[str], layer_of, where: str) -> dict[int, list[str]]:
    by_layer: dict[int, list[str]] = {}
    for n in names:
        layer = layer_of(n)
        if layer is None:
            raise TranscoderError(f"{where}: cannot tell which layer {n} belongs to (no layer_<i> "
                                  "in its path); list the files in a config.yaml")
        by_layer.setdefault(layer, []).append(n)
    return by_layer


def _one_per_layer(by_layer: dict[int, list[str]], where: str) -> list[str]:
    several = {layer: files for layer, files in sorted(by_layer.items()) if len(files) > 1}
    if several:
        layer, files = next(iter(several.items()))
        shown = ", ".join(files[:4]) + (", ..." if len(files) > 4 else "")
        raise TranscoderError(
            f"{where} holds several variants per layer (layer {layer}: {shown}). Choose one per "
            "layer: point at a narrower folder, or write a config.yaml whose `transcoders:` list "
            "names one file per layer (see docs/transcoders.md)")
    missing = sorted(set(range(max(by_layer) + 1)) - set(by_layer))
    if missing:
        raise TranscoderError(f"{where}: missing layers {missing}")
    return [by_layer[i][0] for i in range(len(by_layer))]


def numbered(listing: list[str], pattern: str, where: str) -> list[str]:
    """Files matching pattern with a {i} index, checked to be exactly 0..n-1."""
    rx = re.compile(pattern.replace(".", r"\.").replace("{i}", r"(\d+)"))
    found = {int(m.group(1)): n for n in listing if (m := rx.fullmatch(n))}
    if not found:
        raise TranscoderError(f"{where}: no files matching {pattern}")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise TranscoderError(f"{where}: missing layers {missing} ({pattern})")
    return [found[i] for i in range(len(found))]
