// Which nodes are shown, with Neuronpedia's rules: embeddings, logits, pinned nodes, supernode
// members and the clicked node always stay; other nodes hide when their influence is above the
// pruning threshold, their density above the density threshold, or when error nodes are hidden.

/** Ids that must stay visible whatever the thresholds say. */
export function keptIds(state) {
  const ids = new Set(state.pinnedIds);
  for (const [, ...members] of state.supernodes) members.forEach((id) => ids.add(id));
  if (state.clickedId) ids.add(state.clickedId);
  return ids;
}

function densityOf(node, state) {
  return state.densities.get(node.id) ?? node.density;
}

export function computeVisible(model, state) {
  const visible = new Uint8Array(model.nodes.length);
  const kept = keptIds(state);
  const { pruningThreshold, densityThreshold, hideErrors } = state;
  for (const node of model.nodes) {
    let show = true;
    if (node.kind === "embedding" || node.kind === "logit" || kept.has(node.id)) show = true;
    else if (hideErrors && node.kind === "error") show = false;
    else if (pruningThreshold !== null && node.influence !== null && node.influence > pruningThreshold) show = false;
    else if (densityThreshold !== null) {
      const density = densityOf(node, state);
      show = density === null || density === undefined || density <= densityThreshold;
    }
    visible[node.index] = show ? 1 : 0;
  }
  return visible;
}

/** True when two visibility masks differ (the layout only changes then). */
export function masksDiffer(a, b) {
  if (!a || !b || a.length !== b.length) return true;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return true;
  return false;
}
