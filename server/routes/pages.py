"""HTML pages. Each renders the same data its JSON twin in /api returns.

The viewer itself belongs to frontend/: a page uses the frontend's template when it exists
(e.g. frontend/templates/graph.html) and the minimal one in frontend/templates/server/ if not.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.deps import OptionalUser, ServicesDep, SessionDep
from server.routes.params import SlugPath
from server.schemas import GraphPage, GraphPublic
from server.services import graphs

router = APIRouter(include_in_schema=False)


def _template(services: ServicesDep, name: str) -> str:
    frontend = Path(services.settings.frontend_dir) / "templates"
    return name if (frontend / name).is_file() else f"server/{name}"


@router.get("/", response_class=HTMLResponse)
def index(request: Request, user: OptionalUser, session: SessionDep, services: ServicesDep) -> HTMLResponse:
    """Recent graphs (JSON twin: GET /api/graphs)."""
    items, total = graphs.list_graphs(session, user=user, limit=50)
    page = GraphPage(items=[GraphPublic.of(g) for g in items], total=total, limit=50, offset=0)
    context = {"page": page.model_dump(mode="json"), "user": user.username if user else None}
    return services.templates.TemplateResponse(request, _template(services, "index.html"), context)


@router.get("/graph/{slug}", response_class=HTMLResponse)
def graph_page(
    slug: SlugPath, request: Request, user: OptionalUser, session: SessionDep, services: ServicesDep
) -> HTMLResponse:
    """One graph (JSON twin: GET /api/graphs/{slug}; data: GET /api/graphs/{slug}/data)."""
    graph = GraphPublic.of(graphs.get_graph(session, slug, user)).model_dump(mode="json")
    context = {"graph": graph, "user": user.username if user else None}
    return services.templates.TemplateResponse(request, _template(services, "graph.html"), context)
