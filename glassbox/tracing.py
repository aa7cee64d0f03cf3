"""The short API: one call from a prompt to a pruned, scored, JSON-ready graph.

    result = glassbox.trace("The capital of Texas is", model="gemma-3-270m",
                            transcoders="path/to/transcoders")
    result.to_json()        # Neuronpedia / circuit-tracer graph JSON
    result.summary()        # one line for logs and the CLI
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from glassbox.attribution.attribute import Progress, attribute
from glassbox.attribution.targets import TargetSpec
from glassbox.graph.graph import Graph
from glassbox.graph.prune import PruneResult, compute_graph_scores, node_influence, prune_graph
from glassbox.models.loaded import LoadedModel, load_model
from glassbox.transcoders.base import TranscoderSet
from glassbox.transcoders.io import load_transcoders

if TYPE_CHECKING:
    from glassbox.features.store import FeatureStore
    from glassbox.view.notebook import ViewerFrame


@dataclass
class TraceResult:
    graph: Graph
    pruned: PruneResult
    replacement_score: float
    completeness_score: float
    node_threshold: float
    edge_threshold: float
    seconds: float

    @property
    def scores(self) -> dict[str, float]:
        return {"replacement": self.replacement_score, "completeness": self.completeness_score}

    @property
    def n_nodes_kept(self) -> int:
        return int(self.pruned.node_mask.sum())

    @property
    def n_edges_kept(self) -> int:
        return int(self.pruned.edge_mask.sum())

    def to_json(self, *, slug: str | None = None,
                feature_labels: Mapping[tuple[int, int], str] | None = None,
                **options: Any) -> dict[str, Any]:
        """Graph JSON (validates against the Neuronpedia graph schema); options go to
        `graph_to_json` and may prune at other thresholds than the trace's."""
        from glassbox.graph.export import graph_to_json

        options = {"node_threshold": self.node_threshold, "edge_threshold": self.edge_threshold, **options}
        same = (options["node_threshold"], options["edge_threshold"]) == (self.node_threshold,
                                                                          self.edge_threshold)
        if same:  # the trace's own pruning and scores: not computed a second time
            options.setdefault("pruned", self.pruned)
            options.setdefault("scores", (self.replacement_score, self.completeness_score))
        return graph_to_json(self.graph, slug=slug or default_slug(self.graph.input_string),
                             feature_labels=feature_labels, **options)

    def save_json(self, path: str | Path, **options: Any) -> Path:
        from glassbox.graph.export import dumps_graph_json

        path = Path(path)
        if path.is_dir():  # an existing folder: circuit-tracer's layout, beside any graphs there
            return self.save_graph_files(path, **options)
        raw = dumps_graph_json(self.to_json(**options))
        if path.suffix == ".gz":
            import gzip

            raw = gzip.compress(raw, compresslevel=6)
        path.write_bytes(raw)
        return path

    def save_graph_files(self, folder: str | Path, **options: Any) -> Path:
        """Write the graph JSON in circuit-tracer's folder layout (`{slug}.json` plus its entry in
        `graph-metadata.json`), which circuit-tracer's viewer and `glassbox view FOLDER` open."""
        from glassbox.graph.export import write_graph_files

        return write_graph_files(self.to_json(**options), folder)

    def show(self, *, features: FeatureStore | str | Path | None = None, height: int = 720,
             **options: Any) -> ViewerFrame:
        """The graph in the viewer: inline in Jupyter (an iframe of a local view server started in
        the background), its address elsewhere. features: a features store or its folder, for
        dashboards; options go to `to_json`. Returns a `glassbox.view.ViewerFrame`."""
        from glassbox.view.notebook import show

        return show(self, features=features, height=height, **options)

    def summary(self) -> str:
        g = self.graph
        return (f"{g.metadata.get('n_active_features', '?')} active features, {g.n_selected} selected; "
                f"pruned graph {self.n_nodes_kept} nodes, {self.n_edges_kept} edges; "
                f"replacement {self.replacement_score:.3f}, completeness {self.completeness_score:.3f}; "
                f"{self.seconds:.1f} s")


def default_slug(prompt: str) -> str:
    """A readable, stable slug: words of the prompt plus a short hash."""
    words = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].strip("-") or "graph"
    return f"{words}-{hashlib.sha1(prompt.encode()).hexdigest()[:6]}"


def trace(
    prompt: str | Sequence[int],
    *,
    model: LoadedModel | str | Path,
    transcoders: TranscoderSet | str | Path,
    max_n_logits: int = 10,
    desired_logit_prob: float = 0.95,
    max_feature_nodes: int | None = None,
    batch_size: int = 64,
    targets: TargetSpec = None,
    node_threshold: float = 0.8,
    edge_threshold: float = 0.98,
    max_tokens: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> TraceResult:
    """Attribute, prune and score. model/transcoders may be objects, names or paths."""
    t0 = time.perf_counter()
    report = progress or (lambda phase, frac: None)
    if not isinstance(model, LoadedModel):
        report("load model", 0.0)
        model = load_model(model, dtype=dtype or torch.float32, device=device)
    if not isinstance(transcoders, TranscoderSet):
        report("load transcoders", 0.0)
        transcoders = load_transcoders(transcoders, device=model.device)
    graph = attribute(prompt, model, transcoders, max_n_logits=max_n_logits,
                      desired_logit_prob=desired_logit_prob, max_feature_nodes=max_feature_nodes,
                      batch_size=batch_size, targets=targets, max_tokens=max_tokens, progress=report)
    report("prune", 1.0)
    influence = node_influence(graph)
    pruned = prune_graph(graph, node_threshold, edge_threshold, influence=influence)
    replacement, completeness = compute_graph_scores(graph, influence=influence)
    seconds = time.perf_counter() - t0
    graph.metadata.update(replacement_score=replacement, completeness_score=completeness,
                          node_threshold=node_threshold, edge_threshold=edge_threshold,
                          seconds_trace=round(seconds, 3))
    return TraceResult(graph=graph, pruned=pruned, replacement_score=replacement,
                       completeness_score=completeness, node_threshold=node_threshold,
                       edge_threshold=edge_threshold, seconds=seconds)
