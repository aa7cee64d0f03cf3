// The one HTTP client of the pages and the viewer: JSON requests to this site, with the session's
// CSRF token on writes and the server's own sentence as the error message. Nothing here touches
// the DOM at import time, so Node's test runner can import it (tests/js/).

/** The readable cookie the server puts the session's CSRF token in (server/deps.py). */
export const CSRF_COOKIE = "glassbox_csrf";
/** The header writes made with the session cookie must carry that token in. */
export const CSRF_HEADER = "X-CSRF-Token";

/** Value of cookie `name` in a `document.cookie` string, or null. */
export function readCookie(name, cookieText = globalThis.document?.cookie ?? "") {
  for (const part of String(cookieText).split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** An HTTP failure, with the server's sentence (`{"error": {"message"}}`) as its message. */
export class ApiError extends Error {
  constructor(message, { status = 0, details = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = details;
  }
}

/** The ApiError for a response that is not ok: its JSON error body, else its status line. */
export async function errorFrom(response) {
  let message = `${response.status} ${response.statusText ?? ""}`.trim();
  let details = null;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
    details = body?.error?.details ?? null;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) message = `${message} — log in first`;
  return new ApiError(message, { status: response.status, details });
}

/**
 * A request function `(method, url, body?, {signal}?) => Promise<JSON | null>` (null for 204).
 * Bodies go out as JSON; every method but GET carries the CSRF token when the cookie holds one.
 * `fetchImpl` and `cookies` stand in for the browser's in tests.
 */
export function createClient({
  baseUrl = "",
  csrfCookie = CSRF_COOKIE,
  fetchImpl = (input, init) => globalThis.fetch(input, init),
  cookies = () => globalThis.document?.cookie ?? "",
} = {}) {
  return async function request(method, url, body = undefined, { signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") {
      const token = readCookie(csrfCookie, cookies());
      if (token) headers[CSRF_HEADER] = token;
    }
    const response = await fetchImpl(`${baseUrl}${url}`, {
      method, headers, signal, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw await errorFrom(response);
    return response.status === 204 ? null : response.json();
  };
}

/** The client of this page's own site. */
export const api = createClient();
