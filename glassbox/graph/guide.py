"""A guided first look at a graph: the paths that carry the top output, a suggested subgraph
(pinned nodes and supernodes) and a short note written from the graph's own numbers.

A graph of a few hundred nodes and tens of thousands of edges does not tell a newcomer where to
look. This module reads the graph JSON (the pruned graph the viewer draws; pure, no model) and:

1. takes the most likely output (the logit node with the highest `token_prob`) as the target;
2. normalises every node's inputs as pruning does (A_hat = |weight| / sum of |weight| into the
   node), so a path's product of A_hat is the share of the target's input that flows along it,
   and the sum over all paths from a node is its influence on the target;
3. pins the features with the strongest direct edges into the target (for and against), then
   those with the most influence on it, each with the successors that connect it to the rest
   (at most 13 features), the token embeddings whose direct edges into them carry the most
   influence (at most 6), and the target;
4. groups pinned features into supernodes: features at one position within one layer band
   (early, middle, late), then features with equal labels, then features whose labels share a
   word within one band;
5. writes the note: what carries the answer (the strongest direct support, in logit units),
   what pushes against it (the most negative direct edges) and where the influence ends (error
   nodes, token embeddings).

Error nodes are left out of the pins (they stand for what the transcoders miss and read as
noise in a first picture); the note gives their share instead.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from glassbox.errors import GraphFormatError
from glassbox.graph.neuronpedia import parse_logit_clerp

GUIDE_VERSION = 1
MAX_FEATURES = 13  # pinned features; with their tokens and the target at most 20 pins
MAX_TOKENS = 6
MAX_POSITIONS = 2  # nodes of one feature (at different positions) pinned for their influence
N_CARRIERS = 3
N_AGAINST = 2
BANDS = ("early", "middle", "late")
# Words of auto labels and clerps that say nothing about meaning.
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have in is it its of on or that the this to was "
    "were with after before emb err mlp output feature features token tokens dead never fired".split()
)
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)


@dataclass(frozen=True)
class Contributor:
    """A node named in the note: its label, its direct edge into the target logit (signed,
    0.0 when it has none in the pruned graph) and its influence on the target (a share, 0-1)."""

    node_id: str
    kind: str  # feature | error | embedding
    label: str
    direct: float
    influence: float


@dataclass(frozen=True)
class Guide:
    """A suggested subgraph and its note (`to_json` is what graph JSON and the API carry)."""

    target: str  # node id of the target logit
    token: str
    prob: float
    pinned_ids: list[str]
    supernodes: list[list[str]]  # [[name, node id, ...], ...] as the viewer's URL state
    note: list[str]  # sentences
    carriers: list[Contributor]
    against: list[Contributor]
    shares: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = GUIDE_VERSION
        return data


# ---- reading the JSON ----------------------------------------------------------------------


@dataclass
class _Node:
    id: str
    kind: str
    layer: int | None
    ctx: int
    clerp: str
    prob: float


def _kind(feature_type: Any) -> str:
    """The viewer's four kinds (frontend/static/viewer/graph-model.js nodeKind)."""
    text = str(feature_type or "").lower()
    if text in ("embedding", "logit"):
        return text
    return "error" if "error" in text else "feature"


def _read_nodes(doc: Mapping[str, Any]) -> dict[str, _Node]:
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        raise GraphFormatError("graph JSON has no 'nodes' list")
    out = {}
    for raw in nodes:
        if not isinstance(raw, Mapping) or "node_id" not in raw:
            raise GraphFormatError("every graph JSON node needs a node_id")
        out[str(raw["node_id"])] = _Node(
            id=str(raw["node_id"]),
            kind=_kind(raw.get("feature_type")),
            layer=_int_or_none(raw.get("layer")),
            ctx=_int_or_none(raw.get("ctx_idx")) or 0,
            clerp=str(raw.get("clerp") or ""),
            prob=_prob(raw),
        )
    return out


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _prob(raw: Mapping[str, Any]) -> float:
    """A logit node's probability: token_prob, else the p= of its clerp (as the viewer reads it)."""
    prob = raw.get("token_prob")
    if not isinstance(prob, int | float) or not math.isfinite(prob) or (prob == 0 and raw.get("clerp")):
        _, parsed = parse_logit_clerp(str(raw.get("clerp") or ""))
        prob = parsed if parsed is not None and math.isfinite(parsed) else prob
    return float(prob) if isinstance(prob, int | float) and math.isfinite(prob) else 0.0


def _read_links(doc: Mapping[str, Any], nodes: Mapping[str, _Node]) -> dict[str, list[tuple[str, float]]]:
    """target id -> [(source id, signed weight), ...]; links to unknown nodes are skipped."""
    links = doc.get("links")
    if not isinstance(links, list):
        raise GraphFormatError("graph JSON has no 'links' list")
    incoming: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for link in links:
        source, target = str(link.get("source")), str(link.get("target"))
        weight = link.get("weight")
        if source in nodes and target in nodes and isinstance(weight, int | float) and weight:
            incoming[target].append((source, float(weight)))
    return incoming


def _ancestors_in_order(target: str, incoming: Mapping[str, list[tuple[str, float]]]) -> list[str]:
    """The target and every node with a path into it, each after all of its successors on
    those paths (target first): an order for pushing influence down."""
    seen: set[str] = set()
    order: list[str] = []  # post-order over incoming edges: sources before the nodes they feed
    stack: list[tuple[str, int]] = [(target, 0)]
    seen.add(target)
    while stack:
        node, i = stack.pop()
        inputs = incoming.get(node, [])
        if i < len(inputs):
            stack.append((node, i + 1))
            source = inputs[i][0]
            if source not in seen:
                seen.add(source)
                stack.append((source, 0))
        else:
            order.append(node)
    return order[::-1]


# ---- numbers -------------------------------------------------------------------------------


@dataclass
class _Flow:
    """Normalised weights into each node and influence on the target."""

    share: dict[str, list[tuple[str, float]]]  # node -> [(source, A_hat)], every ancestor of the target
    influence: dict[str, float]  # sum over paths to the target of the product of A_hat


def _flow(target: str, incoming: Mapping[str, list[tuple[str, float]]]) -> _Flow:
    order = _ancestors_in_order(target, incoming)
    share: dict[str, list[tuple[str, float]]] = {}
    for node in order:
        inputs = incoming.get(node, [])
        total = sum(abs(w) for _, w in inputs)
        share[node] = [(s, abs(w) / total) for s, w in inputs] if total > 0 else []
    influence = dict.fromkeys(order, 0.0)
    influence[target] = 1.0
    for node in order:  # successors first
        for source, a in share[node]:
            influence[source] += influence[node] * a
    influence[target] = 0.0  # its own 1.0 is not influence through it
    return _Flow(share, influence)


def _source_shares(flow: _Flow, nodes: Mapping[str, _Node]) -> dict[str, float]:
    """Where the target's influence ends: token embeddings, error nodes, or features that have
    no inputs left in the pruned graph; shares of the total (they sum to 1)."""
    ends = {"tokens": 0.0, "errors": 0.0, "unexplained_features": 0.0}
    for node, inputs in flow.share.items():
        if inputs:
            continue
        kind = nodes[node].kind
        key = "tokens" if kind == "embedding" else "errors" if kind == "error" else "unexplained_features"
        ends[key] += flow.influence[node]
    total = sum(ends.values())
    return {key: (value / total if total > 0 else 0.0) for key, value in ends.items()}


def _direct_shares(target: str, flow: _Flow, nodes: Mapping[str, _Node]) -> dict[str, float]:
    """The target's direct input (|weight| shares) by the kind of node it comes from."""
    out = {"direct_features": 0.0, "direct_errors": 0.0, "direct_tokens": 0.0}
    for source, a in flow.share[target]:
        kind = {"embedding": "tokens", "error": "errors"}.get(nodes[source].kind, "features")
        out[f"direct_{kind}"] += a
    return out


# ---- labels --------------------------------------------------------------------------------


def _tokens(doc: Mapping[str, Any]) -> list[str]:
    tokens = (doc.get("metadata") or {}).get("prompt_tokens")
    return [str(t) for t in tokens] if isinstance(tokens, list) else []


def _quoted(text: str) -> str:
    return "\u201c" + text.replace("\n", "\\n") + "\u201d"


def _address(node: _Node) -> str:
    """`L12 #345` for a feature, from its id `{layer}_{index}_{pos}`."""
    parts = node.id.split("_")
    index = parts[1] if len(parts) == 3 else "?"
    return f"L{node.layer} #{index}"


def _where(ctx: int, tokens: Sequence[str]) -> str:
    """`“ Jordan”`, or `“:” (2nd of 3)` / `“:” (last)` for a token the prompt has more than once."""
    if not 0 <= ctx < len(tokens):
        return f"position {ctx}"
    same = [i for i, t in enumerate(tokens) if t == tokens[ctx]]
    if len(same) == 1:
        return _quoted(tokens[ctx])
    which = "last" if ctx == same[-1] else f"{_ordinal(same.index(ctx) + 1)} of {len(same)}"
    return f"{_quoted(tokens[ctx])} ({which})"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _label(node: _Node, tokens: Sequence[str]) -> str:
    at = _where(node.ctx, tokens)
    if node.kind == "embedding":
        return f"the token {at}"
    if node.kind == "error":
        return f"the layer-{node.layer} error node at {at}"
    if node.kind == "logit":
        return node.clerp or node.id
    name = node.clerp.strip()
    return f"{name} ({_address(node)} at {at})" if name else f"{_address(node)} at {at}"


def _words(clerp: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(clerp)} - _STOPWORDS


def _n_layers(doc: Mapping[str, Any], nodes: Mapping[str, _Node]) -> int:
    section = (doc.get("metadata") or {}).get("glassbox") or {}
    n = section.get("n_layers") if isinstance(section, Mapping) else None
    if isinstance(n, int) and n > 0:
        return n
    layers = [n.layer for n in nodes.values() if n.kind in ("feature", "error") and n.layer is not None]
    return max(layers, default=0) + 1


def _band(layer: int | None, n_layers: int) -> int:
    return min(len(BANDS) - 1, max(0, (layer or 0) * len(BANDS) // max(1, n_layers)))


def _layer_span(members: Sequence[_Node]) -> str:
    low = min(n.layer or 0 for n in members)
    high = max(n.layer or 0 for n in members)
    return f"L{low}" if low == high else f"L{low}\u2013{high}"


# ---- choosing and grouping -----------------------------------------------------------------


def _choose(target: str, flow: _Flow, nodes: Mapping[str, _Node], *, max_features: int,
            must: Sequence[str]) -> list[str]:
    """Tokens, features and the target, in drawing order.

    Features, at most `max_features`: `must` first, then by influence (one feature at most at
    MAX_POSITIONS positions, so a feature that fires everywhere does not fill the budget). Each
    comes with the chain of successors that carry most of its influence until one is pinned
    already, so every pinned feature connects towards the target; a feature whose chain does not
    fit is skipped. Tokens: the ones whose direct edges into pinned nodes carry the most influence.
    """
    carried: dict[str, dict[str, float]] = defaultdict(dict)  # source -> {successor: influence it carries}
    for node, inputs in flow.share.items():
        weight = 1.0 if node == target else flow.influence[node]
        for source, a in inputs:
            carried[source][node] = weight * a
    by_influence = sorted((n for n, v in flow.influence.items() if v > 0 and nodes[n].kind == "feature"),
                          key=lambda n: (-flow.influence[n], n))
    musts = [n for n in must if nodes[n].kind == "feature"]
    pinned = {target}
    positions: dict[str, int] = defaultdict(int)  # pinned nodes per feature (layer, index)
    for start in [*musts, *by_influence]:
        if len(pinned) > max_features:
            break
        if start not in musts and positions[_address(nodes[start])] >= MAX_POSITIONS:
            continue
        chain = [start]
        while chain[-1] != target and not any(s in pinned or s in chain for s in carried[chain[-1]]):
            step = chain[-1]
            chain.append(max(carried[step], key=lambda s: (carried[step][s], s)))
        new = [n for n in chain if n not in pinned]
        if len(pinned) - 1 + len(new) <= max_features:
            pinned.update(new)
            for n in new:
                positions[_address(nodes[n])] += 1
    tokens: dict[str, float] = defaultdict(float)
    for node in pinned:
        weight = 1.0 if node == target else flow.influence[node]
        for source, a in flow.share.get(node, []):
            if nodes[source].kind == "embedding":
                tokens[source] += weight * a
    chosen = sorted(tokens, key=lambda n: (-tokens[n], n))[:MAX_TOKENS]
    features = [n for n in pinned if n != target]
    return [*sorted(chosen, key=lambda n: nodes[n].ctx),
            *sorted(features, key=lambda n: (nodes[n].layer or 0, nodes[n].ctx, n)), target]


def _supernodes(pinned: Sequence[str], nodes: Mapping[str, _Node], tokens: Sequence[str], n_layers: int,
                keep_apart: set[str]) -> list[list[str]]:
    """Pinned features grouped (groups of one stay single nodes), in three passes: by position
    within a layer band; the rest by equal label (one feature at several positions, or features
    labelled alike); the rest by a shared label word within a band."""
    free = [n for n in pinned if nodes[n].kind == "feature" and n not in keep_apart]
    groups: list[list[str]] = []
    taken: set[str] = set()

    def take(keyed: dict[Any, list[str]], name: Any) -> None:
        for key, members in sorted(keyed.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
            members = [m for m in members if m not in taken]
            if len(members) >= 2:
                taken.update(members)
                groups.append([name(key, [nodes[m] for m in members]), *members])

    by_place: dict[tuple[int, int], list[str]] = defaultdict(list)
    for node in free:
        by_place[(nodes[node].ctx, _band(nodes[node].layer, n_layers))].append(node)
    take(by_place, lambda key, members: f"{_where(key[0], tokens)} {_layer_span(members)}")
    by_label: dict[str, list[str]] = defaultdict(list)
    for node in free:
        if node not in taken and nodes[node].clerp.strip():
            by_label[nodes[node].clerp.strip()].append(node)
    take(by_label, lambda key, members: f"{_shortened(key)} \u00d7{len(members)}")
    by_word: dict[tuple[str, int], list[str]] = defaultdict(list)
    for node in free:
        if node not in taken:
            for word in _words(nodes[node].clerp):
                by_word[(word, _band(nodes[node].layer, n_layers))].append(node)
    take(by_word, lambda key, members: f"{_quoted(key[0])} {_layer_span(members)}")
    return groups


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# ---- the note ------------------------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{round(100 * value)}%"


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "\u2212")


def _effects(contributors: Sequence[Contributor]) -> str:
    return "; ".join(f"{c.label} {_signed(c.direct)}" for c in contributors)


def _note(target: _Node, token: str, shares: Mapping[str, float], carriers: Sequence[Contributor],
          against: Sequence[Contributor], stronger: Contributor | None, n_features: int) -> list[str]:
    plural = "s" if n_features != 1 else ""
    lines = [
        f"Why {_quoted(token)} (p = {target.prob:.2f})? Pinned: the {n_features} feature{plural} with the "
        "strongest direct effect on it or the most influence, the prompt tokens feeding them and the "
        "output, grouped by position and meaning.",
    ]
    if carriers:
        lines.append(f"Pushing it up (direct effect on its logit): {_effects(carriers)}.")
    else:
        lines.append("No feature raises it directly in the pruned graph.")
    if against or stronger:
        parts = _effects(against) if against else "no feature"
        if stronger is not None:
            parts += f"; and stronger than any feature, {stronger.label} {_signed(stronger.direct)}"
        lines.append(f"Pushing it down: {parts}. It stays the top prediction: the pushes up outweigh these.")
    else:
        lines.append("Nothing in the pruned graph pushes it down directly.")
    errors, tokens = _percent(shares["errors"]), _percent(shares["tokens"])
    features, direct_errors, direct_tokens = (
        _percent(shares[f"direct_{kind}"]) for kind in ("features", "errors", "tokens")
    )
    lines.append(
        f"{errors} of its influence traces back to error nodes (what the transcoders do not explain) and "
        f"{tokens} to the prompt's tokens; its direct input is {features} features, {direct_errors} errors, "
        f"{direct_tokens} tokens."
    )
    if shares["errors"] >= 0.5:
        lines.append("More than half is unexplained: read the features as a partial account.")
    return lines


# ---- the entry point -----------------------------------------------------------------------


def target_logit(doc: Mapping[str, Any]) -> str:
    """Node id of the most likely output (ties: the one marked is_target_logit, then the first)."""
    best: tuple[float, int, int] | None = None
    found = None
    for i, raw in enumerate(doc.get("nodes") or []):
        if _kind(raw.get("feature_type")) != "logit":
            continue
        key = (_prob(raw), int(bool(raw.get("is_target_logit"))), -i)
        if best is None or key > best:
            best, found = key, str(raw["node_id"])
    if found is None:
        raise GraphFormatError("the graph has no logit node to explain")
    return found


def suggest_subgraph(doc: Mapping[str, Any], *, max_features: int = MAX_FEATURES) -> Guide:
    """The suggested subgraph of a graph JSON (glassbox/graph/schemas/graph-schema.json) and its
    note, for its most likely output."""
    nodes = _read_nodes(doc)
    incoming = _read_links(doc, nodes)
    target = target_logit(doc)
    tokens = _tokens(doc)
    flow = _flow(target, incoming)
    shares = {**_source_shares(flow, nodes), **_direct_shares(target, flow, nodes)}
    direct = dict(incoming.get(target, []))

    def contributor(node: str) -> Contributor:
        n = nodes[node]
        return Contributor(node, n.kind, _label(n, tokens), direct[node], flow.influence[node])

    by_effect = sorted(direct, key=lambda n: (direct[n], n))  # most negative first
    features = [n for n in by_effect if nodes[n].kind == "feature"]
    carriers = [contributor(n) for n in reversed(features) if direct[n] > 0][:N_CARRIERS]
    against = [contributor(n) for n in features if direct[n] < 0][:N_AGAINST]
    strongest = by_effect[0] if by_effect and direct[by_effect[0]] < 0 else None
    stronger = None
    if strongest is not None and nodes[strongest].kind != "feature":
        if not against or direct[strongest] < against[0].direct:
            stronger = contributor(strongest)
    pinned = _choose(target, flow, nodes, max_features=max_features,
                     must=[c.node_id for c in (*carriers, *against)])
    groups = _supernodes(pinned, nodes, tokens, _n_layers(doc, nodes), {c.node_id for c in against})
    token = _logit_token(nodes[target])
    n_features = sum(1 for n in pinned if nodes[n].kind == "feature")
    return Guide(
        target=target,
        token=token,
        prob=nodes[target].prob,
        pinned_ids=pinned,
        supernodes=groups,
        note=_note(nodes[target], token, shares, carriers, against, stronger, n_features),
        carriers=carriers,
        against=[*against, *([stronger] if stronger else [])],
        shares={key: round(value, 6) for key, value in shares.items()},
    )


def _logit_token(node: _Node) -> str:
    """The token of `Output "tok" (p=0.123)`; the node id when the clerp has none."""
    token, _ = parse_logit_clerp(node.clerp)
    return token if token is not None else node.id


def apply_guide(doc: dict[str, Any], guide: Guide) -> dict[str, Any]:
    """Make `guide` the graph's default view: pins and supernodes in qParams (where
    circuit-tracer's and this project's viewers read a graph's own starting state) and the whole
    guide in metadata.glassbox.guide (the viewer shows its note). Changes and returns `doc`."""
    qparams = doc.setdefault("qParams", {})
    qparams["pinnedIds"] = list(guide.pinned_ids)
    qparams["supernodes"] = [list(group) for group in guide.supernodes]
    metadata = doc.setdefault("metadata", {})
    section = metadata.setdefault("glassbox", {})
    section["guide"] = guide.to_json()
    return doc
