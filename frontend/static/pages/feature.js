// Feature page: label edits (with the version they were based on, so a concurrent edit is a 409
// and nothing is lost), revert, votes, comments and "Explain with LLM", all through /api; the
// label, explanation and comment sections are then redrawn from the server's page.
import { ApiError, api } from "../lib/http.js";
import { refreshSections, setStatus } from "./common.js";
import { drawHistogram } from "./feature-histogram.js";

const root = document.getElementById("feature");
const apiUrl = root?.dataset.api;
const $ = (id) => document.getElementById(id);
const LABEL_SECTIONS = ["feature-head", "label-current-box", "label-history-box"];

function baseVersion() {
  return Number($("label-form")?.dataset.baseVersion ?? 0);
}

function setBaseVersion(version) {
  const form = $("label-form");
  if (form && typeof version === "number") form.dataset.baseVersion = String(version);
}

/** After a 409: take the server's version, say what happened, keep the user's text. */
function conflict(error) {
  const current = error.details?.label ?? "";
  setBaseVersion(error.details?.label_version);
  const now = current ? `“${current}”` : "another label";
  setStatus($("label-status"), `Someone saved ${now} meanwhile. Your text is kept: save again to replace it.`, { error: true });
}

async function labelWrite(request, done) {
  try {
    const feature = await request();
    setBaseVersion(feature.label_version);
    setStatus($("label-status"), done(feature));
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) conflict(error);
    else setStatus($("label-status"), `Not saved: ${error.message}`, { error: true });
  }
  await refreshSections(LABEL_SECTIONS);
}

function onLabelSubmit(event) {
  event.preventDefault();
  const text = $("label-input").value.trim();
  if (!text) {
    setStatus($("label-status"), "Write a label first.", { error: true });
    return;
  }
  setStatus($("label-status"), "Saving…");
  labelWrite(
    () => api("PUT", `${apiUrl}/label`, { text, base_version: baseVersion() }),
    (f) => `Saved as version ${f.label_version}.`);
}

function revert(version) {
  setStatus($("label-status"), `Reverting to version ${version}…`);
  labelWrite(
    () => api("POST", `${apiUrl}/label/revert`, { version, base_version: baseVersion() }),
    (f) => {
      if ($("label-input")) $("label-input").value = f.label ?? "";
      return `Version ${version} is current again (as version ${f.label_version}).`;
    });
}

async function vote(button) {
  const item = button.closest("[data-label-id]");
  const wanted = Number(button.dataset.vote);
  const value = button.getAttribute("aria-pressed") === "true" ? 0 : wanted;
  try {
    await api("POST", `/api/labels/${item.dataset.labelId}/vote`, { value });
    const focus = `[data-label-id="${item.dataset.labelId}"] [data-vote="${wanted}"]`;
    await refreshSections(["label-history-box"], { focus });
  } catch (error) {
    setStatus($("label-status"), `Vote not counted: ${error.message}`, { error: true });
  }
}

/** Ask the server's LLM explainer (a few calls to it: seconds to a minute), then redraw. */
async function explainWithLlm(button) {
  button.disabled = true;
  setStatus($("explain-status"), "Asking the LLM for an explanation and scoring it…");
  try {
    const explanation = await api("POST", `${apiUrl}/explain`);
    const score = explanation.score === null ? "no score" : `score ${explanation.score.toFixed(2)}`;
    setStatus($("explain-status"), `Explained (${score}).`);
  } catch (error) {
    setStatus($("explain-status"), `No explanation: ${error.message}`, { error: true });
  }
  await refreshSections([...LABEL_SECTIONS, "explanation-box"]);
  const again = $("explain-button");
  if (again) again.disabled = false;
}

async function onCommentSubmit(event) {
  event.preventDefault();
  const input = $("comment-input");
  const text = input.value.trim();
  if (!text) {
    setStatus($("comment-status"), "Write a comment first.", { error: true });
    return;
  }
  try {
    await api("POST", `${apiUrl}/comments`, { text });
    input.value = "";
    setStatus($("comment-status"), "Posted.");
    await refreshSections(["comment-list-box"]);
  } catch (error) {
    setStatus($("comment-status"), `Not posted: ${error.message}`, { error: true });
  }
}

async function deleteComment(id) {
  try {
    await api("DELETE", `/api/comments/${id}`);
    setStatus($("comment-status"), "Comment deleted.");
    await refreshSections(["comment-list-box"]);
  } catch (error) {
    setStatus($("comment-status"), `Not deleted: ${error.message}`, { error: true });
  }
}

if (root) {
  const chart = $("histogram-chart");
  if (chart && drawHistogram(chart)) $("histogram-bars")?.classList.add("gb-sr-only");
  $("label-form")?.addEventListener("submit", onLabelSubmit);
  $("comment-form")?.addEventListener("submit", onCommentSubmit);
  // Delegated: the lists are redrawn, the sections holding them are not.
  $("labels").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.id === "explain-button") explainWithLlm(button);
    else if (button.dataset.vote) vote(button);
    else if (button.dataset.revert) revert(Number(button.dataset.revert));
  });
  $("comments").addEventListener("click", (event) => {
    const button = event.target.closest("[data-delete-comment]");
    if (button) deleteComment(button.dataset.deleteComment);
  });
}
