"""Attribution graphs: the data structure, pruning and scores, JSON export and import."""

from glassbox.graph.graph import Graph, LogitTarget

__all__ = ["Graph", "LogitTarget"]
