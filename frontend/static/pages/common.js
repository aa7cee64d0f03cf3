// Shared by the page modules: redrawing parts of a page from the server, status lines, safe
// `?next=` targets, and the header's theme and log-out buttons (wired on import, so a page
// without a module of its own loads just this one). HTTP calls go through lib/http.js and
// elements are built with lib/dom.js, the modules the viewer uses too.
//
// User text never becomes markup here: modules set textContent, and redrawn sections come from
// the server's own templates (Jinja autoescapes), parsed by DOMParser, where no script runs.
import { api } from "../lib/http.js";

const THEME_KEY = "glassbox-theme";

/**
 * `value` if it is a path on this site, else `fallback`. The URL parser decides, as the browser
 * will when it navigates (it drops tabs and newlines and reads `\` as `/`, so `/\t/evil.example`
 * is another site); the server already sends pages with any other `?next=` to the plain form.
 */
export function safeNext(value, fallback = "/") {
  if (typeof value !== "string" || !value.startsWith("/") || /[\x00-\x1f\x7f\\]/.test(value)) return fallback;
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return fallback;
  }
  return url.origin === location.origin ? url.pathname + url.search + url.hash : fallback;
}

export function nextParam() {
  return new URLSearchParams(location.search).get("next");
}

/**
 * Fetch this page again and put in its new versions of the sections with these ids, so what the
 * server renders stays the one source of the markup: replaced when the page has them, added next
 * to a neighbour the page has when it does not yet, removed when the new page has none. `focus`
 * (a selector) is focused after. Resolves to false (and changes nothing) when the page cannot be
 * fetched; never rejects.
 */
export async function refreshSections(ids, { focus = null } = {}) {
  let response;
  try {
    response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  } catch {
    return false; // offline: the page keeps what it shows; the write itself went through
  }
  if (!response.ok) return false;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const next = fresh.getElementById(id);
    const current = document.getElementById(id);
    if (next && current) current.replaceWith(document.adoptNode(next));
    else if (next) placeNew(next);
    else if (current) current.remove();
  }
  if (focus) document.querySelector(focus)?.focus();
  return true;
}

function placeNew(next) {
  for (let sibling = next.nextElementSibling; sibling; sibling = sibling.nextElementSibling) {
    const here = sibling.id && document.getElementById(sibling.id);
    if (here) return here.before(document.adoptNode(next));
  }
  for (let sibling = next.previousElementSibling; sibling; sibling = sibling.previousElementSibling) {
    const here = sibling.id && document.getElementById(sibling.id);
    if (here) return here.after(document.adoptNode(next));
  }
  return undefined; // no neighbour on this page: leave it out
}

export function setStatus(element, text, { error = false } = {}) {
  if (!element) return;
  element.textContent = text;
  element.classList.toggle("gb-error", error);
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---- theme: the system's unless the button chose one (kept in localStorage) ------------------

function storedTheme() {
  try {
    return localStorage.getItem(THEME_KEY);
  } catch {
    return null; // storage blocked
  }
}

function systemTheme() {
  return globalThis.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function currentTheme() {
  return document.documentElement.dataset.theme || systemTheme();
}

function showTheme(button) {
  const other = currentTheme() === "dark" ? "light" : "dark";
  button.textContent = other === "dark" ? "Dark theme" : "Light theme";
  button.setAttribute("aria-label", `Switch to the ${other} theme`);
}

function wireTheme() {
  const stored = storedTheme();
  if (stored === "dark" || stored === "light") document.documentElement.dataset.theme = stored;
  for (const button of document.querySelectorAll("[data-action=theme]")) {
    showTheme(button);
    button.addEventListener("click", () => {
      const next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      try {
        localStorage.setItem(THEME_KEY, next);
      } catch {
        // storage blocked: the choice lasts for this page only
      }
      document.querySelectorAll("[data-action=theme]").forEach(showTheme);
    });
  }
}

function wireLogout() {
  for (const button of document.querySelectorAll("[data-action=logout]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("POST", "/api/auth/logout");
      } catch {
        // the session is gone already: going home shows the signed-out header
      }
      location.assign("/");
    });
  }
}

wireTheme();
wireLogout();
