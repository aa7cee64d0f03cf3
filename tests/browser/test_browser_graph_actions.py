"""A graph's owner renames and deletes it, from the graph page's menu and from the profile page;
others see only "Compare with…", which lists graphs of the same model and transcoder set and
opens the compare page, where features are named by their labels and the tokens they are
active on. The worker process traces every graph."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from gbx_browser_app import RunningApp
from gbx_browser_pages import PHONE, screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _trace(app: RunningApp, client: httpx.Client, prompt: str) -> str:
    """An unlisted graph: lists and searches of other modules do not see it; its owner does."""
    body = {"model": "tiny", "prompt": prompt, "params": {"max_n_logits": 3}, "visibility": "unlisted"}
    r = client.post("/api/traces", json=body)
    assert r.status_code == 202, r.text
    return app.wait_for_job(client, r.json()["id"], "done")["graph_slug"]


def _open_menu(page: Any) -> None:
    page.locator("#graph-menu > summary").click()
    expect(page.get_by_role("button", name="Compare with…")).to_be_visible()


def test_owner_renames_and_deletes_from_the_graph_page(app, users, open_page):
    ada = users["ada"]
    slug = _trace(app, ada, "a cat sat on the hat")

    grace = open_page(f"/graph/{slug}", user="grace")  # not hers: compare only
    _open_menu(grace)
    expect(grace.get_by_role("button", name="Rename…")).to_have_count(0)
    expect(grace.get_by_role("button", name="Delete…")).to_have_count(0)

    page = open_page(f"/graph/{slug}", user="ada")
    expect(page.locator("#graph-name")).to_be_hidden()
    _open_menu(page)
    page.get_by_role("button", name="Rename…").click()
    expect(page.get_by_label("Title")).to_be_focused()
    page.get_by_label("Title").fill("Cats & <b>hats</b>")
    page.get_by_role("button", name="Save title").click()
    expect(page.locator("#graph-menu-status")).to_have_text("Renamed to “Cats & <b>hats</b>”.")
    expect(page.locator("#graph-name")).to_have_text("Cats & <b>hats</b>")
    expect(page).to_have_title("Cats & <b>hats</b> · Glassbox")
    assert ada.get(f"/api/graphs/{slug}").json()["title"] == "Cats & <b>hats</b>"
    screenshot(page, "graph-menu-renamed")

    page.reload()  # the server renders the title too
    expect(page.locator("#graph-name")).to_have_text("Cats & <b>hats</b>")
    _open_menu(page)
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.get_by_role("button", name="Cancel").click()
    assert ada.get(f"/api/graphs/{slug}").status_code == 200  # cancelled: still there
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_text("Delete this graph for good")).to_be_visible()
    page.get_by_role("button", name="Delete graph").click()
    page.wait_for_url("**/profile")
    assert ada.get(f"/api/graphs/{slug}").status_code == 404
    expect(page.locator(f'#my-graphs tr[data-graph="{slug}"]')).to_have_count(0)


def test_rename_and_delete_from_the_profile_page(app, users, open_page):
    ada = users["ada"]
    first = _trace(app, ada, "the cat sat on the mat")
    second = _trace(app, ada, "a hat on a cat")
    page = open_page("/profile", user="ada", viewport=PHONE)
    row = page.locator(f'#my-graphs tr[data-graph="{first}"]')
    expect(row.get_by_role("link")).to_have_text("the cat sat on the mat")

    row.get_by_role("button", name="Rename").click()
    page.get_by_label("New title of the cat sat on the mat").fill("Mat cats")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#graph-status")).to_have_text("Renamed to “Mat cats”.")
    expect(row.get_by_role("link")).to_have_text("Mat cats")
    expect(row).to_contain_text("the cat sat on the mat")  # the prompt stays, under the title
    expect(page.get_by_role("button", name="Rename graph Mat cats")).to_be_focused()
    assert ada.get(f"/api/graphs/{first}").json()["title"] == "Mat cats"

    other = page.locator(f'#my-graphs tr[data-graph="{second}"]')
    other.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Cancel").click()
    expect(other.get_by_role("button", name="Delete")).to_be_focused()
    other.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete a hat on a cat for good").click()
    expect(page.locator("#graph-status")).to_have_text(
        "Deleted “a hat on a cat”, with its saved views and comments."
    )
    expect(page.locator(f'#my-graphs tr[data-graph="{second}"]')).to_have_count(0)
    expect(page.locator(f'#my-graphs tr[data-graph="{first}"]')).to_have_count(1)
    assert ada.get(f"/api/graphs/{second}").status_code == 404
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    screenshot(page, "profile-graphs")


def _label(admin: httpx.Client, layer: int, index: int, text: str) -> None:
    url = f"/api/features/tiny/tc/{layer}/{index}"
    version = admin.get(url).json()["label_version"]
    r = admin.put(f"{url}/label", json={"text": text, "base_version": version})
    assert r.status_code == 200, r.text


def test_compare_with_another_graph_shows_labels_and_tokens(app, admin, users, open_page):
    ada = users["ada"]
    a = _trace(app, ada, "The capital of Texas is Austin")
    b = _trace(app, ada, "The capital of France is")
    assert ada.patch(f"/api/graphs/{a}", json={"title": "Compare me (A)"}).status_code == 200
    assert ada.patch(f"/api/graphs/{b}", json={"title": "Compare me (B)"}).status_code == 200
    page = open_page(f"/graph/{a}", user="ada")
    _open_menu(page)
    page.get_by_role("button", name="Compare with…").click()
    choices = page.locator("#compare-choices")
    expect(choices.get_by_role("link", name="Compare me (B)")).to_be_visible()
    expect(choices.get_by_role("link", name="Compare me (A)")).to_have_count(0)  # not itself
    choices.get_by_role("link", name="Compare me (B)").click()
    page.wait_for_url(re.compile(r"/compare\?"))
    assert parse_qs(urlsplit(page.url).query) == {"a": [a], "b": [b]}

    twin = page.evaluate("async (u) => (await (await fetch(u)).json())", f"/compare?a={a}&b={b}&format=json")
    top = twin["column_a"][0]
    layer, feature, positions = top["layer"], top["feature"], top["a"]["positions"]
    _label(admin, layer, feature, "capital <i>city</i>")
    page.reload()
    row = page.locator(f'#graph-a tr[data-feature="{layer}/{feature}"]')
    expect(row.locator(".gb-feature-label")).to_have_text("capital <i>city</i>")
    expect(row.locator(".gb-feature-id")).to_have_text(f"#{feature}")
    chips = row.locator(".gb-tokens-at .gb-tok-chip")
    tokens = twin["a"]["tokens"]
    expect(chips).to_have_text([f"{p}{tokens[p]}" for p in positions])
    names = page.locator("#graph-a .gb-feature-label").all_text_contents()
    assert names and not [n for n in names if n.strip().isdigit()], names  # never a bare number

    page.get_by_role("link", name="Difference").click()
    key = f"{layer}/{feature}"
    changed = page.locator(f'#changed tr[data-feature="{key}"], #only-a tr[data-feature="{key}"]')
    expect(changed.locator(".gb-feature-label")).to_have_text("capital <i>city</i>")
    screenshot(page, "compare-labels")
