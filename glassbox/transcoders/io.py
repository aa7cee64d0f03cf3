"""Reading and writing transcoder sets in circuit-tracer's on-disk layout.

PLT folder: config.yaml + layer_{i}.safetensors (W_enc (d_tc,d), W_dec (d_tc,d), b_enc, b_dec,
optional W_skip (d,d) applied as x @ W_skip.T, optional activation_function.threshold).
CLT folder: W_enc_{i}.safetensors (W_enc_i, b_enc_i, b_dec_i, optional threshold_i, W_skip_i)
and W_dec_{i}.safetensors (W_dec_i: (d_tc, n_layers - i, d)).
A hub repo holds the same files; `transcoders:` entries may be hf://org/repo/file?revision=.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from glassbox.errors import TranscoderError
from glassbox.transcoders.base import LayerWeights, TranscoderSet
from glassbox.transcoders.lazy import DenseRows, LazyRows

log = logging.getLogger(__name__)

KIND_NAMES = {"transcoder_set": "plt", "cross_layer_transcoder": "clt"}
ACTIVATION_ALIASES = {"relu": "relu", "topk": "topk", "jumprelu": "jumprelu", "jump_relu": "jumprelu"}


@dataclass(frozen=True)
class HfUri:
    repo_id: str
    path: str
    revision: str | None


def parse_hf_uri(uri: str) -> HfUri:
    """hf://org/repo/path/in/repo?revision=main -> parts."""
    parsed = urlparse(uri)
    if parsed.scheme != "hf" or not parsed.netloc:
        raise TranscoderError(f"not an hf:// URI: {uri!r}")
    parts = parsed.path.lstrip("/").split("/")
    if len(parts) < 2:
        raise TranscoderError(f"hf:// URI needs org/repo/file: {uri!r}")
    repo = f"{parsed.netloc}/{parts[0]}"
    revision = parse_qs(parsed.query).get("revision", [None])[0]
    return HfUri(repo_id=repo, path="/".join(parts[1:]), revision=revision)


# ---- locating files ------------------------------------------------------------------------

def _hub_download(repo_id: str, filename: str, revision: str | None = None) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except Exception as exc:  # noqa: BLE001 - network, auth, missing file: all one message
        raise TranscoderError(
            f"cannot fetch {filename!r} from hub repo {repo_id!r}: {exc}. Offline? Give a local "
            "folder, or train a set with `glassbox transcoders train`."
        ) from exc


def _hub_files(repo_id: str, revision: str | None) -> list[str]:
    from huggingface_hub import list_repo_files

    try:
        return list(list_repo_files(repo_id, revision=revision))
    except Exception as exc:  # noqa: BLE001
        raise TranscoderError(f"cannot list hub repo {repo_id!r}: {exc}. Offline?") from exc


class _Source:
    """Where a set's files come from: a local folder or a hub repo (downloaded on demand)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        local = Path(spec).expanduser()
        self.folder: Path | None = local if local.is_dir() else None
        self.repo_id: str | None = None
        self.revision: str | None = None
        if self.folder is None:
            if local.exists() or spec.startswith((".", "/", "~")):
                raise TranscoderError(f"transcoder folder not found: {spec}")
            repo, _, rev = spec.removeprefix("hf://").partition("@")
            if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
                raise TranscoderError(f"{spec!r} is neither a folder nor a hub repo id (org/name)")
            self.repo_id, self.revision = repo, rev or None

    def listing(self) -> list[str]:
        if self.folder is not None:
            return sorted(p.name for p in self.folder.iterdir())
        return _hub_files(self.repo_id, self.revision)

    def get(self, name: str) -> Path:
        if name.startswith("hf://"):
            uri = parse_hf_uri(name)
            return _hub_download(uri.repo_id, uri.path, uri.revision)
        if self.folder is not None:
            path = Path(name) if Path(name).is_absolute() else self.folder / name
            if not path.is_file():
                raise TranscoderError(f"missing transcoder file: {path}")
            return path
        return _hub_download(self.repo_id, name, self.revision)


# ---- loading -------------------------------------------------------------------------------

def load_transcoders(
    path_or_hub_id: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    lazy_decoder: bool = True,
) -> TranscoderSet:
    """Load a PLT or CLT set from a folder or a hub repo, validating every file."""
    src = _Source(str(path_or_hub_id))
    listing = src.listing()
    config = _read_config(src) if "config.yaml" in listing else {}
    kind = KIND_NAMES.get(config.get("model_kind", ""), None) or _guess_kind(listing, src.spec)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    loader = _load_plt_layers if kind == "plt" else _load_clt_layers
    layers = loader(src, listing, config, dev, dtype, lazy_decoder)
    activation, k = _activation(config, layers)
    default_in = "mlp.hook_in" if kind == "plt" else "hook_resid_mid"
    return TranscoderSet(
        layers,
        kind=kind,
        activation=activation,
        k=k,
        input_hook=config.get("feature_input_hook", default_in),
        output_hook=config.get("feature_output_hook", "hook_mlp_out"),
        name=str(config.get("scan") or _display_name(src)),
        model_name=str(config.get("model_name", "")),
    )


def _display_name(src: _Source) -> str:
    return src.folder.name if src.folder is not None else src.spec


def _read_config(src: _Source) -> dict[str, Any]:
    path = src.get("config.yaml")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TranscoderError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise TranscoderError(f"{path} must hold a mapping")
    if config.get("model_kind") not in (None, *KIND_NAMES):
        raise TranscoderError(f"{path}: unknown model_kind {config['model_kind']!r}")
    return config


def _guess_kind(listing: list[str], spec: str) -> str:
    if any(re.fullmatch(r"layer_\d+\.safetensors", n) for n in listing):
        return "plt"
    if any(re.fullmatch(r"W_enc_\d+\.safetensors", n) for n in listing):
        return "clt"
    raise TranscoderError(f"{spec}: no config.yaml and no layer_*.safetensors or W_enc_*.safetensors")


def _numbered(listing: list[str], pattern: str, spec: str) -> list[str]:
    """Files matching pattern with a {i} index, checked to be exactly 0..n-1."""
    rx = re.compile(pattern.replace("{i}", r"(\d+)"))
    found = {int(m.group(1)): n for n in listing if (m := rx.fullmatch(n))}
    if not found:
        raise TranscoderError(f"{spec}: no files matching {pattern}")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise TranscoderError(f"{spec}: missing layers {missing} ({pattern})")
    return [found[i] for i in range(len(found))]


def _tensors(path: Path, names: list[str], optional: list[str], device, dtype) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            for n in names:
                if n not in keys:
                    raise TranscoderError(f"{path.name} lacks tensor {n!r} (has {sorted(keys)})")
                out[n] = f.get_tensor(n).to(device=device, dtype=dtype)
            for n in optional:
                if n in keys:
                    out[n] = f.get_tensor(n).to(device=device, dtype=dtype)
    except TranscoderError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt header, truncated file, ...
        raise TranscoderError(f"cannot read {path}: {exc}") from None
    return out


def _decoder(path: Path, name: str, lazy: bool, device, dtype) -> LazyRows | DenseRows:
    if lazy:
        return LazyRows(path, name)
    return DenseRows(_tensors(path, [name], [], device, dtype)[name])


def _load_plt_layers(src, listing, config, device, dtype, lazy) -> list[LayerWeights]:
    names = config.get("transcoders") or _numbered(listing, "layer_{i}.safetensors", src.spec)
    layers = []
    for i, name in enumerate(names):
        path = src.get(str(name))
        t = _tensors(path, ["W_enc", "b_enc", "b_dec"],
                     ["W_skip", "activation_function.threshold", "threshold"], device, dtype)
        threshold = t.get("activation_function.threshold", t.get("threshold"))
        skip = t.get("W_skip")
        layers.append(LayerWeights(
            W_enc=t["W_enc"], b_enc=t["b_enc"], b_dec=t["b_dec"],
            W_dec=_decoder(path, "W_dec", lazy, device, dtype),
            threshold=None if threshold is None else threshold.reshape(-1),
            skip=None if skip is None else skip.T.contiguous(),  # file: x @ W_skip.T
        ))
        log.debug("loaded PLT layer %d from %s", i, path)
    return layers


def _load_clt_layers(src, listing, config, device, dtype, lazy) -> list[LayerWeights]:
    enc_names = _numbered(listing, "W_enc_{i}.safetensors", src.spec)
    dec_names = _numbered(listing, "W_dec_{i}.safetensors", src.spec)
    if len(enc_names) != len(dec_names):
        raise TranscoderError(
            f"{src.spec}: {len(enc_names)} encoder files but {len(dec_names)} decoder files")
    layers = []
    for i, (enc, dec) in enumerate(zip(enc_names, dec_names, strict=True)):
        t = _tensors(src.get(enc), [f"W_enc_{i}", f"b_enc_{i}", f"b_dec_{i}"],
                     [f"threshold_{i}", f"W_skip_{i}"], device, dtype)
        threshold = t.get(f"threshold_{i}")
        layers.append(LayerWeights(
            W_enc=t[f"W_enc_{i}"], b_enc=t[f"b_enc_{i}"], b_dec=t[f"b_dec_{i}"],
            W_dec=_decoder(src.get(dec), f"W_dec_{i}", lazy, device, dtype),
            threshold=None if threshold is None else threshold.reshape(-1),
            skip=t.get(f"W_skip_{i}"),  # CLT files: x @ W_skip
        ))
    return layers


def _activation(config: dict[str, Any], layers: list[LayerWeights]) -> tuple[str, int | None]:
    name = str(config.get("activation", "")).lower()
    if layers[0].threshold is not None and name in ("", "jumprelu", "jump_relu"):
        return "jumprelu", None
    if not name:
        return "relu", None
    if name not in ACTIVATION_ALIASES:
        raise TranscoderError(f"config.yaml: unknown activation {name!r}")
    act = ACTIVATION_ALIASES[name]
    k = config.get("k")
    return act, (int(k) if k is not None else None)


# ---- saving --------------------------------------------------------------------------------

def save_transcoders(tset: TranscoderSet, folder: str | Path, *, extra_config: dict | None = None) -> Path:
    """Write a set in circuit-tracer's layout (bf16/fp32 as held), with config.yaml."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cpu = torch.device("cpu")
    config: dict[str, Any] = {
        "model_kind": "transcoder_set" if tset.kind == "plt" else "cross_layer_transcoder",
        "model_name": tset.model_name,
        "feature_input_hook": tset.input_hook,
        "feature_output_hook": tset.output_hook,
    }
    if tset.activation == "topk":
        config.update(activation="topk", k=int(tset.k))
    elif tset.activation == "relu":
        config["activation"] = "relu"
    for i, lw in enumerate(tset.layers):
        dec = lw.W_dec.full(dtype=lw.W_enc.dtype, device=cpu).contiguous()
        if tset.kind == "plt":
            sd = {"W_enc": lw.W_enc, "b_enc": lw.b_enc, "W_dec": dec, "b_dec": lw.b_dec}
            if lw.skip is not None:
                sd["W_skip"] = lw.skip.T
            if lw.threshold is not None:
                sd["activation_function.threshold"] = lw.threshold
            save_file(_cpu(sd), str(folder / f"layer_{i}.safetensors"))
        else:
            sd = {f"W_enc_{i}": lw.W_enc, f"b_enc_{i}": lw.b_enc, f"b_dec_{i}": lw.b_dec}
            if lw.threshold is not None:
                sd[f"threshold_{i}"] = lw.threshold
            if lw.skip is not None:
                sd[f"W_skip_{i}"] = lw.skip
            save_file(_cpu(sd), str(folder / f"W_enc_{i}.safetensors"))
            save_file({f"W_dec_{i}": dec}, str(folder / f"W_dec_{i}.safetensors"))
    if tset.kind == "plt":
        config["transcoders"] = [f"layer_{i}.safetensors" for i in range(tset.n_layers)]
    config.update(extra_config or {})
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def _cpu(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
