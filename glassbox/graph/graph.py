"""The attribution graph: what `attribute` computes and every other part of Glassbox shows.

Field names and node order follow circuit-tracer's `Graph`, so graphs move between the
two tools:

    nodes = [selected features | errors (layer * n_pos + pos) | input tokens | logits]
    adjacency_matrix[target, source]   (rows are targets)

`active_features[i] = (layer, pos, feature)` lists every active transcoder feature;
`selected_features` indexes the ones that became graph nodes, in node order.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from glassbox.errors import GraphFormatError

if TYPE_CHECKING:
    from glassbox.features.store import FeatureStore
    from glassbox.view.notebook import ViewerFrame

FORMAT_VERSION = 1


@dataclass(frozen=True)
class LogitTarget:
    """One logit node: a vocabulary token, or a custom direction such as a logit difference.

    Custom targets get a virtual `vocab_idx` >= vocab_size (as circuit-tracer does), so node
    ids stay unique.
    """

    token_str: str
    vocab_idx: int


@dataclass
class Graph:
    input_string: str
    input_tokens: torch.Tensor  # (n_pos,) long
    active_features: torch.Tensor  # (n_active, 3) long: layer, pos, feature
    activation_values: torch.Tensor  # (n_active,) float
    selected_features: torch.Tensor  # (n_selected,) long, indices into active_features
    adjacency_matrix: torch.Tensor  # (n_nodes, n_nodes) float32, [target, source]
    logit_targets: list[LogitTarget]
    logit_probabilities: torch.Tensor  # (n_logits,) float
    n_layers: int
    vocab_size: int
    model_name: str = ""
    transcoder_name: str = ""
    token_strings: list[str] = field(default_factory=list)  # decoded input tokens, for display
    metadata: dict[str, Any] = field(default_factory=dict)  # generation settings, timings

    # ---- node bookkeeping -------------------------------------------------------------

    @property
    def n_pos(self) -> int:
        return int(self.input_tokens.shape[0])

    @property
    def n_selected(self) -> int:
        return int(self.selected_features.shape[0])

    @property
    def n_errors(self) -> int:
        return self.n_layers * self.n_pos

    @property
    def n_logits(self) -> int:
        return len(self.logit_targets)

    @property
    def n_nodes(self) -> int:
        return self.n_selected + self.n_errors + self.n_pos + self.n_logits

    @property
    def logit_tokens(self) -> torch.Tensor:
        """Vocabulary ids of the logit targets (virtual ids for custom targets)."""
        return torch.tensor([t.vocab_idx for t in self.logit_targets], dtype=torch.long)

    def error_node(self, layer: int, pos: int) -> int:
        return self.n_selected + layer * self.n_pos + pos

    def token_node(self, pos: int) -> int:
        return self.n_selected + self.n_errors + pos

    def logit_node(self, i: int) -> int:
        return self.n_selected + self.n_errors + self.n_pos + i

    def node_kind(self, node: int) -> str:
        """'feature', 'error', 'token' or 'logit' for a node index."""
        if node < 0 or node >= self.n_nodes:
            raise IndexError(f"node {node} out of range (graph has {self.n_nodes} nodes)")
        if node < self.n_selected:
            return "feature"
        if node < self.n_selected + self.n_errors:
            return "error"
        if node < self.n_selected + self.n_errors + self.n_pos:
            return "token"
        return "logit"

    def selected_feature_triples(self) -> torch.Tensor:
        """(n_selected, 3) (layer, pos, feature) of the feature nodes, in node order."""
        return self.active_features[self.selected_features]

    def show(self, *, features: FeatureStore | str | Path | None = None, height: int = 720,
             **export_options: Any) -> ViewerFrame:
        """The pruned graph in the viewer (see `glassbox.view.show`): inline in Jupyter, its
        address elsewhere. export_options go to `graph_to_json` (slug, node_threshold...)."""
        from glassbox.view.notebook import show

        return show(self, features=features, height=height, **export_options)

    # ---- persistence ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = {
            "format": "glassbox-graph",
            "format_version": FORMAT_VERSION,
            "input_string": self.input_string,
            "input_tokens": self.input_tokens.cpu(),
            "active_features": self.active_features.cpu(),
            "activation_values": self.activation_values.cpu(),
            "selected_features": self.selected_features.cpu(),
            "adjacency_matrix": self.adjacency_matrix.cpu(),
            "logit_targets": [asdict(t) for t in self.logit_targets],
            "logit_probabilities": self.logit_probabilities.cpu(),
            "n_layers": self.n_layers,
            "vocab_size": self.vocab_size,
            "model_name": self.model_name,
            "transcoder_name": self.transcoder_name,
            "token_strings": list(self.token_strings),
            "metadata": dict(self.metadata),
        }
        return d

    def save(self, path: str | Path) -> None:
        """Write the graph as a `.pt` file that loads with `torch.load(weights_only=True)`."""
        torch.save(self.to_dict(), Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        """Load a graph saved by Glassbox, or a `.pt` graph saved by circuit-tracer."""
        path = Path(path)
        if not path.is_file():
            raise GraphFormatError(f"graph file not found: {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            data = _load_foreign_pickle(path.read_bytes())
        if not isinstance(data, dict):
            raise GraphFormatError(f"{path} does not hold a graph (found {type(data).__name__})")
        if data.get("format") == "glassbox-graph":
            return cls._from_glassbox_dict(data)
        return from_circuit_tracer_dict(data)

    @classmethod
    def _from_glassbox_dict(cls, d: dict[str, Any]) -> Graph:
        if d.get("format_version", 0) > FORMAT_VERSION:
            raise GraphFormatError("graph was saved by a newer Glassbox; upgrade to read it")
        return cls(
            input_string=d["input_string"],
            input_tokens=d["input_tokens"],
            active_features=d["active_features"],
            activation_values=d["activation_values"],
            selected_features=d["selected_features"],
            adjacency_matrix=d["adjacency_matrix"],
            logit_targets=[LogitTarget(**t) for t in d["logit_targets"]],
            logit_probabilities=d["logit_probabilities"],
            n_layers=int(d["n_layers"]),
            vocab_size=int(d["vocab_size"]),
            model_name=d.get("model_name", ""),
            transcoder_name=d.get("transcoder_name", ""),
            token_strings=list(d.get("token_strings", [])),
            metadata=dict(d.get("metadata", {})),
        )


class _Stub:
    """Stands in for a class from a package we do not have (circuit-tracer's configs)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        # Unpickling a NamedTuple (circuit-tracer's LogitTarget) calls cls.__new__(cls, *fields)
        # and never __init__: keep the fields.
        obj = super().__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __reduce__(self):  # pragma: no cover - never re-pickled
        return (dict, ())


class _ForeignUnpickler(pickle.Unpickler):
    """Unpickles a circuit-tracer graph without importing circuit-tracer or transformer-lens."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in {"torch", "collections", "builtins", "numpy", "_codecs"}:
            return super().find_class(module, name)
        return type(name, (_Stub,), {})


def _load_foreign_pickle(raw: bytes) -> Any:
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False,
                          pickle_module=_PickleModule)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a graph we can read"
        raise GraphFormatError(f"cannot read graph file: {exc}") from exc


class _PickleModule:
    """A `pickle` look-alike for torch.load that uses the foreign-class-tolerant unpickler."""

    Unpickler = _ForeignUnpickler
    load = staticmethod(pickle.load)
    __name__ = "pickle"


def _decode_cfg(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, dict):
        return cfg
    return {k: v for k, v in vars(cfg).items() if not k.startswith("_")}


def from_circuit_tracer_dict(d: dict[str, Any]) -> Graph:
    """Build a Graph from the dict circuit-tracer's `Graph.to_pt` writes."""
    required = ["input_tokens", "active_features", "adjacency_matrix", "selected_features",
                "activation_values"]
    missing = [k for k in required if k not in d]
    if missing:
        raise GraphFormatError(f"not a circuit-tracer graph: missing {', '.join(missing)}")
    cfg = _decode_cfg(d.get("cfg"))
    n_layers = int(cfg.get("n_layers", 0) or 0)
    n_pos = int(d["input_tokens"].shape[0])
    n_sel = int(d["selected_features"].shape[0])
    adjacency = d["adjacency_matrix"].float()
    logit_ids, logit_strs = _circuit_tracer_logits(d)
    if n_layers == 0:  # infer from the node count
        n_layers = (adjacency.shape[0] - n_sel - n_pos - len(logit_ids)) // max(n_pos, 1)
    vocab_size = int(d.get("vocab_size") or cfg.get("d_vocab") or 0)
    probs = d.get("logit_probabilities")
    if probs is None:
        probs = torch.zeros(len(logit_ids))
    return Graph(
        input_string=str(d.get("input_string", "")),
        input_tokens=d["input_tokens"].long(),
        active_features=d["active_features"].long(),
        activation_values=d["activation_values"].float(),
        selected_features=d["selected_features"].long(),
        adjacency_matrix=adjacency,
        logit_targets=[LogitTarget(s, int(i)) for s, i in zip(logit_strs, logit_ids, strict=True)],
        logit_probabilities=probs.float(),
        n_layers=n_layers,
        vocab_size=vocab_size,
        model_name=str(cfg.get("model_name", "")),
        transcoder_name=_scan_name(d.get("scan_name", d.get("scan"))),
        metadata={"imported_from": "circuit-tracer"},
    )


def _circuit_tracer_logits(d: dict[str, Any]) -> tuple[list[int], list[str]]:
    """circuit-tracer stored `logit_tokens` (older) or a list of `LogitTarget`s (newer)."""
    targets = d.get("logit_targets")
    if isinstance(targets, torch.Tensor):  # an in-between release stored the ids here
        d = {"logit_tokens": targets}
    elif targets is not None:
        ids, strs = [], []
        for t in targets:
            vocab_idx = _target_field(t, "vocab_idx", 1)
            if vocab_idx is None:
                raise GraphFormatError(f"not a circuit-tracer graph: unreadable logit target {t!r}")
            ids.append(int(vocab_idx))
            strs.append(str(_target_field(t, "token_str", 0) or ""))
        return ids, strs
    tokens = d.get("logit_tokens")
    if tokens is None:
        raise GraphFormatError("not a circuit-tracer graph: no logit targets")
    ids = [int(x) for x in tokens]
    return ids, ["" for _ in ids]


def _target_field(target: Any, key: str, position: int) -> Any:
    """A LogitTarget field, whether it arrived as a dict, a tuple or an unpickled stub."""
    if isinstance(target, dict):
        return target.get(key)
    if isinstance(target, tuple):
        return target[position] if len(target) > position else None
    value = getattr(target, key, None)
    args = getattr(target, "_args", ())
    if value is None and len(args) > position:
        value = args[position]
    return value


def _scan_name(scan: Any) -> str:
    """circuit-tracer's scan_name: a string, or a list of transcoder names."""
    if isinstance(scan, list | tuple):
        return ",".join(str(s) for s in scan)
    return str(scan or "")
