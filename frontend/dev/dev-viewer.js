// Dev and test page: mounts the viewer on ?graph=URL (default: the small test fixture) with the
// fake API. ?features=URL loads feature dashboards keyed by node id; ?labels=URL loads labels
// "saved by other users"; ?failSave=1 makes label saves fail; ?theme=dark|light; ?loggedOut=1
// shows the interventions panel as someone not signed in sees it; ?delay=MS holds feature
// fetches back that long.
// Only this harness page puts anything on window (glassboxDev), so browser tests can read state;
// the viewer itself defines no globals.
import { mountGraphViewer } from "../static/viewer/index.js";
import { createFakeApi } from "./fake-api.js";

const params = new URLSearchParams(location.search);

async function loadJson(url) {
  if (!url) return {};
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${response.status} for ${url}`);
  return response.json();
}

const api = createFakeApi({
  features: await loadJson(params.get("features")),
  labels: await loadJson(params.get("labels")),
  failSave: params.has("failSave"),
  delayMs: Number(params.get("delay")) || 0,
});
const handle = await mountGraphViewer(document.getElementById("viewer"), {
  graphUrl: params.get("graph") ?? "../../tests/frontend/fixtures/small_graph.json",
  api,
  initialState: params.has("theme") ? { theme: params.get("theme") } : {},
  loginUrl: params.has("loggedOut") ? "/login" : null,
});
window.glassboxDev = { handle, api };
document.documentElement.dataset.viewerReady = "1";
