// The api adapter of `glassbox view` (glassbox/view/server.py): feature dashboards and automatic
// labels from the features store the server was given, and nothing else. Without a features URL
// the adapter is empty and the viewer shows no dashboards. Nothing is written anywhere: labels
// edited in the viewer stay in this view (and its share URL), and with no saveSubgraph or
// runInterventions member the viewer offers neither saved subgraphs nor interventions.
import { createClient } from "../lib/http.js";

/** The adapter for one graph; `featuresUrl` is the page's data-features-url ("/graph/KEY/features"). */
export function createViewApi({ featuresUrl = null, fetchImpl = undefined } = {}) {
  if (!featuresUrl) return {};
  const request = createClient({ fetchImpl, cookies: () => "" });
  const lookup = async (what, nodeIds) =>
    new Map(Object.entries(await request("POST", `${featuresUrl}/${what}`, { node_ids: [...nodeIds] })));
  return {
    fetchFeatures: (nodeIds) => lookup("dashboards", nodeIds),
    fetchLabels: (nodeIds) => lookup("labels", nodeIds),
  };
}
