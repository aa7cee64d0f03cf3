"""The view server without a browser: circuit-tracer's file layout, which files and folders it
reads, its routes (pages, graph data, feature lookups, static files), what it refuses, `show()`
and the `glassbox view` command's errors. Browser tests: tests/frontend/test_view_command.py."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
import typer
from _view_helpers import PROMPTS, build_tiny_store, tiny_model_and_transcoders
from typer.testing import CliRunner

from glassbox.errors import GlassboxError, GraphFormatError
from glassbox.graph.export import GRAPH_METADATA, write_graph_files
from glassbox.view.catalog import Catalog
from glassbox.view.server import ViewServer

CIRCUIT_TRACER_FILES = Path(__file__).parent / "frontend" / "fixtures" / "circuit-tracer-files"


@pytest.fixture(scope="module")
def traced() -> dict[str, Any]:
    import glassbox

    model, transcoders = tiny_model_and_transcoders()
    results = [glassbox.trace(p, model=model, transcoders=transcoders) for p in PROMPTS]
    return {"model": model, "transcoders": transcoders, "results": results}


@pytest.fixture(scope="module")
def store_dir(traced: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_store(traced["model"], traced["transcoders"], tmp_path_factory.mktemp("features"))


@pytest.fixture
def server() -> Iterator[ViewServer]:
    view = ViewServer(Catalog()).start()
    yield view
    view.stop()


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urlopen(Request(url, headers=headers), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _post(url: str, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = Request(url, data=raw, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


# ---- circuit-tracer's layout ----------------------------------------------------------------


def test_graph_files_follow_circuit_tracers_layout(traced: dict[str, Any], tmp_path: Path) -> None:
    first, second = traced["results"]
    folder = tmp_path / "graphs"
    folder.mkdir()
    path = first.save_json(folder)  # an existing folder: circuit-tracer's layout
    second.save_graph_files(folder)
    first.save_graph_files(folder, node_threshold=0.5)  # the same slug again: replaced, moved last
    listing = json.loads((folder / GRAPH_METADATA).read_text())["graphs"]
    slugs = [g["slug"] for g in listing]
    assert slugs == [second.to_json()["metadata"]["slug"], first.to_json()["metadata"]["slug"]]
    assert listing[1]["node_threshold"] == 0.5 and listing[1]["prompt"] == PROMPTS[0]
    assert set(listing[1]) == {"slug", "scan", "transcoder_list", "prompt_tokens", "prompt", "node_threshold",
                               "schema_version"}
    assert path == folder / f"{slugs[1]}.json"
    assert json.loads(path.read_text())["metadata"]["node_threshold"] == 0.5
    assert sorted(p.name for p in folder.iterdir()) == sorted([GRAPH_METADATA, *(f"{s}.json" for s in slugs)])


@pytest.mark.parametrize("slug", ["../escape", "a/b", "", "..", "x\\y"])
def test_a_slug_that_is_not_a_file_name_is_refused(traced: dict[str, Any], tmp_path: Path, slug: str) -> None:
    data = traced["results"][0].to_json()
    data["metadata"]["slug"] = slug
    with pytest.raises(GlassboxError, match="file name"):
        write_graph_files(data, tmp_path / "graphs")
    assert not (tmp_path / "escape.json").exists()


def test_a_broken_listing_is_reported_not_overwritten(traced: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / GRAPH_METADATA).write_text('{"graphs": 3}')
    with pytest.raises(GlassboxError, match="not a graph listing"):
        write_graph_files(traced["results"][0].to_json(), tmp_path)
    assert (tmp_path / GRAPH_METADATA).read_text() == '{"graphs": 3}'


# ---- what it reads --------------------------------------------------------------------------


def test_catalog_reads_files_gzip_pt_and_both_kinds_of_folder(traced: dict[str, Any], tmp_path: Path) -> None:
    first, second = traced["results"]
    plain = first.save_json(tmp_path / "a.json")
    packed = second.save_json(tmp_path / "b.json.gz")
    first.graph.save(tmp_path / "c.pt")
    loose = tmp_path / "loose"
    loose.mkdir()
    second.save_json(loose / "z.json")
    first.save_json(loose / "y.json.gz")
    (loose / "notes.txt").write_text("not a graph")
    catalog = Catalog()
    added = catalog.add_paths([plain, packed, tmp_path / "c.pt", CIRCUIT_TRACER_FILES, loose])
    assert [g.summary.prompt for g in added] == [PROMPTS[0], PROMPTS[1], PROMPTS[0],
                                                 "The capital of the state containing Dallas is",
                                                 PROMPTS[0], PROMPTS[1]]  # loose: sorted by file name
    keys = [g.key for g in added]
    assert len(set(keys)) == len(keys) and keys[2] == f"{keys[0]}-2"
    assert [g.gzipped for g in added] == [False, True, False, False, True, False]
    assert json.loads(added[1].json_bytes()) == json.loads(gzip.decompress(packed.read_bytes()))
    assert added[3].key == "dallas-tiny" and added[3].summary.scan == "tiny-llama-plt"


def test_catalog_errors_name_the_file(tmp_path: Path) -> None:
    catalog = Catalog()
    with pytest.raises(GraphFormatError, match="no graph file or folder"):
        catalog.add_paths([tmp_path / "missing.json"])
    (tmp_path / "bad.json").write_text('{"metadata": {}}')
    with pytest.raises(GraphFormatError, match="lacks qParams, nodes, links"):
        catalog.add_paths([tmp_path / "bad.json"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GraphFormatError, match="holds no graph JSON"):
        catalog.add_paths([empty])
    (empty / GRAPH_METADATA).write_text('{"graphs": [{"slug": "gone"}]}')
    with pytest.raises(GraphFormatError, match="lists 'gone' but gone.json is not in"):
        catalog.add_paths([empty])
    assert catalog.graphs() == []


# ---- routes ---------------------------------------------------------------------------------


def test_pages_escape_text_and_have_json_twins(server: ViewServer, traced: dict[str, Any]) -> None:
    data = traced["results"][0].to_json()
    data["metadata"]["prompt"] = "<script>alert(1)</script> & friends"
    graph = server.catalog.add_json(data, source="<b>made here</b>")
    status, headers, page = _get(f"{server.url}/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"<script>alert" not in page and b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in page
    assert b"&lt;b&gt;made here&lt;/b&gt;" in page
    listing = json.loads(_get(f"{server.url}/?format=json")[2])["graphs"]
    assert listing == [graph.listing()] and listing[0]["features"] is False
    status, _, page = _get(f"{server.url}/graph/{graph.key}")
    assert status == 200 and b'<script type="module" src="/static/pages/view.js">' in page
    assert page.count(b"<script") == 1 and b"data-features-url" not in page and b"gb-header" in page
    assert b"gb-header" not in _get(f"{server.url}/graph/{graph.key}?embed=1")[2]
    assert json.loads(_get(f"{server.url}/graph/{graph.key}?format=json")[2])["key"] == graph.key
    assert json.loads(_get(f"{server.url}/graph/{graph.key}/data")[2]) == data
    assert _get(f"{server.url}/graph/nope")[0] == 404 and _get(f"{server.url}/nope")[0] == 404


def test_gzip_files_are_sent_compressed_to_clients_that_accept_it(
        server: ViewServer, traced: dict[str, Any], tmp_path: Path) -> None:
    path = traced["results"][1].save_json(tmp_path / "g.json.gz")
    (graph,) = server.catalog.add_paths([path])
    status, headers, body = _get(f"{server.url}/graph/{graph.key}/data", **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and body == path.read_bytes()
    status, headers, body = _get(f"{server.url}/graph/{graph.key}/data")
    assert "Content-Encoding" not in headers and json.loads(body)["metadata"]["prompt"] == PROMPTS[1]


def test_static_files_stay_inside_the_frontend(server: ViewServer) -> None:
    status, headers, body = _get(f"{server.url}/static/pages/view.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript" and b"mountGraphViewer" in body
    escapes = ("/static/../../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/", "/static")
    for path in escapes:
        with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as conn:
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.0 404") or answer.startswith(b"HTTP/1.1 404"), path
        assert b"[build-system]" not in answer


def test_a_loopback_server_answers_only_loopback_host_names(server: ViewServer) -> None:
    assert _get(f"{server.url}/", Host="localhost")[0] == 200
    status, _, body = _get(f"{server.url}/", Host="rebound.example.com:80")
    assert status == 403 and b"rebound.example.com" in body


def test_feature_lookups_come_from_the_store_and_file_labels_win(server: ViewServer, traced: dict[str, Any],
                                                                 store_dir: Path) -> None:
    from glassbox.features.store import FeatureStore
    from glassbox.view.features import open_store

    data = traced["results"][0].to_json()
    features = [n for n in data["nodes"] if n["feature_type"] == "cross layer transcoder"]
    features[0]["clerp"] = "my label"
    plain = server.catalog.add_json(traced["results"][1].to_json(), source="test")
    graph = server.catalog.add_json(data, source="test", features=open_store(store_dir))
    base = f"{server.url}/graph/{graph.key}/features"
    ids = [n["node_id"] for n in features[:3]] + ["E_5_1", "9_1_1", "0_999_1"]
    status, labels = _post(f"{base}/labels", {"node_ids": ids})
    store = FeatureStore.open(store_dir)
    expected = {}
    for node in features[1:3]:
        layer, index = int(node["layer"]), int(node["node_id"].split("_")[1])
        expected[node["node_id"]] = store.auto_label(layer, index)
    assert status == 200 and labels == expected  # the labelled node, non-features, unknown layer/index: none
    status, dashboards = _post(f"{base}/dashboards", {"node_ids": ids})
    assert status == 200 and set(dashboards) == set(ids)
    layer, index = int(features[0]["layer"]), int(features[0]["node_id"].split("_")[1])
    assert dashboards[ids[0]]["top_logits"] == store.get(layer, index)["top_logits"]
    assert [dashboards[i] for i in ids[3:]] == [None, None, None]
    assert _post(f"{base}/labels", b"not json")[0] == 400
    assert _post(f"{base}/labels", {"node_ids": [1, 2]})[0] == 400
    assert _post(f"{server.url}/graph/{plain.key}/features/labels", {"node_ids": ids})[0] == 404
    assert _post(f"{server.url}/graph/{graph.key}/labels", {"node_ids": ids})[0] == 404


# ---- show() and the command ------------------------------------------------------------------


def test_show_returns_an_iframe_of_the_embedded_viewer(traced: dict[str, Any], tmp_path: Path) -> None:
    from glassbox.view import ViewerFrame, show

    result = traced["results"][0]
    frame = result.show(height=480)
    assert isinstance(frame, ViewerFrame) and frame.url.endswith(f"/graph/{frame.graph.key}?embed=1")
    html = frame._repr_html_()
    assert html.startswith(f'<iframe src="{frame.url}"') and 'height="480"' in html
    assert PROMPTS[0] in repr(frame) or frame.graph.slug in repr(frame)
    assert _get(frame.url)[0] == 200
    path = result.save_json(tmp_path / "g.json")
    from_file = show(path)
    assert from_file.url.split("/graph/")[0] == frame.url.split("/graph/")[0]  # one server per process
    with pytest.raises(GlassboxError, match="export options"):
        show(result.to_json(), node_threshold=0.5)
    with pytest.raises(GlassboxError, match="not int"):
        show(3)  # type: ignore[arg-type]
    with pytest.raises(GlassboxError, match="at least 100"):
        result.show(height=10)


def test_the_frontend_folder_can_be_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from glassbox.view.server import FRONTEND_ENV, frontend_dir

    monkeypatch.setenv(FRONTEND_ENV, str(tmp_path))
    with pytest.raises(GlassboxError, match="not in"):
        frontend_dir()
    monkeypatch.delenv(FRONTEND_ENV)
    assert (frontend_dir() / "static" / "viewer" / "index.js").is_file()


def _view_cli() -> typer.Typer:
    from glassbox.cli.view import view_command

    app = typer.Typer()
    app.command()(view_command)
    return app


def test_the_command_reports_bad_files_and_busy_ports(traced: dict[str, Any], tmp_path: Path) -> None:
    result = CliRunner().invoke(_view_cli(), [str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "error: no graph file or folder" in result.output
    path = traced["results"][0].save_json(tmp_path / "g.json")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(_view_cli(), [str(path), "--port", str(port)])
    assert result.exit_code == 2 and f"port {port} is in use" in result.output
