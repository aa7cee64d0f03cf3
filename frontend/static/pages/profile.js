// Profile page: create an API key (shown once, here), revoke keys; rename and delete your graphs
// (delete after an in-page confirmation); the key and graph tables are redrawn from the server's
// page after each change.
import { el } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { refreshSections, setStatus } from "./common.js";

const $ = (id) => document.getElementById(id);

async function createKey(event) {
  event.preventDefault();
  const name = $("key-name").value.trim();
  if (!name) {
    setStatus($("key-status"), "Name the key first (say, where it will be used).", { error: true });
    $("key-name").focus();
    return;
  }
  try {
    const created = await api("POST", "/api/auth/keys", { name });
    $("key-name").value = "";
    $("new-key-name").textContent = `“${created.name}”`;
    $("new-key-value").textContent = created.key;
    setStatus($("copy-status"), "");
    $("new-key").hidden = false;
    setStatus($("key-status"), "Key created.");
    await refreshSections(["keys"]);
    $("new-key").focus();
  } catch (error) {
    setStatus($("key-status"), `No key made: ${error.message}`, { error: true });
  }
}

async function copyKey() {
  try {
    await navigator.clipboard.writeText($("new-key-value").textContent);
    setStatus($("copy-status"), "Copied.");
  } catch {
    getSelection()?.selectAllChildren($("new-key-value"));
    setStatus($("copy-status"), "Press Ctrl+C (or Cmd+C) to copy the selected key.");
  }
}

async function revoke(button) {
  const id = button.dataset.revoke;
  button.disabled = true;
  try {
    await api("DELETE", `/api/auth/keys/${id}`);
    setStatus($("key-status"), "Key revoked: it no longer works.");
    await refreshSections(["keys"]);
    $("key-name").focus();
  } catch (error) {
    button.disabled = false;
    setStatus($("key-status"), `Not revoked: ${error.message}`, { error: true });
  }
}

$("key-form")?.addEventListener("submit", createKey);
$("copy-key")?.addEventListener("click", copyKey);
$("api-keys")?.addEventListener("click", (event) => {
  const button = event.target.closest("[data-revoke]");
  if (button) revoke(button);
});

// ---- your graphs --------------------------------------------------------------------------

const graphUrl = (slug) => `/api/graphs/${encodeURIComponent(slug)}`;

/** Put the row's action buttons back (after Cancel), the focus on the one that was pressed. */
function restoreActions(cell, buttons, pressed) {
  cell.replaceChildren(...buttons);
  pressed.focus();
}

function startRename(button) {
  const row = button.closest("tr");
  const cell = button.closest("td");
  const buttons = [...cell.children];
  const name = row.querySelector("a").textContent;
  const input = el("input", { type: "text", maxlength: 200, value: row.dataset.title, "aria-label": `New title of ${name}`, placeholder: "Title (empty: the prompt)" });
  const save = el("button", { type: "submit" }, "Save");
  const cancel = el("button", { type: "button", onClick: () => restoreActions(cell, buttons, button) }, "Cancel");
  const formEl = el("form", { class: "gb-row" }, input, save, cancel);
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const graph = await api("PATCH", graphUrl(button.dataset.rename), { title: input.value });
      setStatus($("graph-status"), graph.title ? `Renamed to “${graph.title}”.` : "Title removed: the prompt is shown.");
      await refreshSections(["my-graphs"]);
      document.querySelector(`[data-rename="${CSS.escape(graph.slug)}"]`)?.focus();
    } catch (error) {
      save.disabled = false;
      setStatus($("graph-status"), `Not renamed: ${error.message}`, { error: true });
    }
  });
  cell.replaceChildren(formEl);
  input.focus();
}

function startDelete(button) {
  const cell = button.closest("td");
  const buttons = [...cell.children];
  const name = button.closest("tr").querySelector("a").textContent;
  const confirmButton = el("button", { type: "button", class: "gb-danger", "aria-label": `Delete ${name} for good` }, "Delete for good");
  const cancel = el("button", { type: "button", onClick: () => restoreActions(cell, buttons, button) }, "Cancel");
  confirmButton.addEventListener("click", async () => {
    confirmButton.disabled = true;
    try {
      await api("DELETE", graphUrl(button.dataset.delete));
      setStatus($("graph-status"), `Deleted “${name}”, with its saved views and comments.`);
      await refreshSections(["my-graphs"]);
      $("graphs-title").focus();
    } catch (error) {
      confirmButton.disabled = false;
      setStatus($("graph-status"), `Not deleted: ${error.message}`, { error: true });
    }
  });
  cell.replaceChildren(el("span", { class: "gb-hint" }, "Delete, with its saved views and comments? "), confirmButton, " ", cancel);
  cancel.focus();
}

document.querySelector("section[aria-labelledby=graphs-title]")?.addEventListener("click", (event) => {
  const rename = event.target.closest("[data-rename]");
  if (rename) startRename(rename);
  const remove = event.target.closest("[data-delete]");
  if (remove) startDelete(remove);
});
