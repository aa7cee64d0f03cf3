// Turns graph JSON (shared/formats/graph-schema.json) into the arrays the viewer draws from.
// Nodes keep their JSON order; edges go into typed arrays with CSR indexes (by target and by
// source) so hover and the details panel find a node's connections without scanning 50k links.

const TYPE_RANK = { logit: 0, feature: 1, error: 2, embedding: 3 };

/** The four node kinds the viewer draws differently. */
export function nodeKind(featureType) {
  const type = String(featureType ?? "").toLowerCase();
  if (type === "embedding") return "embedding";
  if (type === "logit") return "logit";
  if (type.includes("error")) return "error";
  return "feature";
}

/** Split a Cantor-paired feature id into (layer, index), as circuit-tracer encodes features. */
export function cantorUnpair(value) {
  const w = Math.floor((Math.sqrt(8 * value + 1) - 1) / 2);
  const t = (w * w + w) / 2;
  const index = value - t;
  return { layer: w - index, index };
}

/** Token and probability of a logit node, from token_prob and its `Output "tok" (p=0.123)` clerp. */
function parseLogit(raw) {
  const clerp = String(raw.clerp ?? "");
  const first = clerp.indexOf('"');
  const last = clerp.lastIndexOf('"');
  const token = first >= 0 && last > first ? clerp.slice(first + 1, last) : clerp;
  let prob = typeof raw.token_prob === "number" ? raw.token_prob : null;
  if (prob === null) {
    const match = /\(p=([0-9.eE+-]+)\)/.exec(clerp);
    prob = match ? Number(match[1]) : null;
  }
  return { token, prob };
}

const FEATURE_ID = /^[^_]+_(\d+)_\d+$/;

function featureIndexOf(raw, kind) {
  if (kind !== "feature") return null;
  const match = FEATURE_ID.exec(raw.node_id);
  if (match) return Number(match[1]);
  if (Number.isInteger(raw.feature)) return cantorUnpair(raw.feature).index;
  return null;
}

function buildNode(raw, index, promptTokens) {
  const kind = nodeKind(raw.feature_type);
  const layerNum = Number.parseInt(raw.layer, 10);
  const ctx = Number.isInteger(raw.ctx_idx) ? raw.ctx_idx : 0;
  const logit = kind === "logit" ? parseLogit(raw) : null;
  const promptToken = promptTokens[ctx] ?? "";
  return {
    index,
    id: String(raw.node_id),
    kind,
    layer: Number.isFinite(layerNum) ? layerNum : null,
    ctx,
    feature: raw.feature ?? null,
    featureIndex: featureIndexOf(raw, kind),
    clerp: typeof raw.clerp === "string" ? raw.clerp : "",
    activation: typeof raw.activation === "number" ? raw.activation : null,
    influence: typeof raw.influence === "number" ? raw.influence : null,
    density: typeof raw.frac_nonzero === "number" ? raw.frac_nonzero : null,
    token: logit ? logit.token : promptToken,
    prob: logit ? logit.prob : null,
    featureKey: `${raw.layer}_${raw.feature}_${ctx}`,
    row: 0, // set by assignRows
  };
}

/** Rows bottom to top: embeddings, each layer that has features or errors, then logits. */
function assignRows(nodes) {
  const layers = [...new Set(nodes.filter((n) => n.kind === "feature" || n.kind === "error")
    .map((n) => n.layer ?? 0))].sort((a, b) => a - b);
  const minLayer = layers.length ? layers[0] : 0;
  const maxLayer = layers.length ? layers[layers.length - 1] : 0;
  const topRow = maxLayer - minLayer + 2;
  for (const node of nodes) {
    if (node.kind === "embedding") node.row = 0;
    else if (node.kind === "logit") node.row = topRow;
    else node.row = (node.layer ?? 0) - minLayer + 1;
  }
  const rowLabels = ["Emb"];
  for (let layer = minLayer; layer <= maxLayer; layer += 1) rowLabels.push(`L${layer}`);
  rowLabels.push("Lgt");
  return rowLabels;
}

/** Default text for a node before any label override (what Neuronpedia shows too). */
function defaultLabel(node) {
  if (node.kind === "embedding") return `Emb: "${node.token}"`;
  if (node.kind === "error") return `Err: mlp "${node.token}"`;
  if (node.kind === "logit") return node.clerp || `Output "${node.token}"`;
  return node.clerp || `F#${node.featureIndex ?? node.feature}`;
}

/** Error nodes get Neuronpedia's suffixed feature key so clerps in share URLs line up. */
function fixErrorKeys(nodes, nPos) {
  for (const node of nodes) {
    if (node.kind === "error") node.featureKey += `_mlp__err_idx_${nPos - node.ctx}`;
  }
}

function buildEdges(links, idToIndex) {
  const src = new Int32Array(links.length);
  const tgt = new Int32Array(links.length);
  const weight = new Float32Array(links.length);
  let count = 0;
  let skipped = 0;
  const key = (value) => (typeof value === "string" ? value : String(value));
  for (const link of links) {
    const s = idToIndex.get(key(link.source));
    const t = idToIndex.get(key(link.target));
    if (s === undefined || t === undefined || !Number.isFinite(link.weight)) {
      skipped += 1;
      continue;
    }
    src[count] = s;
    tgt[count] = t;
    weight[count] = link.weight;
    count += 1;
  }
  return { count, skipped, src: src.subarray(0, count), tgt: tgt.subarray(0, count), weight: weight.subarray(0, count) };
}

/**
 * Compressed index: offsets[n]..offsets[n+1] in `edges` are the edge ids whose `keys` equal n,
 * strongest |weight| first (ties: the other end's index), so edge filters and the details panel
 * read a node's connections in order without sorting again.
 */
function csr(keys, others, weight, nNodes) {
  const offsets = new Int32Array(nNodes + 1);
  for (let e = 0; e < keys.length; e += 1) offsets[keys[e] + 1] += 1;
  for (let n = 0; n < nNodes; n += 1) offsets[n + 1] += offsets[n];
  const cursor = offsets.slice(0, nNodes);
  const edges = new Int32Array(keys.length);
  for (let e = 0; e < keys.length; e += 1) edges[cursor[keys[e]]++] = e;
  const byStrength = (a, b) => Math.abs(weight[b]) - Math.abs(weight[a]) || others[a] - others[b];
  for (let n = 0; n < nNodes; n += 1) edges.subarray(offsets[n], offsets[n + 1]).sort(byStrength);
  return { offsets, edges };
}

/** Robust scale for edge widths: the 99th percentile of |weight| (a few huge edges are common). */
function weightScale(weight) {
  if (!weight.length) return 1;
  const step = Math.max(1, Math.floor(weight.length / 5000));
  const sample = [];
  for (let e = 0; e < weight.length; e += step) sample.push(Math.abs(weight[e]));
  sample.sort((a, b) => a - b);
  return sample[Math.min(sample.length - 1, Math.floor(sample.length * 0.99))] || 1;
}

const WEIGHT_BINS = [0.1, 0.3, 0.6];

/** Per edge: magnitude bin (0-3, of |w| / scale) in the low bits, 4 when negative. */
function edgeCodes(weight, scale) {
  const codes = new Uint8Array(weight.length);
  for (let e = 0; e < weight.length; e += 1) {
    const m = Math.abs(weight[e]) / scale;
    const bin = m < WEIGHT_BINS[0] ? 0 : m < WEIGHT_BINS[1] ? 1 : m < WEIGHT_BINS[2] ? 2 : 3;
    codes[e] = bin | (weight[e] < 0 ? 4 : 0);
  }
  return codes;
}

/** Node order inside a (row, position) cell: logits by probability, others most influential first. */
function cellOrder(nodes) {
  const key = (n) => (n.kind === "logit" ? -(n.prob ?? 0) : (n.influence ?? Infinity));
  return nodes.map((n) => n.index).sort((a, b) => {
    const na = nodes[a];
    const nb = nodes[b];
    return na.row - nb.row || na.ctx - nb.ctx || TYPE_RANK[na.kind] - TYPE_RANK[nb.kind]
      || key(na) - key(nb) || (na.id < nb.id ? -1 : na.id > nb.id ? 1 : 0);
  });
}

/** Check the parts the viewer relies on; throws with a message a user can act on. */
export function checkGraph(graph) {
  if (!graph || typeof graph !== "object") throw new Error("graph JSON is not an object");
  if (!Array.isArray(graph.nodes)) throw new Error("graph JSON has no `nodes` array");
  if (!Array.isArray(graph.links)) throw new Error("graph JSON has no `links` array");
  for (const node of graph.nodes) {
    if (!node || typeof node.node_id !== "string") throw new Error("a node has no string `node_id`");
  }
}

export function buildModel(graph) {
  checkGraph(graph);
  const metadata = graph.metadata ?? {};
  const promptTokens = Array.isArray(metadata.prompt_tokens) ? metadata.prompt_tokens.map(String) : [];
  const nodes = graph.nodes.map((raw, i) => buildNode(raw, i, promptTokens));
  const nPos = nodes.reduce((most, n) => Math.max(most, n.ctx + 1), Math.max(promptTokens.length, 1));
  fixErrorKeys(nodes, nPos);
  const rowLabels = assignRows(nodes);
  for (const node of nodes) node.defaultLabel = defaultLabel(node);
  const idToIndex = new Map(nodes.map((n) => [n.id, n.index]));
  const keyToIndex = new Map(nodes.map((n) => [n.featureKey, n.index]));
  const edges = buildEdges(graph.links, idToIndex);
  const scale = weightScale(edges.weight);
  edges.code = edgeCodes(edges.weight, scale);
  return {
    graph,
    metadata,
    promptTokens,
    nPos,
    nodes,
    rowLabels,
    nRows: rowLabels.length,
    idToIndex,
    keyToIndex,
    edges,
    incoming: csr(edges.tgt, edges.src, edges.weight, nodes.length),
    outgoing: csr(edges.src, edges.tgt, edges.weight, nodes.length),
    weightScale: scale,
    order: cellOrder(nodes),
  };
}

/** The label shown for a node: a local override (clerps), else a server label, else the JSON clerp. */
export function labelOf(model, state, index) {
  const node = model.nodes[index];
  return state.clerps.get(node.id) ?? state.serverLabels.get(node.id) ?? node.defaultLabel;
}

/** Edges into (`incoming`) or out of (`outgoing`) a node as [{edge, other, weight}], by |weight|. */
export function connections(model, index, direction) {
  const { offsets, edges } = model[direction];
  const ends = direction === "incoming" ? model.edges.src : model.edges.tgt;
  const list = [];
  for (let k = offsets[index]; k < offsets[index + 1]; k += 1) {
    const e = edges[k];
    list.push({ edge: e, other: ends[e], weight: model.edges.weight[e] });
  }
  return list;
}
