// Modal dialogs driven by state.dialog: "help" (shortcuts), "group" (name a supernode) and
// "share" (the link to this view). One host element; focus goes into the dialog on open and back
// to where it was on close.
import { el, replace } from "../lib/dom.js";
import { labelOf } from "./graph-model.js";
import { SHORTCUTS } from "./keyboard.js";

let dialogCount = 0;

/** Tab and Shift+Tab cycle inside the dialog instead of leaving it. */
function trapTab(event) {
  if (event.key !== "Tab") return;
  const focusable = [...event.currentTarget.querySelectorAll("button, input, [tabindex='0']")].filter((n) => !n.disabled);
  if (!focusable.length) return;
  const [first, last] = [focusable[0], focusable[focusable.length - 1]];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

function frame(title, id, onClose, ...body) {
  return el("div", { class: "gbv-backdrop", onClick: (e) => e.target === e.currentTarget && onClose() },
    el("div", { class: "gbv-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": id, onKeydown: trapTab },
      el("div", { class: "gbv-panel-head" },
        el("h2", { id, text: title }),
        el("button", { type: "button", class: "gbv-icon-button gbv-dialog-close", "aria-label": "Close", text: "×", onClick: onClose })),
      ...body));
}

function helpBody() {
  return el("table", { class: "gbv-shortcuts" },
    el("tbody", {}, SHORTCUTS.map(([keys, what]) => el("tr", {}, el("th", { scope: "row" }, el("kbd", { text: keys })), el("td", { text: what })))));
}

export function createDialogs({ store, model, actions, getShareUrl }) {
  dialogCount += 1;
  const id = `gbv-dialog-title-${dialogCount}`;
  const element = el("div", { class: "gbv-dialog-host" });
  let returnFocus = null;
  let copyStatus = "";

  const close = () => (store.get("dialog") === "group" ? actions.cancelGrouping() : store.set({ dialog: null }));

  function groupBody() {
    const ids = store.get("grouping");
    const input = el("input", { type: "text", class: "gbv-group-name", maxLength: 200, "aria-label": "Supernode name", placeholder: "Supernode name" });
    const form = el("form", { class: "gbv-stack" },
      el("p", { text: `Group ${ids.length} node${ids.length === 1 ? "" : "s"} into a supernode:` }),
      el("ul", { class: "gbv-group-members" }, ids.map((nodeId) => el("li", { text: labelOf(model, store.snapshot(), model.idToIndex.get(nodeId)) }))),
      input,
      el("div", { class: "gbv-row" }, el("button", { type: "submit", text: "Create supernode" }), el("button", { type: "button", text: "Cancel", onClick: close })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      actions.createSupernode(input.value);
    });
    return form;
  }

  function shareBody() {
    const input = el("input", { type: "text", readOnly: true, class: "gbv-share-url", value: getShareUrl(), "aria-label": "Link to this view" });
    const status = el("p", { class: "gbv-muted gbv-share-status", role: "status", text: copyStatus });
    const copy = async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        copyStatus = "Link copied to the clipboard.";
      } catch {
        copyStatus = "Select the link and press Ctrl+C (or Cmd+C) to copy it.";
      }
      status.textContent = copyStatus;
    };
    const body = el("div", { class: "gbv-stack" },
      el("p", { text: "This link opens the graph with the same pins, supernodes, labels, thresholds and selection." }),
      input, el("div", { class: "gbv-row" }, el("button", { type: "button", class: "gbv-copy", text: "Copy link", onClick: copy })), status);
    return { body, copy };
  }

  function render(state) {
    if (!state.dialog) {
      if (element.firstChild) {
        replace(element);
        if (returnFocus?.isConnected) returnFocus.focus();
        returnFocus = null;
      }
      return;
    }
    if (!element.firstChild) returnFocus = document.activeElement;
    let body;
    let title;
    if (state.dialog === "help") [title, body] = ["Keyboard shortcuts", helpBody()];
    else if (state.dialog === "group") [title, body] = ["New supernode", groupBody()];
    else {
      copyStatus = "";
      const share = shareBody();
      [title, body] = ["Share this view", share.body];
      queueMicrotask(share.copy);
    }
    replace(element, frame(title, id, close, body));
    (element.querySelector("input:not([readonly])") ?? element.querySelector(".gbv-dialog-close")).focus();
  }

  const off = store.on(["dialog"], render);
  return { element, destroy: off };
}
