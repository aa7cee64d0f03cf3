"""Graph files Glassbox writes open in circuit-tracer's own viewer (the frontend its `serve`
runs), in headless Chromium.

`TraceResult.save_graph_files` writes circuit-tracer's `create_graph_files` layout; the test
serves circuit-tracer 0.5.0's frontend files the way its `serve` does (the folder at /data/ and
/graph_data/) and checks that each graph draws every node that viewer should draw, with no
JavaScript error. The frontend comes from the circuit-tracer wheel (PyPI), fetched once into
the test home. Its page loads D3 and plugins from CDNs, which tests cannot reach, so the test
answers those URLs from registry packages: D3 7.9.2 (the bytes vendored in frontend/static),
d3-jetpack 2.3.0 with d3-collection 1.0.7 (which its nestBy needs) and dagre 0.8.5, all fetched
once with `npm pack`. The CDN's jetpack build also puts `drawAxis` on the object `conventions`
returns; npm's exports it as a function instead, so a two-line adapter adds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _view_helpers import PROMPTS, tiny_model_and_transcoders
from playwright.sync_api import expect
from viewer_harness import REPO_ROOT, static_server

pytestmark = pytest.mark.browser

CIRCUIT_TRACER = "circuit-tracer==0.5.0"
ASSETS = "circuit_tracer/frontend/assets/"
NPM_FILES = {  # npm package -> the file the page needs from it
    "d3-jetpack@2.3.0": "package/build/d3-jetpack.cjs",
    "d3-collection@1.0.7": "package/dist/d3-collection.min.js",
    "dagre@0.8.5": "package/dist/dagre.min.js",
}
D3_VENDORED = REPO_ROOT / "frontend" / "static" / "vendor" / "d3-7.9.2.esm.min.js"
CDN_HOSTS = ("https://transformer-circuits.pub/**", "https://unpkg.com/**")
FEATURE_HOST = "https://d1fk9w8oratjix.cloudfront.net/**"  # feature examples: not part of this test


def _cache() -> Path:
    """Downloads live in the test home (tests/conftest.py points GLASSBOX_HOME at it)."""
    path = Path(os.environ["GLASSBOX_HOME"]) / "interop"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed (the registry must be reachable):\n{done.stderr[-2000:]}")


def _circuit_tracer_assets() -> Path:
    """circuit-tracer's frontend files, unpacked from its wheel."""
    target = _cache() / CIRCUIT_TRACER.replace("==", "-") / "assets"
    if (target / "index.html").is_file():
        return target
    wheels = _cache() / "wheels"
    wheels.mkdir(exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d",
          str(wheels), CIRCUIT_TRACER], wheels)
    wheel = next(wheels.glob("circuit_tracer-0.5.0-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(ASSETS) and not name.endswith("/"):
                out = target / name[len(ASSETS):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.read(name))
    return target


def _npm_file(package: str, member: str) -> bytes:
    folder = _cache() / "npm"
    folder.mkdir(exist_ok=True)
    name, _, version = package.rpartition("@")
    tarball = folder / f"{name}-{version}.tgz"
    if not tarball.is_file():
        _run(["npm", "pack", "--silent", package], folder)
    with tarfile.open(tarball) as archive:
        file = archive.extractfile(member)
        assert file is not None, f"{member} is not in {tarball.name}"
        return file.read()


def _cdn_scripts() -> dict[str, bytes]:
    """What the page's CDN URLs get, by the end of their path."""
    vendored = D3_VENDORED.read_text().splitlines(keepends=True)
    d3 = "".join(vendored[4:-1]).encode()  # the UMD build between the ES-module header and footer
    collection = _npm_file("d3-collection@1.0.7", NPM_FILES["d3-collection@1.0.7"])
    jetpack = (b"(function () {\nvar module = { exports: {} }, exports = module.exports;\n"
               b"var require = function () { return window.d3; };\n"
               + _npm_file("d3-jetpack@2.3.0", NPM_FILES["d3-jetpack@2.3.0"])
               + b"\nObject.assign(window.d3, module.exports);\n"
               b"var conventions = window.d3.conventions;\n"
               b"window.d3.conventions = function (options) { var c = conventions(options);\n"
               b"  c.drawAxis = function (svg) {\n"
               b"    window.d3.drawAxis(Object.assign({}, c, { svg: svg || c.svg })); };\n"
               b"  return c; };\n})();\n")
    return {"/d3.js": d3 + b"\n" + collection, "/jetpack_2024-07-20.js": jetpack,
            "/dagre.min.js": _npm_file("dagre@0.8.5", NPM_FILES["dagre@0.8.5"])}


@pytest.fixture(scope="module")
def graph_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny graphs written by Glassbox in circuit-tracer's layout."""
    import glassbox

    folder = tmp_path_factory.mktemp("ct-layout") / "data"
    model, transcoders = tiny_model_and_transcoders()
    for prompt in PROMPTS:
        glassbox.trace(prompt, model=model, transcoders=transcoders).save_graph_files(folder)
    return folder


@pytest.fixture(scope="module")
def frontend(graph_folder: Path) -> Iterator[str]:
    with static_server(_circuit_tracer_assets(), aliases={"/data/": graph_folder,
                                                          "/graph_data/": graph_folder}) as url:
        yield url


def _expected_nodes(graph: dict[str, Any]) -> set[str]:
    """The nodes circuit-tracer's viewer draws at the graph's node threshold: tokens, logits and
    nodes whose cumulative influence is within it."""
    threshold = graph["metadata"]["node_threshold"]
    return {n["node_id"] for n in graph["nodes"]
            if n["feature_type"] in ("embedding", "logit") or n["influence"] <= threshold}


def test_glassbox_graph_files_render_in_circuit_tracers_viewer(browser: Any, frontend: str,
                                                                graph_folder: Path) -> None:
    listing = json.loads((graph_folder / "graph-metadata.json").read_text())
    slugs = [g["slug"] for g in listing["graphs"]]
    assert len(slugs) == 2 and all((graph_folder / f"{slug}.json").is_file() for slug in slugs)
    scripts = _cdn_scripts()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def cdn(route: Any) -> None:
        path = route.request.url.split("?")[0]
        body = next((raw for end, raw in scripts.items() if path.endswith(end)), b"")
        route.fulfill(status=200, content_type="text/javascript", body=body)

    for host in CDN_HOSTS:
        context.route(host, cdn)
    context.route(FEATURE_HOST, lambda route: route.fulfill(status=404, body=""))
    try:
        for slug in slugs:
            graph = json.loads((graph_folder / f"{slug}.json").read_text())
            page.goto(f"{frontend}/index.html?slug={slug}")
            page.wait_for_function("document.querySelectorAll('.cg text.node').length > 0")
            drawn = page.evaluate("d3.selectAll('.cg text.node').data().map(d => d.node_id)")
            assert set(drawn) == _expected_nodes(graph), slug
            expect(page.locator(".cg .prompt-token").first).to_be_visible()
        shot = REPO_ROOT / "test-artifacts" / "frontend" / "circuit-tracer-viewer.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()
    assert errors == [], f"circuit-tracer's viewer threw: {errors}"

