"""Accounts in the browser: register, log out, log in (back to where you were going), and API
keys made on the profile page that then work, and stop working, against the API."""

from __future__ import annotations

import re

import httpx
import pytest
from gbx_browser_app import PASSWORD
from gbx_browser_pages import PHONE, screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_register_log_out_and_log_in(app, open_page):
    page = open_page("/register")
    page.get_by_label("Username").fill("Lin.Wei")
    page.locator("#password").fill(PASSWORD)
    page.get_by_label("Password again").fill("not the same password")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#form-status")).to_have_text("The two passwords differ.")
    expect(page.get_by_label("Password again")).to_be_focused()

    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_label("Password again").press("Enter")
    page.wait_for_url("**/profile")
    expect(page.locator("h1")).to_have_text("lin.wei")  # usernames are case-insensitive
    expect(page.locator(".gb-header .gb-username")).to_have_text("lin.wei")

    page.locator(".gb-header [data-action=logout]").click()
    page.wait_for_url(f"{app.base}/")
    expect(page.locator(".gb-header")).to_contain_text("Log in")

    page.goto("/profile")  # signed out: sent to log in, then back
    page.wait_for_url("**/login?next=%2Fprofile")
    page.get_by_label("Username").fill("lin.wei")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#form-status")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/profile")
    expect(page.locator("h1")).to_have_text("lin.wei")


def test_login_ignores_a_next_that_leaves_the_site(app, users, open_page):
    page = open_page("/login?next=//evil.example/x")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{app.base}/")


def test_api_key_made_on_the_profile_works_until_revoked(app, users, open_page):
    page = open_page("/profile", user="grace")
    page.get_by_label("Name of a new key").fill("notebook <script>")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key-value")
    expect(shown).to_have_text(re.compile(r"^gbx_\S{20,}$"))
    expect(page.locator("#new-key")).to_be_focused()
    key = shown.text_content()
    row = page.locator("#keys tr", has_text="notebook <script>")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(key[:12])
    screenshot(page, "profile-new-key")

    me = httpx.get(f"{app.base}/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["username"] == "grace"
    comment = httpx.post(  # a write with the key: no cookie, so no CSRF token needed
        f"{app.base}/api/features/tiny/tc/1/31/comments",
        json={"text": "written with an API key"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert comment.status_code == 201, comment.text

    page.reload()  # the key is never shown again
    expect(page.locator("#new-key")).to_be_hidden()
    assert key not in page.content()

    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#key-status")).to_have_text("Key revoked: it no longer works.")
    expect(page.locator("#keys tr", has_text="notebook <script>")).to_contain_text("revoked")
    refused = httpx.get(f"{app.base}/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401


def test_profile_at_phone_width(users, open_page):
    page = open_page("/profile", user="ada", viewport=PHONE)
    expect(page.locator("h1")).to_have_text("ada")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    screenshot(page, "profile-phone")
