// Graph scores from the graph JSON alone, with the engine's definitions (glassbox/graph/prune.py)
// applied to the links in the file:
//
//   A_hat  |weight| with each target's inputs divided by their sum
//   w      logit probabilities on the logit nodes, 0 elsewhere
//   I      w^T (A_hat + A_hat^2 + ...): how much of the output flows through each node
//
//   replacement  = sum I(tokens) / (sum I(tokens) + sum I(unexplained))
//   completeness = sum_i (1 - unexplained share of i's input) (I_i + w_i) / sum_i (I_i + w_i)
//
// "Unexplained" is the error nodes for the whole graph. For a subgraph (Neuronpedia's subgraph
// scores), the features left out of it count as unexplained too: their inputs are cut and what
// they pass on counts like an error node's. The file holds the pruned graph, so these are
// scores of what the file shows; the engine's scores of the full graph, when the exporter wrote
// them, are in metadata.glassbox (`reportedScores`).

const KINDS = ["feature", "error", "embedding"];

/** Σ|weight| of each node's inputs, skipping sources that `cut` drops. */
function inputSums(model, isCut) {
  const { offsets, edges } = model.incoming;
  const { src, weight } = model.edges;
  const sums = new Float64Array(model.nodes.length);
  for (let t = 0; t < model.nodes.length; t += 1) {
    if (isCut[t]) continue;
    for (let k = offsets[t]; k < offsets[t + 1]; k += 1) sums[t] += Math.abs(weight[edges[k]]);
  }
  return sums;
}

/**
 * Influence of every node on the logits, following the file's links backwards from the logits
 * (a DAG, so this ends after at most depth steps). `isCut[i]` true makes node i a source: its
 * inputs are ignored. Returns {influence, weights, sums} as Float64Arrays over node indices.
 */
export function linkInfluence(model, isCut = new Uint8Array(model.nodes.length)) {
  const n = model.nodes.length;
  const weights = new Float64Array(n);
  for (const node of model.nodes) if (node.kind === "logit") weights[node.index] = node.prob ?? 0;
  const sums = inputSums(model, isCut);
  const { offsets, edges } = model.incoming;
  const { src, weight } = model.edges;
  const influence = new Float64Array(n);
  let current = weights;
  for (let step = 0; step <= n; step += 1) {
    const next = new Float64Array(n);
    let any = false;
    for (let t = 0; t < n; t += 1) {
      if (!current[t] || isCut[t] || sums[t] === 0) continue;
      const scale = current[t] / sums[t];
      for (let k = offsets[t]; k < offsets[t + 1]; k += 1) {
        const e = edges[k];
        next[src[e]] += scale * Math.abs(weight[e]);
        any = true;
      }
    }
    if (!any) return { influence, weights, sums };
    for (let i = 0; i < n; i += 1) influence[i] += next[i];
    current = next;
  }
  throw new Error("the graph's links have a cycle: influence does not settle");
}

function scoresFor(model, unexplained) {
  const { influence, weights, sums } = linkInfluence(model, unexplained);
  const { offsets, edges } = model.incoming;
  const { src, weight } = model.edges;
  let tokens = 0;
  let errors = 0;
  let covered = 0;
  let total = 0;
  for (const node of model.nodes) {
    const i = node.index;
    if (node.kind === "embedding") tokens += influence[i];
    else if (unexplained[i]) errors += influence[i];
    let unexplainedInput = 0;
    if (!unexplained[i] && sums[i] > 0) {
      for (let k = offsets[i]; k < offsets[i + 1]; k += 1) {
        if (unexplained[src[edges[k]]]) unexplainedInput += Math.abs(weight[edges[k]]);
      }
      unexplainedInput /= sums[i];
    }
    const out = influence[i] + weights[i];
    covered += (1 - unexplainedInput) * out;
    total += out;
  }
  return {
    replacement: tokens + errors > 0 ? tokens / (tokens + errors) : null,
    completeness: total > 0 ? covered / total : null,
  };
}

/** Replacement and completeness of the graph in the file (error nodes are the unexplained part). */
export function graphScores(model) {
  return scoresFor(model, Uint8Array.from(model.nodes, (n) => (n.kind === "error" ? 1 : 0)));
}

/**
 * Neuronpedia-style scores of a subgraph: `memberIds` (pinned nodes and supernode members) are
 * kept; every feature outside it counts as unexplained, like an error node. Tokens and logits
 * always belong to it. Null scores when no member is a feature or an error.
 */
export function subgraphScores(model, memberIds) {
  const members = new Set(memberIds);
  const unexplained = Uint8Array.from(model.nodes, (n) =>
    n.kind === "error" || (n.kind === "feature" && !members.has(n.id)) ? 1 : 0);
  return scoresFor(model, unexplained);
}

/** Shares of the total influence held by features, errors and tokens (they sum to 1), or null. */
export function influenceShares(model) {
  const { influence } = linkInfluence(model);
  const sums = { feature: 0, error: 0, embedding: 0 };
  for (const node of model.nodes) if (node.kind in sums) sums[node.kind] += influence[node.index];
  const total = KINDS.reduce((acc, kind) => acc + sums[kind], 0);
  if (!(total > 0)) return null;
  return { features: sums.feature / total, errors: sums.error / total, tokens: sums.embedding / total };
}

/** The engine's scores of the full (unpruned) graph, when the exporter wrote them; else null. */
export function reportedScores(metadata) {
  const section = metadata?.glassbox ?? {};
  const pick = (key) => (typeof section[key] === "number" && Number.isFinite(section[key]) ? section[key] : null);
  const replacement = pick("replacement_score");
  const completeness = pick("completeness_score");
  return replacement === null && completeness === null ? null : { replacement, completeness };
}

/**
 * The model's most likely next tokens as [{token, prob}], most likely first: the list the
 * exporter stored (metadata.glassbox.top_predictions, featured graphs), else the logit nodes,
 * which are the top outputs by probability. At most `k`.
 */
export function topPredictions(model, k = 5) {
  const stored = model.metadata?.glassbox?.top_predictions;
  const valid = (p) => p && typeof p.token === "string" && typeof p.prob === "number" && Number.isFinite(p.prob);
  if (Array.isArray(stored) && stored.some(valid)) {
    return stored.filter(valid).map(({ token, prob }) => ({ token, prob })).slice(0, k);
  }
  return model.nodes
    .filter((n) => n.kind === "logit" && typeof n.prob === "number")
    .sort((a, b) => b.prob - a.prob || a.index - b.index)
    .slice(0, k)
    .map((n) => ({ token: n.token, prob: n.prob }));
}
