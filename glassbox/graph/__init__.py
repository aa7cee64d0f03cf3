"""Attribution graphs: the data structure, pruning and scores, JSON export and import."""

from glassbox.graph.export import graph_to_json, save_graph_json
from glassbox.graph.graph import Graph, LogitTarget
from glassbox.graph.json_import import graph_from_json, load_graph_json
from glassbox.graph.prune import compute_graph_scores, prune_graph

__all__ = ["Graph", "LogitTarget", "compute_graph_scores", "graph_from_json", "graph_to_json",
           "load_graph_json", "prune_graph", "save_graph_json"]
