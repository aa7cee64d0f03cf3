// Mounts a viewer on every element with data-glassbox-viewer, for pages that cannot run inline
// scripts (the server's CSP is script-src 'self'). Attributes:
//   data-graph-url (required), data-model, data-transcoders, data-graph-slug, data-csrf-cookie,
//   data-login-url (set when nobody is signed in: the interventions panel links to it)
import { createHttpApi } from "./http-api.js";
import { mountGraphViewer } from "./index.js";

for (const element of document.querySelectorAll("[data-glassbox-viewer]")) {
  const data = element.dataset;
  const api = createHttpApi({
    model: data.model || null,
    transcoders: data.transcoders || null,
    graphSlug: data.graphSlug || null,
    csrfCookie: data.csrfCookie || undefined,
  });
  mountGraphViewer(element, { graphUrl: data.graphUrl, api, loginUrl: data.loginUrl || null }).then(
    () => element.setAttribute("data-viewer-ready", ""),
    () => element.setAttribute("data-viewer-failed", ""),
  );
}
