"""`glassbox view graph.json [more.json ...] --port 8080`: graph files in the viewer, read-only."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated

import typer

from glassbox.cli.common import fail_cleanly

Opt = typer.Option


@fail_cleanly
def view_command(
    graphs: Annotated[list[Path], typer.Argument(
        help="Graph files (.json, .json.gz, .pt) or folders: circuit-tracer's layout "
        "(graph-metadata.json and its {slug}.json files) or any folder of graph JSON.")],
    port: Annotated[int, Opt(help="Port to serve on (0: any free port).")] = 8080,
    host: Annotated[str, Opt(help="Address to listen on. 127.0.0.1 keeps it to this machine; "
                             "0.0.0.0 shows the graphs to anyone who can reach it.")] = "127.0.0.1",
    features: Annotated[Path | None, Opt(
        help="A features store (`glassbox features build`) whose dashboards and labels the graphs' "
        "feature nodes get; it must come from the graphs' transcoders.")] = None,
    open_browser: Annotated[bool, Opt("--open", help="Open the page in a web browser.")] = False,
) -> None:
    """Show graph files in the Glassbox viewer: a list page, then the viewer per graph.

    No database, no account, nothing written: labels edited in the viewer stay in the page's URL.
    """
    from glassbox.errors import GlassboxError
    from glassbox.view.catalog import Catalog
    from glassbox.view.features import open_store
    from glassbox.view.server import ViewServer

    catalog = Catalog()
    added = catalog.add_paths(graphs, features=open_store(features))
    try:
        server = ViewServer(catalog, host=host, port=port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise GlassboxError(f"port {port} is in use: choose another with --port") from None
        raise GlassboxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    for graph in added:
        summary = graph.summary
        typer.echo(f"  {server.graph_url(graph)}  {summary.prompt!r} ({summary.node_count} nodes)")
    first = server.graph_url(added[0]) if len(added) == 1 else f"{server.url}/"
    typer.echo(f"serving {len(added)} graph{'s' if len(added) != 1 else ''} at {server.url}/ "
               "(read-only; Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(first)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
