// The graph page of `glassbox view` (glassbox/view/pages.py): mounts the viewer on each
// [data-glassbox-view] element (data-graph-url, optional data-features-url) with the read-only
// adapter. Once drawn, the element gets data-viewer-ready and its viewer handle as the
// `glassboxViewer` property (getState, setState, nodeScreenPosition...: for scripts and tests).
import { mountGraphViewer } from "../viewer/index.js";
import { createViewApi } from "./view-api.js";

for (const element of document.querySelectorAll("[data-glassbox-view]")) {
  const { graphUrl, featuresUrl } = element.dataset;
  mountGraphViewer(element, { graphUrl, api: createViewApi({ featuresUrl: featuresUrl || null }) }).then(
    (handle) => {
      element.glassboxViewer = handle;
      element.setAttribute("data-viewer-ready", "");
    },
    () => element.setAttribute("data-viewer-failed", ""),
  );
}
