"""The New graph page end to end: live tokenization with the model's top next tokens, advanced
parameters, submit, the job page following the worker process by server-sent events until it
turns into the graph page; a failing job that shows its reason and succeeds on Retry; chat
messages offered only for a model with a chat template; a custom target checked while it is
typed; the fields kept after Back and on the next visit."""

from __future__ import annotations

import re
import shutil

import pytest
from gbx_browser_pages import PHONE, screenshot, wait_for_viewer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _tokens(page):
    return page.locator("#tokens li").all_text_contents()


def test_tokenize_submit_and_watch_the_job_become_the_graph(app, users, open_page):
    page = open_page("/new", user="ada")
    expect(page.get_by_label("Model")).to_have_value("tiny")
    expect(page.get_by_label("Transcoder set")).to_have_value("tc")

    prompt = page.get_by_role("textbox", name="Prompt")
    prompt.press_sequentially("The capital of", delay=20)  # each key restarts the debounce
    expect(page.locator("#token-count")).to_have_text("4 of at most 16 tokens")
    assert _tokens(page) == ["<bos>", "The", "capital", "of"]
    prompt.press_sequentially(" Texas is", delay=20)
    expect(page.locator("#token-count")).to_have_text("6 of at most 16 tokens")
    assert _tokens(page) == ["<bos>", "The", "capital", "of", "Texas", "is"]
    expect(page.locator("#next-tokens li")).to_have_count(10)
    probs = [float(t.rstrip("%")) for t in page.locator("#next-tokens li .gb-num").all_text_contents()]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 100.05

    page.get_by_text("Advanced parameters").click()
    page.get_by_label("Max logits").fill("60")
    page.get_by_role("button", name="Trace graph").click()  # out of range: refused before sending
    expect(page.locator("#form-status")).to_contain_text("Max logits")
    expect(page.get_by_label("Max logits")).to_be_focused()
    page.get_by_label("Max logits").fill("2")
    page.get_by_label("Node threshold").fill("0.7")
    page.get_by_label("Slug").fill("texas-from-the-form")
    screenshot(page, "new-graph")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    with app.worker_paused():  # the job waits in the queue while the job page shows it
        page.get_by_role("button", name="Trace graph").click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
        job_id = page.url.rsplit("/", 1)[1]
        expect(page.locator("#job-title")).to_contain_text("The capital of Texas is")
        expect(page.locator("#job-status")).to_have_text("queued")
        expect(page.get_by_role("button", name="Cancel")).to_be_visible()
        screenshot(page, "job-page")
    page.wait_for_url("**/graph/texas-from-the-form", timeout=120_000)  # followed live, then opened
    assert f"{app.base}/api/jobs/{job_id}/events" in requests
    wait_for_viewer(page)
    expect(page.locator(".gbv-prompt-text")).to_have_text("The capital of Texas is")
    screenshot(page, "graph-from-the-form")

    meta = users["ada"].get("/api/graphs/texas-from-the-form").json()
    assert meta["owner"] == "ada" and meta["model"] == "tiny" and meta["transcoders"] == "tc"
    assert meta["parameters"]["max_n_logits"] == 2 and meta["parameters"]["node_threshold"] == 0.7
    doc = users["ada"].get("/api/graphs/texas-from-the-form/data").json()
    assert sum(n["feature_type"] == "logit" for n in doc["nodes"]) <= 2


def test_too_long_prompt_says_why_and_chat_needs_a_chat_template(users, chat_model, open_page):
    page = open_page("/new", user="ada", viewport=PHONE)
    page.get_by_role("textbox", name="Prompt").fill(" ".join(["cat"] * 20))
    expect(page.locator("#token-count")).to_have_text("the prompt is 21 tokens long; the limit is 16")
    expect(page.locator("#tokens li")).to_have_count(0)

    chat = page.get_by_label("Chat messages")  # the tiny model has no chat template: not offered
    expect(chat).to_be_disabled()
    expect(page.locator("#chat-help")).to_have_text("Tiny Llama has no chat template: give a plain prompt.")

    page.get_by_label("Model").select_option(chat_model)
    expect(chat).to_be_enabled()
    expect(page.locator("#chat-help")).to_have_text("")
    chat.check()
    expect(page.get_by_role("textbox", name="Prompt")).to_be_hidden()
    page.get_by_label("Message 1", exact=True).fill("a cat")
    expect(page.locator("#token-count")).to_have_text("3 of at most 16 tokens")
    page.get_by_label("Model").select_option("tiny")  # back to a model without: the plain prompt
    expect(page.get_by_role("textbox", name="Prompt")).to_be_visible()
    expect(page.get_by_label("Plain prompt")).to_be_checked()
    page.get_by_label("Model").select_option(chat_model)
    chat.check()
    page.get_by_role("button", name="Add message").click()
    expect(page.get_by_label("Message 2", exact=True)).to_be_focused()
    page.get_by_role("button", name="Remove message 2").click()
    expect(page.get_by_label("Message 2", exact=True)).to_have_count(0)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    screenshot(page, "new-graph-phone")


def test_anonymous_visitors_can_tokenize_but_must_log_in_to_trace(open_page):
    page = open_page("/new")
    expect(page.locator("#login-needed")).to_be_visible()
    expect(page.get_by_role("button", name="Trace graph")).to_be_disabled()
    page.get_by_role("textbox", name="Prompt").fill("a cat sat")
    expect(page.locator("#token-count")).to_have_text("4 of at most 16 tokens")


def test_a_failed_job_shows_its_reason_and_retry_succeeds(app, admin, users, tiny_dirs, tmp_path, open_page):
    missing = tmp_path / "late-tc"
    body = {"name": "late", "source": str(missing), "n_layers": 2, "description": "not there yet"}
    assert admin.post("/api/models/tiny/transcoder-sets", json=body).status_code == 201

    page = open_page("/new", user="grace")
    page.get_by_label("Transcoder set").select_option("late")
    expect(page.locator("#transcoders-help")).to_have_text("not there yet · 2 layers")
    page.get_by_role("textbox", name="Prompt").fill("a cat sat on mat")
    page.get_by_role("button", name="Trace graph").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))

    expect(page.locator("#job-status")).to_have_text("failed", timeout=120_000)
    expect(page.locator("#job-error")).to_contain_text("late-tc")
    retry = page.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    screenshot(page, "job-failed")

    shutil.copytree(tiny_dirs[1], missing)  # the transcoders arrive: the retry can succeed
    retry.click()
    page.wait_for_url("**/graph/**", timeout=120_000)
    wait_for_viewer(page)
    expect(page.locator(".gbv-prompt-text")).to_have_text("a cat sat on mat")


def test_a_custom_target_is_checked_while_typing(users, open_page):
    page = open_page("/new", user="grace")
    page.get_by_role("textbox", name="Prompt").fill("The capital of Texas is")
    page.locator("#target > summary").click()
    plus, minus = page.locator("#logit_plus"), page.locator("#logit_minus")
    plus.fill("Austin Dallas")
    expect(page.locator("#logit_plus-check")).to_have_text(
        "2 tokens: 'Austin' 'Dallas' - a target must be one token (mind the leading space)"
    )
    expect(plus).to_have_attribute("aria-invalid", "true")
    submit = page.get_by_role("button", name="Trace graph")
    expect(submit).to_be_disabled()
    minus.fill("Dallas")
    expect(page.locator("#logit_minus-check")).to_have_text('one token: "Dallas"')
    expect(submit).to_be_disabled()  # the first is still two tokens
    plus.fill("Austin")
    expect(page.locator("#logit_plus-check")).to_have_text('one token: "Austin"')
    expect(submit).to_be_enabled()
    screenshot(page, "new-graph-target-checked")


def test_the_form_keeps_its_fields_after_back_and_on_the_next_visit(app, users, open_page):
    page = open_page("/new", user="grace")
    page.get_by_role("textbox", name="Prompt").fill("a cat sat on the mat")
    page.locator("#target > summary").click()
    page.locator("#logit_plus").fill("mat")
    page.locator("#logit_minus").fill("hat")
    expect(page.locator("#logit_minus-check")).to_have_text('one token: "hat"')
    page.get_by_text("Advanced parameters").click()
    page.get_by_label("Node threshold").fill("0.6")
    page.get_by_label("Visibility").select_option("unlisted")
    with app.worker_paused():  # the job stays queued: Back finds the job page, not the graph
        page.get_by_role("button", name="Trace graph").click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
        page.go_back()
        page.wait_for_url("**/new")

        def kept() -> None:
            expect(page.get_by_role("textbox", name="Prompt")).to_have_value("a cat sat on the mat")
            expect(page.locator("#logit_plus")).to_have_value("mat")
            expect(page.locator("#logit_minus")).to_have_value("hat")
            expect(page.get_by_label("Node threshold")).to_have_value("0.6")
            expect(page.get_by_label("Visibility")).to_have_value("unlisted")
            expect(page.get_by_role("button", name="Trace graph")).to_be_enabled()

        kept()
        page.goto("/")
        page.goto("/new")  # a new visit in the same tab: not the browser's own form restore
        kept()
        expect(page.locator("#target")).to_have_attribute("open", "")
        expect(page.locator("#token-count")).to_have_text("7 of at most 16 tokens")

    page.get_by_role("button", name="Clear the form").click()
    expect(page.get_by_role("textbox", name="Prompt")).to_have_value("")
    page.reload()
    expect(page.get_by_role("textbox", name="Prompt")).to_have_value("")
    expect(page.locator("#logit_plus")).to_have_value("")


@pytest.fixture(scope="module")
def chat_model(admin, tiny_dirs, tmp_path_factory):
    """The tiny model with a chat template (plain: BOS, then each message's text)."""
    model_dir = tmp_path_factory.mktemp("chat") / "model"
    shutil.copytree(tiny_dirs[0], model_dir)
    (model_dir / "chat_template.jinja").write_text(
        "{{ bos_token }}{% for m in messages %}{{ m['content'] }} {% endfor %}"
    )
    r = admin.post("/api/models", json={"name": "tiny-chat", "source": str(model_dir)})
    assert r.status_code == 201, r.text
    body = {"name": "tc", "source": str(tiny_dirs[1]), "is_default": True, "n_layers": 2}
    assert admin.post("/api/models/tiny-chat/transcoder-sets", json=body).status_code == 201
    return "tiny-chat"


def test_chat_messages_go_through_the_chat_template(app, users, chat_model, open_page):
    page = open_page("/new", user="ada")
    expect(page.get_by_label("Chat messages")).to_be_disabled()
    page.get_by_label("Model").select_option(chat_model)
    page.get_by_label("Chat messages").check()
    expect(page.get_by_label("Message 1", exact=True)).to_be_visible()
    page.get_by_label("Role of message 1").select_option("system")
    page.get_by_label("Message 1", exact=True).fill("Fact :")
    page.get_by_role("button", name="Add message").click()
    page.keyboard.type("a cat sat")  # the new message has the focus
    expect(page.locator("#token-count")).to_have_text("6 of at most 16 tokens")
    assert _tokens(page) == ["<bos>", "Fact", ":", "a", "cat", "sat"]  # one BOS: the template's

    page.get_by_role("button", name="Trace graph").click()
    page.wait_for_url("**/graph/**", timeout=120_000)
    wait_for_viewer(page)
    slug = page.url.split("/graph/", 1)[1].split("?", 1)[0]
    meta = users["ada"].get(f"/api/graphs/{slug}").json()
    assert meta["model"] == chat_model and meta["tokens"] == ["<bos>", "Fact", ":", "a", "cat", "sat"]
