"""Two stored graphs compared, for the compare page.

* Graphs of one model and transcoder set: shared transcoder features (glassbox.compare on the
  graphs rebuilt from their JSON, or, for graphs that cannot be rebuilt, on their feature nodes),
  and the difference view: features only in A, only in B, and how the shared ones changed.
  Each feature comes with its label (`labels_a`, `labels_b`) where the site or the graph has one.
* Graphs of two models (or two transcoder sets): feature indices do not correspond, so each
  graph's features are listed on their own; for the same prompt the token positions of both
  tokenizations are aligned (glassbox.compare.align_tokens) and each aligned piece of the prompt
  shows how much of each graph's influence sits there.
* Either way, the output tokens (logit nodes) of both graphs side by side.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError
from persistence.errors import Unprocessable
from persistence.explanations import latest_explanations
from persistence.graphs import decompress
from persistence.tables import Feature, GraphRecord
from server.services.graphs import get_graph_data

log = logging.getLogger(__name__)

SHOWN = 200  # features per table on the page


def _document(session: Session, record: GraphRecord) -> dict[str, Any]:
    return json.loads(decompress(get_graph_data(session, record)))


def _imported(session: Session, record: GraphRecord) -> Any:
    from glassbox.graph.json_import import graph_from_json

    try:
        return graph_from_json(_document(session, record))
    except GlassboxError as exc:
        raise Unprocessable(f"stored graph {record.slug!r} could not be read: {exc}") from exc


def _rebuilt(imported: Any, slug: str) -> Any | None:
    """The pruned graph as a glassbox Graph, or None where its nodes do not allow it."""
    try:
        return imported.to_graph()
    except GlassboxError as exc:
        log.info("graph %s compared on its nodes: %s", slug, exc)
        return None


def _same_features(a: GraphRecord, b: GraphRecord, graph_a: Any, graph_b: Any) -> bool:
    """Whether a feature index means the same feature in both graphs (one model, one set)."""
    from glassbox.compare import check_same_model

    if a.transcoder_set_id and b.transcoder_set_id and a.transcoder_set_id != b.transcoder_set_id:
        return False
    if a.model_id and b.model_id and a.model_id != b.model_id:
        return False
    if graph_a is None or graph_b is None:
        return True
    try:
        check_same_model(graph_a, graph_b)
    except GlassboxError:
        return False
    return True


def compare_records(session: Session, a: GraphRecord, b: GraphRecord) -> dict[str, Any]:
    """Graphs a and b compared, as JSON: glassbox.compare's `Comparison.to_dict` plus `method`
    (influence | nodes), `comparable` (do feature indices correspond), `outputs` (both graphs'
    output tokens) and `alignment` (token positions of one prompt on two tokenizers, or None)."""
    imported_a, imported_b = _imported(session, a), _imported(session, b)
    graph_a, graph_b = _rebuilt(imported_a, a.slug), _rebuilt(imported_b, b.slug)
    comparable = _same_features(a, b, graph_a, graph_b)
    if graph_a is not None and graph_b is not None:
        result = _from_graphs(graph_a, graph_b, comparable=comparable)
    else:
        result = _pair(_node_stats(imported_a.nodes), _node_stats(imported_b.nodes), comparable=comparable)
        result["method"] = "nodes"
    result.update(prompt_a=a.prompt, prompt_b=b.prompt, comparable=comparable)
    result["labels_a"] = feature_labels(session, a, result["shared"] + result["only_a"], imported_a.nodes)
    result["labels_b"] = feature_labels(session, b, result["shared"] + result["only_b"], imported_b.nodes)
    result["outputs"] = output_changes(imported_a.nodes, imported_b.nodes)
    result["alignment"] = None
    tokens_a, tokens_b = imported_a.prompt_tokens, imported_b.prompt_tokens
    if a.prompt == b.prompt and (not comparable or tokens_a != tokens_b):
        shares_a = None if graph_a is None else position_shares(graph_a)
        shares_b = None if graph_b is None else position_shares(graph_b)
        result["alignment"] = alignment(a.prompt, tokens_a, tokens_b, shares_a, shares_b)
    return result


# ---- features -----------------------------------------------------------------------------------

LABEL_QUERY_BATCH = 500  # (layer, index) pairs per query


def feature_labels(
    session: Session, record: GraphRecord, items: list[dict[str, Any]], nodes: list[Any]
) -> dict[str, str]:
    """What to call each feature of `items` in `record`, by "layer/feature": its label on the
    site, in the feature page's order (a person's label, the newest LLM explanation, the
    automatic label), else the label the graph's JSON carries (set when it was traced or
    exported); features with none are left out."""
    keys = sorted({(int(c["layer"]), int(c["feature"])) for c in items})
    labels: dict[tuple[int, int], str] = {}
    for n in nodes:
        if n.kind == "feature" and n.layer is not None and n.index is not None and (n.clerp or "").strip():
            labels.setdefault((n.layer, n.index), n.clerp.strip())
    if record.transcoder_set_id is not None:
        for start in range(0, len(keys), LABEL_QUERY_BATCH):
            batch = keys[start : start + LABEL_QUERY_BATCH]
            rows = session.execute(
                select(Feature.id, Feature.layer, Feature.index, Feature.label, Feature.auto_label).where(
                    Feature.transcoder_set_id == record.transcoder_set_id,
                    tuple_(Feature.layer, Feature.index).in_(batch),
                )
            ).all()
            explained = latest_explanations(session, [row.id for row in rows])
            for fid, layer, index, label, auto_label in rows:
                explanation = explained[fid].text if fid in explained else None
                for text in (label, explanation, auto_label):
                    if text and text.strip():
                        labels[(layer, index)] = text.strip()
                        break
    return {f"{layer}/{index}": labels[(layer, index)] for layer, index in keys if (layer, index) in labels}


def _from_graphs(graph_a: Any, graph_b: Any, *, comparable: bool) -> dict[str, Any]:
    """glassbox.compare on the rebuilt graphs; graphs whose features do not correspond get
    each graph's feature stats on their own."""
    from glassbox.compare import compare_graphs, feature_stats

    try:
        if comparable:
            return {**compare_graphs(graph_a, graph_b).to_dict(), "method": "influence"}
        a = {key: stat.to_dict() for key, stat in feature_stats(graph_a).items()}
        b = {key: stat.to_dict() for key, stat in feature_stats(graph_b).items()}
    except GlassboxError as exc:
        raise Unprocessable(f"the graphs could not be compared: {exc}") from exc
    return {**_pair(a, b, comparable=False), "method": "influence"}


def own_influence(nodes: list[Any]) -> dict[int, float]:
    """Each node's own share of the graph's influence, estimated, by position in `nodes`.

    The JSON `influence` field is circuit-tracer's cumulative fraction at the node's rank
    (smaller = more important), so a node's share is its value minus the next smaller value in
    the JSON. That is exact when the JSON holds every node of higher rank; where pruning dropped
    some (error nodes under the threshold, nodes left without edges) it is an upper bound."""
    ranked = sorted((n.influence, i) for i, n in enumerate(nodes)
                    if n.kind != "logit" and n.influence is not None)
    own, previous = {}, 0.0
    for cumulative, i in ranked:
        own[i], previous = max(cumulative - previous, 0.0), cumulative
    return own


def _node_stats(nodes: list[Any]) -> dict[tuple[int, int], dict[str, Any]]:
    """Feature stats from the JSON's feature nodes alone (graphs that cannot be rebuilt)."""
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    own = own_influence(nodes)
    for i, n in enumerate(nodes):
        if n.kind != "feature" or n.layer is None or n.index is None:
            continue
        empty = {"positions": set(), "influence": 0.0, "max_activation": 0.0}
        g = groups.setdefault((n.layer, n.index), empty)
        g["positions"].add(n.pos)
        g["influence"] += own.get(i, 0.0)
        g["max_activation"] = max(g["max_activation"], n.activation or 0.0)
    total = sum(g["influence"] for g in groups.values())
    return {
        (layer, feat): {
            "layer": layer,
            "feature": feat,
            "positions": sorted(g["positions"]),
            "influence": g["influence"],
            "share": g["influence"] / total if total > 0 else 0.0,
            "max_activation": g["max_activation"],
        }
        for (layer, feat), g in groups.items()
    }


def _item(key: tuple[int, int], sa: dict[str, Any] | None, sb: dict[str, Any] | None) -> dict[str, Any]:
    """One feature in graph a and/or b (the shape of `FeatureComparison.to_dict`)."""
    share_a, share_b = (sa or {}).get("share", 0.0), (sb or {}).get("share", 0.0)
    return {"layer": key[0], "feature": key[1], "in_both": sa is not None and sb is not None,
            "share_a": share_a, "share_b": share_b, "change": share_b - share_a, "a": sa, "b": sb}


def _pair(
    a: dict[tuple[int, int], dict[str, Any]], b: dict[tuple[int, int], dict[str, Any]], *, comparable: bool
) -> dict[str, Any]:
    """Shared and distinct features; when indices do not correspond, every feature is its
    graph's own (nothing shared, no overlap)."""
    if comparable:
        both, only_a, only_b = a.keys() & b.keys(), a.keys() - b.keys(), b.keys() - a.keys()
    else:
        both, only_a, only_b = set(), a.keys(), b.keys()
    shared = sorted((_item(k, a[k], b[k]) for k in both),
                    key=lambda c: (-(c["share_a"] + c["share_b"]), *_key(c)))
    alone_a = sorted((_item(k, a[k], None) for k in only_a), key=lambda c: (-c["share_a"], *_key(c)))
    alone_b = sorted((_item(k, None, b[k]) for k in only_b), key=lambda c: (-c["share_b"], *_key(c)))
    every = shared + alone_a + alone_b
    top = sum(max(c["share_a"], c["share_b"]) for c in every)
    overlap = sum(min(c["share_a"], c["share_b"]) for c in every) / top if comparable and top > 0 else 0.0
    return {
        "n_shared": len(shared), "n_only_a": len(alone_a), "n_only_b": len(alone_b),
        "shared_share_a": sum(c["share_a"] for c in shared),
        "shared_share_b": sum(c["share_b"] for c in shared),
        "weighted_overlap": overlap,
        "shared": shared, "only_a": alone_a, "only_b": alone_b,
    }


def _key(c: dict[str, Any]) -> tuple[int, int]:
    return c["layer"], c["feature"]


def columns(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each graph's features for the side-by-side view (shared ones flagged), largest share first."""
    col_a = sorted(result["shared"] + result["only_a"], key=lambda c: -c["share_a"])[:SHOWN]
    col_b = sorted(result["shared"] + result["only_b"], key=lambda c: -c["share_b"])[:SHOWN]
    return col_a, col_b


def difference(result: dict[str, Any]) -> dict[str, Any]:
    """The difference view: features only in A, only in B, and the shared ones by the size of
    their change (share of influence, and largest activation), each list cut at SHOWN."""
    changed = []
    for c in sorted(result["shared"], key=lambda c: (-abs(c["change"]), *_key(c))):
        act_a, act_b = c["a"]["max_activation"], c["b"]["max_activation"]
        changed.append({**c, "activation_a": act_a, "activation_b": act_b,
                        "activation_change": act_b - act_a})
    return {
        "only_a": result["only_a"][:SHOWN],
        "only_b": result["only_b"][:SHOWN],
        "changed": changed[:SHOWN],
        "n_changed": len(changed),
    }


# ---- outputs ------------------------------------------------------------------------------------


def output_changes(nodes_a: list[Any], nodes_b: list[Any]) -> list[dict[str, Any]]:
    """The logit nodes of both graphs by token text: probability in each and the change.

    Tokens are matched by their text, so this works across tokenizers; a token a graph does
    not target has no probability there (None), not 0.
    """
    def probs(nodes: list[Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for n in nodes:
            if n.kind == "logit":
                out.setdefault(n.token_str if n.token_str is not None else n.clerp, n.token_prob or 0.0)
        return out

    pa, pb = probs(nodes_a), probs(nodes_b)
    tokens = sorted(pa, key=lambda t: -pa[t]) + sorted((t for t in pb if t not in pa), key=lambda t: -pb[t])
    rows = []
    for token in tokens:
        a, b = pa.get(token), pb.get(token)
        change = None if a is None or b is None else b - a
        rows.append({"token": token, "prob_a": a, "prob_b": b, "change": change})
    return rows


# ---- token positions ----------------------------------------------------------------------------


def position_shares(graph: Any) -> list[float]:
    """Per token position: the feature nodes' influence there, as a share of the graph's total
    node influence (the measure `share` uses for features)."""
    from glassbox.graph.prune import node_influence

    influence = node_influence(graph)
    total = float(influence.double().sum())
    shares = [0.0] * graph.n_pos
    if total <= 0:
        return shares
    triples = graph.selected_feature_triples().tolist()
    values = influence[: graph.n_selected].double().tolist()
    for (_layer, pos, _feat), value in zip(triples, values, strict=True):
        shares[pos] += value / total
    return shares


def _groups(n_a: int, n_b: int, pairs: list[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    """Connected sets of corresponding positions (a word read as one token in A and as two in B
    is one group); a position that corresponds to nothing is a group alone."""
    parent = list(range(n_a + n_b))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        parent[root(i)] = root(n_a + j)
    members: dict[int, tuple[list[int], list[int]]] = {}
    for x in range(n_a + n_b):
        side = members.setdefault(root(x), ([], []))
        (side[0] if x < n_a else side[1]).append(x if x < n_a else x - n_a)
    return list(members.values())


def alignment(
    text: str,
    tokens_a: list[str],
    tokens_b: list[str],
    shares_a: list[float] | None,
    shares_b: list[float] | None,
) -> dict[str, Any]:
    """`TokenAlignment.to_dict` plus `groups`: the corresponding positions of A and B in prompt
    order, the text they cover, and (when known) each graph's influence share there."""
    from glassbox.compare import align_tokens

    aligned = align_tokens(text, tokens_a, tokens_b)
    groups = []
    for pos_a, pos_b in _groups(len(tokens_a), len(tokens_b), aligned.pairs):
        spans = [aligned.spans_a[i] for i in pos_a] + [aligned.spans_b[j] for j in pos_b]
        start, end = min(s[0] for s in spans), max(s[1] for s in spans)
        share_a = None if shares_a is None else sum(shares_a[i] for i in pos_a)
        share_b = None if shares_b is None else sum(shares_b[j] for j in pos_b)
        change = None if share_a is None or share_b is None else share_b - share_a
        groups.append({
            "a": pos_a, "b": pos_b, "start": start, "end": end, "text": text[start:end],
            "tokens_a": [tokens_a[i] for i in pos_a], "tokens_b": [tokens_b[j] for j in pos_b],
            "share_a": share_a, "share_b": share_b, "change": change,
        })
    groups.sort(key=lambda g: (g["start"], g["end"], min(g["a"], default=-1), min(g["b"], default=-1)))
    return {**aligned.to_dict(), "groups": groups,
            "one_to_one": all(len(g["a"]) == len(g["b"]) == 1 for g in groups)}
