"""Glassbox's cache of converted transcoder sets, under GLASSBOX_HOME/transcoder-cache.

A set given by hub reference, or a local folder in another tool's layout, is converted once
into circuit-tracer's own layout (layer_{i}.safetensors, or W_enc_{i} / W_dec_{i} for
cross-layer sets, plus a config.yaml), which Glassbox memory-maps and which circuit-tracer can
read too. Files already in that layout are hard-linked rather than copied.

Every file is written under a `.partial` name and renamed when complete, and config.yaml is
written last: an entry with a config.yaml is complete, and an interrupted conversion resumes
at the first missing layer (hub downloads resume by themselves). Later loads of a hub set
never touch the network. A lock file keeps two processes from converting one entry at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from glassbox.errors import TranscoderError
from glassbox.home import home_subdir
from glassbox.transcoders import formats as fm
from glassbox.transcoders.lazy import read_header
from glassbox.transcoders.sources import SetPlan, Source, plan_set

log = logging.getLogger(__name__)

CACHE_DIR = "transcoder-cache"
MANIFEST = "source.json"
CACHE_VERSION = 1
_GEMMASCOPE_2_REPO = re.compile(r"gemma-scope-2-([\w.]+?)-(pt|it)(?![\w.-])")


def entry_dir(src: Source) -> Path:
    """The cache folder of a source: a readable name plus a hash of its full identity."""
    ident = str(src)
    name = re.sub(r"[^\w.@-]+", "--", src.label if not src.is_local else f"local--{src.label}")
    digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
    return home_subdir(CACHE_DIR) / f"{name[:100]}-{digest}"


def converted(src: Source, *, refresh: bool = False, progress: bool = True) -> Path:
    """The cache folder holding `src` in circuit-tracer's layout, converting it if needed."""
    entry = entry_dir(src)
    manifest = _manifest(src)
    if not refresh and _complete(entry, manifest):
        return entry
    entry.mkdir(parents=True, exist_ok=True)
    with _locked(entry):
        if not refresh and _complete(entry, manifest):  # another process finished it meanwhile
            return entry
        _prepare(entry, manifest, wipe=refresh)
        _Conversion(src, plan_set(src), entry, progress=progress).run()
    return entry


def _manifest(src: Source) -> dict[str, Any]:
    """What the entry was converted from; for a local folder, every file's size and mtime,
    so that editing the folder triggers a new conversion."""
    manifest: dict[str, Any] = {"version": CACHE_VERSION, "source": str(src)}
    if src.is_local:
        files = {}
        for rel in src.listing():
            st = (src.folder / rel).stat()
            files[rel] = [st.st_size, st.st_mtime_ns]
        manifest["files"] = files
    return manifest


def _complete(entry: Path, manifest: dict[str, Any]) -> bool:
    if not (entry / "config.yaml").is_file():
        return False
    try:
        return json.loads((entry / MANIFEST).read_text()) == manifest
    except (OSError, json.JSONDecodeError):
        return False


@contextmanager
def _locked(entry: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: single-process use only
        yield
        return
    with (entry / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prepare(entry: Path, manifest: dict[str, Any], *, wipe: bool) -> None:
    """Drop half-written files; drop everything if the source changed or a refresh was asked."""
    try:
        same = json.loads((entry / MANIFEST).read_text()) == manifest
    except (OSError, json.JSONDecodeError):
        same = False
    for path in entry.iterdir():
        if path.name == ".lock":
            continue
        if not (wipe or not same or path.name.endswith(".partial")):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    (entry / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _commit(partial: Path) -> None:
    """Give a complete file its final name (an atomic rename)."""
    partial.replace(partial.with_name(partial.name.removesuffix(".partial")))


def _partial(entry: Path, name: str) -> Path:
    return entry / f"{name}.partial"


class _Conversion:
    """One run of converting a planned set into a cache entry, layer by layer."""

    def __init__(self, src: Source, plan: SetPlan, entry: Path, *, progress: bool) -> None:
        self.src, self.plan, self.entry, self.progress = src, plan, entry, progress
        self.kind = plan.kind  # settled by _layers(): GemmaScope-2 cross-layer files make it "clt"
        self.gs2_clt = False

    def run(self) -> None:
        from tqdm.auto import tqdm

        layers = self._layers()
        bar = tqdm(total=len(layers), desc=f"converting {self.src.label}", unit="layer",
                   disable=not self.progress)
        with bar:
            for i, files in enumerate(layers):
                outputs = self._outputs(i)
                if not all((self.entry / o).is_file() for o in outputs):
                    self._convert_layer(i, files, outputs)
                bar.update(1)
        self._write_config(len(layers))

    def _layers(self) -> list[tuple[str, ...]]:
        """The plan's layers. A GemmaScope-2 cross-layer set (one file per layer, found by name or
        listed in config.yaml) has as many layers as its decoders write to."""
        layers, plan = self.plan.layers, self.plan
        n = 0
        if (plan.kind == "clt" or plan.native) and all(len(f) == 1 for f in layers):
            n = fm.gemmascope_2_clt_layers(self.src.fetch(layers[0][0]))
            if n == 0 and plan.kind == "clt":
                raise TranscoderError(f"{self.src}: a cross-layer config.yaml lists files that are "
                                      "not GemmaScope-2 cross-layer transcoders")
        self.gs2_clt = n > 0
        self.kind = "clt" if self.gs2_clt else plan.kind
        if not self.gs2_clt:
            return layers
        if len(layers) < n:
            raise TranscoderError(f"{self.src}: decoders write to {n} layers but only {len(layers)} "
                                  "layer files were found")
        if len(layers) > n:
            log.warning("%s: %d layer files for %d layers; using the first %d", self.src, len(layers), n, n)
        return layers[:n]

    def _outputs(self, i: int) -> list[str]:
        if self.kind == "clt":
            return [f"W_enc_{i}.safetensors", f"W_dec_{i}.safetensors"]
        return [f"layer_{i}.safetensors"]

    def _convert_layer(self, i: int, files: tuple[str, ...], outputs: list[str]) -> None:
        parts = [_partial(self.entry, o) for o in outputs]
        if self.kind == "clt" and len(files) == 2:  # circuit-tracer's own CLT files
            for name, part in zip(files, parts, strict=True):
                fm.link_or_copy(self.src.fetch(name), part)
        elif self.gs2_clt:
            fm.convert_gemmascope_2_clt(self.src.fetch(files[0]), i, parts[0], parts[1])
        elif self.plan.saelens:
            fm.convert_saelens(self.src.fetch(files[0]), self.src.fetch(files[1]), parts[0])
        else:
            self._convert_plt_file(self.src.fetch(files[0]), parts[0])
        for part in parts:
            _commit(part)

    def _convert_plt_file(self, path: Path, part: Path) -> None:
        fmt = fm.sniff(path)
        if fmt == fm.CIRCUIT_TRACER:
            fm.link_or_copy(path, part)
        elif fmt == fm.GEMMASCOPE:
            fm.convert_gemmascope(path, part)
        elif fmt == fm.GEMMASCOPE_2:
            fm.convert_gemmascope_2(path, part)
        else:
            raise TranscoderError(f"{path}: a {fmt} file in a per-layer set (model_kind "
                                  "transcoder_set); is config.yaml's model_kind right?")

    # ---- config.yaml ----------------------------------------------------------------------
    def _write_config(self, n_layers: int) -> None:
        fmt = _format_of(self.entry / self._outputs(0)[0])
        source_cfg = self.plan.config
        in_hook, out_hook = self._default_hooks(fmt)
        config: dict[str, Any] = {
            "model_kind": "cross_layer_transcoder" if self.kind == "clt" else "transcoder_set",
            "model_name": source_cfg.get("model_name") or self._model_name(fmt),
            "feature_input_hook": source_cfg.get("feature_input_hook", in_hook),
            "feature_output_hook": source_cfg.get("feature_output_hook", out_hook),
            "scan": source_cfg.get("scan") if self.src.is_local and source_cfg.get("scan")
            else self.src.label,
        }
        for key in ("activation", "k"):
            if key in source_cfg:
                config[key] = source_cfg[key]
        if self.kind == "plt":
            config["transcoders"] = [f"layer_{i}.safetensors" for i in range(n_layers)]
        config["converted_from"] = {"source": str(self.src), "format": fmt}
        part = _partial(self.entry, "config.yaml")
        part.write_text(yaml.safe_dump(config, sort_keys=False))
        _commit(part)

    def _saelens_cfg(self) -> dict[str, Any]:
        return fm.read_saelens_cfg(self.src.fetch(self.plan.layers[0][0]))

    def _default_hooks(self, fmt: str) -> tuple[str, str]:
        if self.plan.saelens:
            return fm.saelens_hooks(self._saelens_cfg())
        if fmt == fm.CIRCUIT_TRACER and self.kind == "clt":
            return fm.DEFAULT_HOOKS[fm.CT_CLT_ENCODER]
        return fm.DEFAULT_HOOKS.get(fmt, fm.DEFAULT_HOOKS[fm.CIRCUIT_TRACER])

    def _model_name(self, fmt: str) -> str:
        if self.plan.saelens:
            return str(fm.saelens_field(self._saelens_cfg(), "model_name") or "")
        if fmt == fm.GEMMASCOPE_2 and (m := _GEMMASCOPE_2_REPO.search(str(self.src))):
            return f"google/gemma-3-{m.group(1)}-{m.group(2)}"  # GemmaScope-2 repos name their model
        return ""


def _format_of(path: Path) -> str:
    """The format a cached file was converted from (files linked as they were have none)."""
    header, _ = read_header(path)
    return (header.get("__metadata__") or {}).get("converted_from", fm.CIRCUIT_TRACER)
