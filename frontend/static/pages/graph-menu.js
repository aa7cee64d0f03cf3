// The graph page's "Graph" menu (templates/graph.html): compare with another graph of the same
// model and transcoder set (the compare page), and for the graph's owner and administrators
// rename (PATCH /api/graphs/{slug} {title}) and delete (DELETE, after an in-page confirmation).
import { el, replace } from "../lib/dom.js";
import { api } from "../lib/http.js";

const CANDIDATES = 100; // graphs asked for; those of another transcoder set are left out

const menu = document.getElementById("graph-menu");
const body = document.getElementById("graph-menu-body");
const status = document.getElementById("graph-menu-status");

function say(text, { error = false } = {}) {
  status.textContent = text;
  status.classList.toggle("gb-error", error);
}

const slugUrl = () => `/api/graphs/${encodeURIComponent(menu.dataset.slug)}`;

/** Other graphs (public, or yours) of this graph's model and transcoder set, newest first. */
async function showCompareChoices() {
  const { slug, model, transcoders } = menu.dataset;
  replace(body, el("p", { class: "gb-hint" }, "Looking for graphs of the same model and transcoder set…"));
  say("");
  try {
    const query = new URLSearchParams({ model, limit: String(CANDIDATES) });
    const page = await api("GET", `/api/graphs?${query}`);
    const others = page.items.filter((g) => g.slug !== slug && (g.model ?? g.scan) === model
      && (g.transcoders ?? "") === transcoders);
    if (!others.length) {
      replace(body, el("p", { class: "gb-hint" }, `No other graph of ${model}${transcoders ? ` · ${transcoders}` : ""} to compare with yet.`));
      return;
    }
    const link = (g) => el("a", { href: `/compare?${new URLSearchParams({ a: slug, b: g.slug })}` }, g.title || g.prompt);
    replace(body,
      el("p", { class: "gb-hint", id: "compare-choices-title" }, `Compare with a graph of ${model}${transcoders ? ` · ${transcoders}` : ""}:`),
      el("ul", { "aria-labelledby": "compare-choices-title", id: "compare-choices" }, others.map((g) => el("li", {},
        link(g), " ", el("span", { class: "gb-muted" }, [g.owner, g.created_at.slice(0, 10)].filter(Boolean).join(" · "))))));
  } catch (error) {
    replace(body);
    say(`Could not list graphs: ${error.message}`, { error: true });
  }
}

function showRename() {
  const input = el("input", { type: "text", id: "graph-title-input", maxlength: 200, value: menu.dataset.title, placeholder: "A name for this graph" });
  const formEl = el("form", { class: "gb-menu-form" },
    el("label", { for: "graph-title-input" }, "Title"), input,
    el("span", { class: "gb-hint" }, "Shown instead of the prompt in lists; leave empty to show the prompt."),
    el("div", { class: "gb-menu-actions" },
      el("button", { type: "submit", class: "gb-primary" }, "Save title"),
      el("button", { type: "button", onClick: () => replace(body) }, "Cancel")));
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const graph = await api("PATCH", slugUrl(), { title: input.value });
      menu.dataset.title = graph.title ?? "";
      const name = document.getElementById("graph-name");
      name.textContent = graph.title ?? "";
      name.hidden = !graph.title;
      document.title = `${graph.title || graph.prompt} · Glassbox`;
      replace(body);
      say(graph.title ? `Renamed to “${graph.title}”.` : "Title removed.");
    } catch (error) {
      say(`Not renamed: ${error.message}`, { error: true });
    }
  });
  replace(body, formEl);
  say("");
  input.focus();
}

function showDelete() {
  const confirmButton = el("button", { type: "button", class: "gb-danger" }, "Delete graph");
  const cancel = el("button", { type: "button", onClick: () => replace(body) }, "Cancel");
  confirmButton.addEventListener("click", async () => {
    confirmButton.disabled = true;
    try {
      await api("DELETE", slugUrl());
      say("Deleted.");
      location.assign("/profile");
    } catch (error) {
      confirmButton.disabled = false;
      say(`Not deleted: ${error.message}`, { error: true });
    }
  });
  replace(body, el("div", { class: "gb-menu-form", role: "group", "aria-label": "Confirm deletion" },
    el("p", {}, "Delete this graph for good, with its saved views and comments? This cannot be undone."),
    el("div", { class: "gb-menu-actions" }, confirmButton, cancel)));
  say("");
  cancel.focus();
}

const ACTIONS = { compare: showCompareChoices, rename: showRename, delete: showDelete };

menu?.addEventListener("click", (event) => {
  const button = event.target.closest("[data-menu]");
  if (button) ACTIONS[button.dataset.menu]?.();
});
menu?.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && menu.open) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});
