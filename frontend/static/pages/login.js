// Log in page: starts a cookie session through /api/auth/login, then goes to ?next= (a path on
// this site only) or home.
import { api } from "../lib/http.js";
import { nextParam, safeNext, setStatus } from "./common.js";

const form = document.getElementById("login-form");
const status = document.getElementById("form-status");

async function login(event) {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    setStatus(status, "Enter your username and password.", { error: true });
    (username ? form.password : form.username).focus();
    return;
  }
  setStatus(status, "Logging in…");
  try {
    await api("POST", "/api/auth/login", { username, password });
    location.assign(safeNext(nextParam(), "/"));
  } catch (error) {
    setStatus(status, error.status === 401 ? "Wrong username or password." : error.message, { error: true });
    form.password.select();
  }
}

const next = nextParam();
if (next) document.getElementById("register-link").href = `/register?next=${encodeURIComponent(safeNext(next))}`;
form.addEventListener("submit", login);
