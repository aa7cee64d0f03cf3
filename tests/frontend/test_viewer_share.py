"""Share links restore the exact view (Neuronpedia's parameter names), the page URL follows the
state, and the SVG, PNG and graph JSON exports carry what is on screen."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jsonschema
import pytest
from playwright.sync_api import expect
from viewer_harness import ViewerPage, viewer_url

pytestmark = pytest.mark.browser

SMALL = "/tests/frontend/fixtures/small_graph.json"
FEATURES = "/tests/frontend/fixtures/small_features.json"
CAPITAL_KEY = "2_46357_5"  # Neuronpedia featureId of 2_301_5: layer _ cantor(2, 301) _ position
URL_KEYS = [
    "pinnedIds",
    "supernodes",
    "clerps",
    "pruningThreshold",
    "edgeThreshold",
    "densityThreshold",
    "clickedId",
    "hideErrors",
]


def _set_up_a_view(viewer: ViewerPage) -> None:
    page = viewer.page
    viewer.click("3_401_5")  # its dashboard brings a feature density: the density filter turns on
    viewer.wait_state("s => s.densities.size > 0")
    page.get_by_label("Nodes", exact=True).fill("0.6")
    page.get_by_label("Edges", exact=True).fill("0.7")
    page.get_by_label("Feature density").fill("0.5")
    page.get_by_label("Hide errors").check()
    viewer.click("2_301_5")
    page.get_by_label("Label for this feature").fill("capital, said")
    page.get_by_role("button", name="Save label").click()
    expect(page.locator(".gbv-label-status")).to_have_text("Saved")
    viewer.click("3_401_5", ["Control"])
    viewer.click("2_301_5", ["Control"])
    page.keyboard.down("g")
    viewer.click("0_101_4")
    viewer.click("1_201_4")
    page.keyboard.up("g")
    page.get_by_label("Supernode name").fill("Texas")
    page.get_by_label("Supernode name").press("Enter")
    viewer.click("3_401_5")
    viewer.wait_state("s => s.clickedId === '3_401_5' && s.supernodes.length === 1")


def _url_state(state: dict) -> dict:
    return {key: state[key] for key in URL_KEYS}


def test_share_url_uses_neuronpedia_names_and_reopens_the_same_view(
    viewer: ViewerPage, browser, base_url: str
) -> None:
    viewer.open(features=FEATURES)
    _set_up_a_view(viewer)
    before = viewer.state()
    viewer.page.get_by_role("button", name="Share").click()
    dialog = viewer.page.get_by_role("dialog", name="Share this view")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".gbv-share-status")).not_to_be_empty()
    url = dialog.locator(".gbv-share-url").input_value()

    query = parse_qs(urlsplit(url).query)
    assert query["graph"] == [SMALL]  # the host page's own parameters survive
    assert query["pinnedIds"] == ["3_401_5,2_301_5,0_101_4,1_201_4"]
    assert json.loads(query["supernodes"][0]) == [["Texas", "0_101_4", "1_201_4"]]
    assert json.loads(query["clerps"][0]) == [[CAPITAL_KEY, "capital, said"]]
    assert query["pruningThreshold"] == ["0.6"] and query["densityThreshold"] == ["0.5"]
    assert query["edgeThreshold"] == ["0.7"]
    assert query["clickedId"] == ["3_401_5"] and query["hideErrors"] == ["1"]

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = ViewerPage(context.new_page(), base_url).open_url(url)
        assert _url_state(other.state()) == _url_state(before)
        assert sorted(other.visible_ids()) == sorted(viewer.visible_ids())
        page = other.page
        expect(page.locator(".gbv-details-label")).to_have_text("say Austin")
        expect(page.get_by_label("Nodes", exact=True)).to_have_value("0.6")
        expect(page.get_by_label("Edges", exact=True)).to_have_value("0.7")
        expect(page.get_by_label("Hide errors")).to_be_checked()
        expect(page.locator(".gbv-sg-node")).to_have_count(3)
        expect(page.locator(".gbv-sg-node[data-node-id='2_301_5']")).to_have_attribute(
            "aria-label", "capital, said"
        )
        expect(page.locator(".gbv-supernode-name")).to_have_text("Texas")
        assert other.page.evaluate("window.glassboxDev.handle.shareUrl()") == url
        other.screenshot("share-reopened")
    finally:
        context.close()


def test_page_url_follows_the_state(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("3_401_5", ["Control"])
    viewer.click("2_301_5")
    viewer.page.wait_for_function(
        "new URLSearchParams(location.search).get('pinnedIds') === '3_401_5'"
        " && new URLSearchParams(location.search).get('clickedId') === '2_301_5'"
    )
    viewer.page.reload()
    viewer.wait_state("s => s.pinnedIds.join() === '3_401_5' && s.clickedId === '2_301_5'")


def test_reads_a_neuronpedia_style_url(viewer: ViewerPage) -> None:
    params = {
        "graph": SMALL,
        "pinnedIds": "3_401_5,E_9447_4,not_a_node",
        "supernodes": json.dumps([["say it", "3_401_5", "2_301_5"], ["ghost", "x_1_2"]]),
        "clerps": json.dumps(
            [[CAPITAL_KEY, "from featureId"], ["1_201_4", "from node id"], ["9_9_9", "unknown"]]
        ),
        "pruningThreshold": "0.45",
        "densityThreshold": "0.99",
        "clickedId": "2_301_5",
    }
    viewer.open_url(f"{viewer.base_url}/frontend/dev/viewer.html?{urlencode(params)}")
    state = viewer.state()
    assert state["pinnedIds"] == ["3_401_5", "E_9447_4"]
    assert state["supernodes"] == [["say it", "3_401_5", "2_301_5"]]
    assert sorted(state["clerps"]) == [["1_201_4", "from node id"], ["2_301_5", "from featureId"]]
    assert state["pruningThreshold"] == 0.45 and state["densityThreshold"] == 0.99
    assert state["clickedId"] == "2_301_5"
    expect(viewer.page.locator(".gbv-details-label")).to_have_text("from featureId")


def test_bad_url_values_are_ignored(viewer: ViewerPage) -> None:
    url = viewer_url(
        viewer.base_url, SMALL, supernodes="[not json", clerps="{}", pruningThreshold="abc", clickedId="nope"
    )
    viewer.open_url(url)
    state = viewer.state()
    assert state["supernodes"] == [] and state["clerps"] == []
    assert state["pruningThreshold"] == 0.8 and state["clickedId"] is None


def _download(viewer: ViewerPage, button: str, tmp_path: Path) -> Path:
    with viewer.page.expect_download() as info:
        viewer.page.get_by_role("button", name=button).click()
    download = info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    return path


def test_exports_svg_png_and_graph_json(viewer: ViewerPage, tmp_path: Path, graph_schema: dict) -> None:
    viewer.open()
    viewer.click("3_401_5", ["Control"])
    viewer.click("2_301_5")
    viewer.page.get_by_label("Label for this feature").fill("renamed")
    viewer.page.get_by_role("button", name="Save label").click()
    viewer.wait_state("s => s.clerps.get('2_301_5') === 'renamed'")

    svg_path = _download(viewer, "Export SVG", tmp_path)
    assert svg_path.name == "texas-capital-small.svg"
    root = ET.parse(svg_path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    shapes = root.find("{http://www.w3.org/2000/svg}g[@class='nodes']")
    assert len(shapes) == len(viewer.visible_ids())
    titles = [el.text for el in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "renamed" in titles and '" Austin" 61.2%' in "".join(
        t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")
    )

    png_path = _download(viewer, "Export PNG", tmp_path)
    data = png_path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    graph_box = viewer.page.locator(".gbv-graph").bounding_box()
    assert (width, height) == (int(graph_box["width"]) * 2, int(graph_box["height"]) * 2)

    json_path = _download(viewer, "Export graph JSON", tmp_path)
    exported = json.loads(json_path.read_text())
    jsonschema.validate(exported, graph_schema)
    assert exported["qParams"]["pinnedIds"] == ["3_401_5"]
    assert exported["qParams"]["clickedId"] == "2_301_5"
    clerps = {node["node_id"]: node["clerp"] for node in exported["nodes"]}
    assert clerps["2_301_5"] == "renamed" and clerps["3_401_5"] == "say Austin"
    assert len(exported["links"]) == 23
