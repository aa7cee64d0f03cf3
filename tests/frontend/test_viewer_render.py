"""The graph viewer in headless Chromium: layout, hover, click, controls, keyboard, themes and
screen sizes, on the hand-built fixture (tests/frontend/fixtures/small_graph.json)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from viewer_harness import ViewerPage

pytestmark = pytest.mark.browser

FEATURES = "/tests/frontend/fixtures/small_features.json"
ALL_NODES = 19
PRUNED_AT_080 = {"3_403_1", "2_-1_4"}  # influence 0.85 and 0.90; metadata.node_threshold is 0.8


def test_renders_every_node_under_the_default_threshold(viewer: ViewerPage) -> None:
    viewer.open()
    visible = set(viewer.visible_ids())
    assert len(visible) == ALL_NODES - len(PRUNED_AT_080)
    assert not visible & PRUNED_AT_080
    summary = viewer.page.locator(".gbv-graph .gbv-sr-only").text_content()
    assert '" Austin" 61.2%' in summary and "17 of 19 nodes" in summary
    expect(viewer.page.locator(".gbv-prompt-text")).to_have_text("The capital of Texas is")


def test_layout_puts_embeddings_at_the_bottom_logits_on_top_and_positions_across(viewer: ViewerPage) -> None:
    viewer.open()
    emb = [viewer.position(f"E_{tok}_{pos}") for pos, tok in enumerate([2, 651, 6037, 576, 9447, 603])]
    assert [p["x"] for p in emb] == sorted(p["x"] for p in emb)
    assert len({round(p["y"]) for p in emb}) == 1
    y = {
        node: viewer.position(node)["y"]
        for node in ["E_9447_4", "0_101_4", "1_201_4", "2_301_5", "3_401_5", "5_25722_5"]
    }
    assert y["E_9447_4"] > y["0_101_4"] > y["1_201_4"] > y["2_301_5"] > y["3_401_5"] > y["5_25722_5"]


def test_hover_shows_a_tooltip_with_label_layer_position_activation_and_influence(viewer: ViewerPage) -> None:
    viewer.open()
    tooltip = viewer.page.locator(".gbv-tooltip")
    expect(tooltip).to_be_hidden()
    viewer.hover("3_401_5")
    expect(tooltip).to_be_visible()
    expect(tooltip.locator(".gbv-tooltip-label")).to_have_text("say Austin")
    facts = dict(
        zip(tooltip.locator("dt").all_text_contents(), tooltip.locator("dd").all_text_contents(), strict=True)
    )
    assert facts["Layer"] == "L3"
    assert facts["Position"] == '5 " is"'
    assert facts["Activation"] == "9.5"
    assert facts["Influence"] == "0.05"
    viewer.hover("5_25722_5")
    expect(tooltip.locator(".gbv-tooltip-label")).to_have_text('Output " Austin" (p=0.612)')
    expect(tooltip).to_contain_text("61.2%")
    viewer.page.mouse.move(2, 2)
    expect(tooltip).to_be_hidden()


def test_click_shows_details_with_connections_sorted_by_weight(viewer: ViewerPage) -> None:
    viewer.open(features=FEATURES)
    viewer.click("3_401_5")
    details = viewer.page.locator(".gbv-details")
    expect(details.locator(".gbv-details-label")).to_have_text("say Austin")
    inputs = details.locator("section[aria-label=Inputs] li")
    expect(inputs).to_have_count(6)
    ids = [inputs.nth(i).get_attribute("data-node-id") for i in range(6)]
    weights = [float(inputs.nth(i).get_attribute("data-weight")) for i in range(6)]
    assert ids == ["1_201_4", "2_301_5", "E_9447_4", "1_-1_5", "2_-1_4", "0_101_4"]
    assert [abs(w) for w in weights] == sorted((abs(w) for w in weights), reverse=True)
    outputs = details.locator("section[aria-label=Outputs] li")
    assert [outputs.nth(i).get_attribute("data-node-id") for i in range(2)] == ["5_25722_5", "5_9447_5"]
    # the dashboard comes from the api adapter
    expect(details.locator(".gbv-dashboard")).to_contain_text("Top logits")
    expect(details.locator(".gbv-dashboard .gbv-chips li").first).to_have_text('" Austin"')
    assert viewer.api_calls("fetchFeatures") == [["3_401_5"]]
    # clicking a connection moves the selection there
    inputs.nth(1).locator("button").click()
    expect(details.locator(".gbv-details-label")).to_have_text("say a capital")
    assert viewer.state()["clickedId"] == "2_301_5"


def test_details_show_a_placeholder_when_there_is_no_dashboard(viewer: ViewerPage) -> None:
    viewer.open(features=FEATURES)
    viewer.click("2_301_5")
    expect(viewer.page.locator(".gbv-dash-placeholder")).to_have_text(
        "No feature dashboard available for this node."
    )


def test_clicking_the_selected_node_or_empty_space_clears_the_selection(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("2_301_5")
    viewer.wait_state("s => s.clickedId === '2_301_5'")
    viewer.click("2_301_5")
    viewer.wait_state("s => s.clickedId === null")
    viewer.click("2_301_5")
    viewer.page.mouse.click(300, 300)
    viewer.wait_state("s => s.clickedId === null")


def test_pruning_threshold_slider_hides_nodes_by_influence(viewer: ViewerPage) -> None:
    viewer.open()
    slider = viewer.page.get_by_label("Nodes", exact=True)
    slider.fill("0.2")
    viewer.wait_state("s => s.pruningThreshold === 0.2")
    visible = set(viewer.visible_ids())
    assert {"0_101_4", "0_102_2", "1_201_4", "3_401_5"} <= visible  # influence <= 0.2
    assert not visible & {"1_202_5", "2_301_5", "2_302_3", "3_402_5", "1_-1_5"}
    assert {"E_2_0", "5_25722_5", "5_9447_5"} <= visible  # embeddings and logits always stay
    expect(viewer.page.locator(".gbv-slider-value").first).to_have_text("20%")
    slider.fill("1")
    viewer.wait_state("s => s.pruningThreshold === 1")
    assert len(viewer.visible_ids()) == ALL_NODES


def test_pinned_and_clicked_nodes_survive_the_threshold(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("2_301_5", ["Control"])
    viewer.click("1_202_5")
    viewer.page.get_by_label("Nodes", exact=True).fill("0.1")
    viewer.wait_state("s => s.pruningThreshold === 0.1")
    visible = set(viewer.visible_ids())
    assert {"2_301_5", "1_202_5"} <= visible and "1_201_4" not in visible


def test_hide_errors_and_density_threshold(viewer: ViewerPage) -> None:
    viewer.open(features=FEATURES)
    viewer.page.get_by_label("Hide errors").check()
    viewer.wait_state("s => s.hideErrors")
    assert not any("_-1_" in node for node in viewer.visible_ids())
    # 3_401_5's dashboard says density 0.002: it hides once the density threshold is below that
    viewer.click("3_401_5")
    viewer.wait_state("s => s.densities.get('3_401_5') === 0.002")
    viewer.page.keyboard.press("Escape")
    viewer.page.get_by_label("Feature density").fill("0.001")
    viewer.wait_state("s => s.densityThreshold === 0.001")
    assert "3_401_5" not in viewer.visible_ids()
    assert "2_301_5" in viewer.visible_ids()  # no density known: stays


def test_search_by_label_and_token(viewer: ViewerPage) -> None:
    viewer.open()
    box = viewer.page.get_by_label("Search nodes by label or token")
    box.fill("texas")
    hits = viewer.page.locator(".gbv-search-hit")
    ids = {hits.nth(i).get_attribute("data-node-id") for i in range(hits.count())}
    assert {"0_101_4", "1_201_4", "E_9447_4", "5_9447_5"} <= ids
    assert viewer.state()["searchMatches"][:1]
    box.fill("say austin")
    expect(hits).to_have_count(1)
    box.press("Enter")
    viewer.wait_state("s => s.clickedId === '3_401_5'")
    box.fill("zzz-nothing")
    expect(viewer.page.locator(".gbv-search-results")).to_contain_text("No matching nodes")


def test_keyboard_navigation_and_shortcuts(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.page.locator(".gbv-canvas-top").focus()
    viewer.page.keyboard.press("ArrowDown")  # first focus: the most likely logit
    viewer.wait_state("s => s.focusedId === '5_25722_5'")
    expect(viewer.page.locator(".gbv-tooltip")).to_be_visible()
    viewer.page.keyboard.press("ArrowDown")
    viewer.wait_state("s => s.focusedId !== '5_25722_5' && s.focusedId.startsWith('3_')")
    viewer.page.keyboard.press("Enter")
    viewer.wait_state("s => s.clickedId === s.focusedId")
    viewer.page.keyboard.press("p")
    viewer.wait_state("s => s.pinnedIds.includes(s.clickedId)")
    viewer.page.keyboard.press("Control+Enter")
    viewer.wait_state("s => !s.pinnedIds.includes(s.focusedId)")
    viewer.page.keyboard.press("[")
    viewer.wait_state("s => s.pruningThreshold === 0.75")
    viewer.page.keyboard.press("{")
    viewer.wait_state("s => s.edgeThreshold === 0.95")
    viewer.page.keyboard.press("e")
    viewer.wait_state("s => s.hideErrors")
    viewer.page.keyboard.press("/")
    expect(viewer.page.get_by_label("Search nodes by label or token")).to_be_focused()
    viewer.page.keyboard.press("Escape")  # Esc from the search box clears the selection
    viewer.wait_state("s => s.clickedId === null")


def test_help_overlay_opens_with_question_mark_and_closes_with_escape(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.page.locator(".gbv-canvas-top").focus()
    viewer.page.keyboard.press("?")
    dialog = viewer.page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Hold g + click")
    expect(dialog.locator(".gbv-dialog-close")).to_be_focused()
    viewer.screenshot("help-overlay")
    viewer.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(viewer.page.locator(".gbv-canvas-top")).to_be_focused()
    viewer.page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(dialog).to_be_visible()


def test_dark_and_light_themes(viewer: ViewerPage) -> None:
    viewer.open(theme="light")
    root = viewer.page.locator(".gbv")
    expect(root).to_have_attribute("data-theme", "light")
    light_bg = root.evaluate("el => getComputedStyle(el).backgroundColor")
    viewer.screenshot("desktop-light")
    viewer.page.get_by_role("button", name="Switch to dark theme").click()
    expect(root).to_have_attribute("data-theme", "dark")
    assert root.evaluate("el => getComputedStyle(el).backgroundColor") != light_bg
    corner = viewer.page.evaluate("""() => {
      const c = document.querySelector('.gbv-graph canvas');
      return [...c.getContext('2d').getImageData(2, c.height / 2, 1, 1).data];
    }""")
    viewer.page.wait_for_function("""() => {
      const c = document.querySelector('.gbv-graph canvas');
      return c.getContext('2d').getImageData(2, c.height / 2, 1, 1).data[0] < 60;
    }""")  # the canvas repaints in the dark background
    assert corner is not None
    viewer.click("3_401_5")
    viewer.screenshot("desktop-dark-clicked")


def test_desktop_1280x800_fits_without_scrolling(viewer: ViewerPage) -> None:
    viewer.open(features=FEATURES)
    viewer.click("3_401_5")
    page = viewer.page
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 1280
    assert page.evaluate("document.scrollingElement.scrollHeight") <= 800
    graph = page.locator(".gbv-graph").bounding_box()
    side = page.locator(".gbv-side").bounding_box()
    assert graph["width"] >= 800 and graph["height"] >= 600
    assert side["x"] >= graph["x"] + graph["width"] - 1
    viewer.screenshot("desktop-1280x800")


def test_phone_width_stacks_panels_and_stays_usable(viewer: ViewerPage) -> None:
    viewer.page.set_viewport_size({"width": 390, "height": 844})
    viewer.open()
    page = viewer.page
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    graph = page.locator(".gbv-graph").bounding_box()
    side = page.locator(".gbv-side").bounding_box()
    assert graph["width"] >= 380 and side["y"] >= graph["y"] + graph["height"] - 1
    for name in ["Nodes", "Edges", "Hide errors", "Search nodes by label or token"]:
        expect(page.get_by_label(name, exact=True)).to_be_visible()
    viewer.click("3_401_5")
    expect(page.locator(".gbv-details-label")).to_have_text("say Austin")
    viewer.screenshot("phone-390")


def test_zoom_keeps_hit_testing_in_step(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.page.locator(".gbv-canvas-top").focus()
    before = viewer.position("3_401_5")
    viewer.page.keyboard.press("+")
    viewer.page.wait_for_function(
        "([x]) => window.glassboxDev.handle.nodeScreenPosition('3_401_5').x !== x", arg=[before["x"]]
    )
    viewer.hover("3_401_5")
    expect(viewer.page.locator(".gbv-tooltip-label")).to_have_text("say Austin")
    zoomed = viewer.position("3_401_5")
    viewer.page.mouse.wheel(0, -300)  # the wheel zooms further around the pointer
    viewer.page.wait_for_function(
        "([x]) => window.glassboxDev.handle.nodeScreenPosition('3_401_5').x !== x", arg=[zoomed["x"]]
    )
    viewer.page.keyboard.press("0")
    viewer.page.wait_for_function(
        "([x]) => Math.abs(window.glassboxDev.handle.nodeScreenPosition('3_401_5').x - x) < 0.5",
        arg=[before["x"]],
    )


def test_focus_stays_in_the_details_panel_when_following_a_connection(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("3_401_5")
    button = viewer.page.locator("section[aria-label=Inputs] li[data-node-id='2_301_5'] button")
    button.focus()
    viewer.page.keyboard.press("Enter")
    viewer.wait_state("s => s.clickedId === '2_301_5'")
    assert viewer.page.evaluate("document.querySelector('.gbv-details').contains(document.activeElement)")


def test_dialog_keeps_tab_focus_inside(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.page.keyboard.down("g")
    viewer.click("0_101_4")
    viewer.page.keyboard.up("g")
    dialog = viewer.page.get_by_role("dialog", name="New supernode")
    expect(dialog.get_by_label("Supernode name")).to_be_focused()
    for _ in range(6):
        viewer.page.keyboard.press("Tab")
        assert dialog.evaluate("d => d.contains(document.activeElement)")
