"""The view server's two HTML pages: the list of graphs and the viewer of one graph.

Plain strings with every value escaped (no template engine: the engine runs without the web
stack). The pages use the site's stylesheet and run one script, `static/pages/view.js`, which
mounts the viewer from the `data-` attributes; they hold no inline script.
"""

from __future__ import annotations

from html import escape

from glassbox.view.catalog import ViewGraph

HEAD = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · Glassbox</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/css/site.css">
{extra_head}</head>
"""

HEADER = """<header class="gb-header">
  <a class="gb-brand" href="/">Glassbox</a>
  <nav class="gb-nav" aria-label="Site">
    <a href="/"{current}>Graphs</a>
{items}  </nav>
  <span class="gb-muted">read-only view</span>
</header>
"""


def list_page(graphs: list[ViewGraph]) -> str:
    """Every graph on the server: prompt (a link to its viewer), model, size, file."""
    rows = "".join(_row(g) for g in graphs) or (
        '    <tr><td colspan="5" class="gb-muted">No graphs.</td></tr>\n')
    count = f"{len(graphs)} graph{'' if len(graphs) == 1 else 's'}"
    return (HEAD.format(title="Graphs", extra_head="") + "<body>\n"
            + HEADER.format(current=' aria-current="page"', items="")
            + '<main class="gb-main" id="main">\n  <h1>Graphs</h1>\n'
            + f'  <p class="gb-muted">{count}; JSON: <a href="/?format=json">/?format=json</a></p>\n'
            + '  <div class="gb-table-wrap">\n  <table>\n'
            + '    <thead><tr><th scope="col">Prompt</th><th scope="col">Model</th>'
            + '<th scope="col" class="gb-num">Nodes</th><th scope="col" class="gb-num">Links</th>'
            + '<th scope="col" class="gb-hide-narrow">File</th></tr></thead>\n'
            + f"    <tbody>\n{rows}    </tbody>\n  </table>\n  </div>\n</main>\n</body>\n</html>\n")


def _row(graph: ViewGraph) -> str:
    s = graph.summary
    link = f'<a href="/graph/{graph.key}">{escape(s.prompt or graph.slug)}</a>'
    return (f'    <tr><td class="gb-prompt-cell">{link}</td>'
            f"<td>{escape(s.scan)}</td><td class=\"gb-num\">{s.node_count}</td>"
            f'<td class="gb-num">{s.link_count}</td>'
            f'<td class="gb-hide-narrow gb-mono">{escape(graph.source)}</td></tr>\n')


def graph_page(graph: ViewGraph, *, embed: bool = False) -> str:
    """The viewer of one graph. `embed` (notebooks) leaves out the site header."""
    base = f"/graph/{graph.key}"
    extra_head = ('  <link rel="stylesheet" href="/static/viewer/viewer.css">\n'
                  f'  <link rel="preload" href="{base}/data" as="fetch" crossorigin>\n')
    header = "" if embed else HEADER.format(current="", items=(
        f'    <span class="gb-graph-title">{escape(graph.summary.scan)}</span>\n'
        f'    <a href="{base}/data">JSON</a>\n'))
    features = f' data-features-url="{base}/features"' if graph.features is not None else ""
    style = ' style="height: 100vh"' if embed else ""
    return (HEAD.format(title=escape(graph.summary.prompt or graph.slug), extra_head=extra_head)
            + '<body>\n<div class="gb-graph-page">\n' + header
            + f'<main id="graph-viewer" data-glassbox-view data-graph-url="{base}/data"{features}{style}>\n'
            + '  <noscript>The graph viewer needs JavaScript; the graph JSON is at '
            + f'<a href="{base}/data">{base}/data</a>.</noscript>\n</main>\n</div>\n'
            + '<script type="module" src="/static/pages/view.js"></script>\n</body>\n</html>\n')
