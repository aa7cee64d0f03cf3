// Keyboard shortcuts for one viewer. Keys typed into a text field are left alone (except Esc),
// and keys aimed at another part of the host page are ignored.

export const SHORTCUTS = [
  ["?", "Show or hide this help"],
  ["/", "Search nodes by label or token"],
  ["Arrow keys", "Move between nodes (graph focused)"],
  ["Enter", "Select the focused node"],
  ["Ctrl/Cmd + click, Ctrl/Cmd + Enter", "Pin or unpin a node"],
  ["p", "Pin or unpin the selected node"],
  ["Hold g + click or Enter", "Group nodes into a named supernode (or use “Group nodes” in the subgraph panel)"],
  ["[ and ]", "Show fewer or more nodes (the pruning threshold)"],
  ["{ and }", "Draw fewer or more edges"],
  ["e", "Hide or show error nodes"],
  ["t", "Switch between dark and light theme"],
  ["s", "Share: copy a link to this exact view"],
  ["+  -  0", "Zoom in, zoom out, reset zoom"],
  ["Esc", "Close a dialog, cancel grouping, clear the selection"],
];

function isTextField(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
    && !(target instanceof HTMLInputElement && ["range", "checkbox", "button", "submit"].includes(target.type));
}

function round2(value) {
  return Math.round(value * 100) / 100;
}

/** Attach the shortcuts; `commands` holds the side effects (share, zoom, focus search). */
export function attachKeyboard({ root, store, actions, commands }) {
  const doc = root.ownerDocument;
  const ours = (event) => root.contains(event.target) || event.target === doc.body || event.target === doc.documentElement;

  function escape(event) {
    const state = store.snapshot();
    if (event.target.matches?.("input[type=search]") && state.search) store.set({ search: "" });
    else if (state.dialog === "group") actions.cancelGrouping();
    else if (state.dialog) store.set({ dialog: null });
    else if (state.grouping.length) actions.cancelGrouping();
    else if (state.subgraphExpanded) store.set({ subgraphExpanded: false });
    else if (state.clickedId) actions.selectNode(null);
    else if (state.search) store.set({ search: "" });
  }

  const handlers = {
    "?": () => store.set({ dialog: store.get("dialog") === "help" ? null : "help" }),
    "/": () => commands.focusSearch(),
    p: () => store.get("clickedId") && actions.togglePin(store.get("clickedId")),
    e: () => store.set({ hideErrors: !store.get("hideErrors") }),
    t: () => store.set({ theme: store.get("theme") === "dark" ? "light" : "dark" }),
    s: () => commands.share(),
    "[": () => store.set({ pruningThreshold: round2(Math.max(0, (store.get("pruningThreshold") ?? 1) - 0.05)) }),
    "]": () => store.set({ pruningThreshold: round2(Math.min(1, (store.get("pruningThreshold") ?? 1) + 0.05)) }),
    "{": () => store.set({ edgeThreshold: round2(Math.max(0, (store.get("edgeThreshold") ?? 1) - 0.05)) }),
    "}": () => store.set({ edgeThreshold: round2(Math.min(1, (store.get("edgeThreshold") ?? 1) + 0.05)) }),
    "+": () => commands.zoomBy(1.5),
    "=": () => commands.zoomBy(1.5),
    "-": () => commands.zoomBy(1 / 1.5),
    0: () => commands.resetZoom(),
  };

  function onKeyDown(event) {
    if (event.defaultPrevented || !ours(event)) return;
    if (event.key === "Escape") {
      escape(event);
      return;
    }
    if (isTextField(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    const dialog = store.get("dialog");
    if (dialog && !(dialog === "help" && event.key === "?")) return;
    if (event.key === "g" || event.key === "G") {
      if (!event.repeat) actions.setGroupingActive(true);
      return;
    }
    const handler = handlers[event.key];
    if (handler) {
      event.preventDefault();
      handler();
    }
  }

  function onKeyUp(event) {
    if (event.key === "g" || event.key === "G") actions.setGroupingActive(false);
  }

  const onBlur = () => actions.setGroupingActive(false);
  doc.addEventListener("keydown", onKeyDown);
  doc.addEventListener("keyup", onKeyUp);
  doc.defaultView?.addEventListener("blur", onBlur);
  return () => {
    doc.removeEventListener("keydown", onKeyDown);
    doc.removeEventListener("keyup", onKeyUp);
    doc.defaultView?.removeEventListener("blur", onBlur);
  };
}
