// Shared by the page modules: calls to /api with the session's CSRF token, redrawing parts of a
// page from the server, and the header's theme and log-out buttons (wired on import, so a page
// without a module of its own loads just this one).
//
// User text never becomes markup here: modules set textContent, and redrawn sections come from
// the server's own templates (Jinja autoescapes), parsed by DOMParser, where no script runs.

const CSRF_COOKIE = "glassbox_csrf";
const THEME_KEY = "glassbox-theme";

export function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** An API failure, with the server's sentence (`{"error": {"message"}}`) as its message. */
export class ApiError extends Error {
  constructor(message, status, details = null) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let details = null;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
    details = body?.error?.details ?? null;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) message = `${message} — log in first`;
  return new ApiError(message, response.status, details);
}

/** JSON request to this site; writes carry the CSRF token of the cookie session. */
export async function api(method, url, body = undefined, { signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const token = readCookie(CSRF_COOKIE);
    if (token) headers["X-CSRF-Token"] = token;
  }
  const response = await fetch(url, {
    method, headers, signal, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

/** `value` if it is a path on this site (no scheme, no `//host`), else `fallback`. */
export function safeNext(value, fallback = "/") {
  if (typeof value !== "string" || !value.startsWith("/")) return fallback;
  if (value.startsWith("//") || value.startsWith("/\\")) return fallback;
  return value;
}

export function nextParam() {
  return new URLSearchParams(location.search).get("next");
}

/**
 * Fetch this page again and swap the elements with these ids for their new versions, so what
 * the server renders stays the one source of the markup. `focus` (a selector) is focused after.
 * Resolves to false (and changes nothing) when the page cannot be fetched; never rejects.
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
  }
  if (focus) document.querySelector(focus)?.focus();
  return true;
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

/** Build an element; strings become text nodes, never markup. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "style") for (const [name, v] of Object.entries(value)) node.style.setProperty(name, String(v));
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
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
