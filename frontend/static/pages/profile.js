// Profile page: create an API key (shown once, here), revoke keys; the key table is redrawn from
// the server's page after each change.
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
