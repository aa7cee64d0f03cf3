// Register page: creates the account through /api/auth/register, logs in at once, then goes to
// ?next= (a path on this site only) or the profile.
import { api } from "../lib/http.js";
import { nextParam, safeNext, setStatus } from "./common.js";

const form = document.getElementById("register-form");
const status = document.getElementById("form-status");

function problem() {
  const { username, password, password2 } = form;
  if (!/^[A-Za-z0-9_.-]{3,40}$/.test(username.value.trim())) {
    return [username, "A username has 3 to 40 letters, digits, “.”, “_” or “-”."];
  }
  if (password.value.length < 8) return [password, "The password needs at least 8 characters."];
  if (password.value !== password2.value) return [password2, "The two passwords differ."];
  return null;
}

async function register(event) {
  event.preventDefault();
  const bad = problem();
  if (bad) {
    setStatus(status, bad[1], { error: true });
    bad[0].focus();
    return;
  }
  const body = { username: form.username.value.trim(), password: form.password.value };
  setStatus(status, "Creating the account…");
  try {
    await api("POST", "/api/auth/register", body);
    await api("POST", "/api/auth/login", body);
    location.assign(safeNext(nextParam(), "/profile"));
  } catch (error) {
    setStatus(status, error.message, { error: true });
  }
}

const next = nextParam();
if (next) document.getElementById("login-link").href = `/login?next=${encodeURIComponent(safeNext(next))}`;
form?.addEventListener("submit", register);
