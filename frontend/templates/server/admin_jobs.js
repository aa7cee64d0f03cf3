// Buttons of the jobs admin page (frontend/templates/server/admin_jobs.html). Retry and Cancel
// call the jobs API; "Run setup" calls POST /api/admin/setup. Writes made with the session cookie
// carry the CSRF token, which the server also sets in the readable cookie glassbox_csrf.
const table = document.getElementById("admin-jobs");
const message = document.getElementById("admin-jobs-message");

function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("glassbox_csrf="));
  return found ? decodeURIComponent(found.slice("glassbox_csrf=".length)) : "";
}

function urlFor(action, jobId) {
  if (action === "setup") return "/api/admin/setup";
  return `/api/jobs/${encodeURIComponent(jobId)}/${action}`;
}

async function act(button) {
  const row = button.closest("tr");
  button.disabled = true;
  const response = await fetch(urlFor(button.dataset.action, row.dataset.job), {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
  });
  if (response.ok) {
    location.reload();
    return;
  }
  const body = await response.json().catch(() => ({}));
  message.textContent = (body.error && body.error.message) || `${response.status} ${response.statusText}`;
  button.disabled = false;
}

table.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) act(button);
});

if (table.dataset.active === "true") setTimeout(() => location.reload(), 10000);
