"""HTML pages. Each page is rendered from one context dict built from the API's own schemas, and
`?format=json` answers with that same dict (the page's JSON twin, as Datasette does).

The pages live in frontend/templates (a page falls back to frontend/templates/server/ when the
frontend has no template of that name); their scripts are ES modules in frontend/static/pages/,
since the CSP forbids inline scripts. Pages only read: every write goes through /api (the one
POST here, /new/chat-prompt, only computes a prompt from chat messages).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from persistence import features as feature_rows
from persistence import registry
from persistence.errors import Unprocessable
from persistence.tables import (
    Comment,
    Feature,
    GraphRecord,
    ModelEntry,
    Subgraph,
    TranscoderSetEntry,
    User,
    Visibility,
)
from server.deps import OptionalUser, ServicesDep, SessionDep
from server.limits import limit_previews
from server.redirects import same_site_path
from server.routes.models import model_public
from server.routes.params import FeatureIndex, JobId, Layer, NamePath, SlugPath
from server.schemas import (
    ApiKeyPublic,
    ChatMessages,
    CommentPublic,
    GraphListItem,
    GraphPage,
    GraphPublic,
    Input,
    JobPublic,
    Name,
    SubgraphPublic,
    Text,
    TraceParams,
    UserPublic,
)
from server.services import accounts, comments, explanations, features, graphs, jobs, subgraphs
from server.strict_json import StrictJSONRoute

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)

Format = Annotated[Literal["html", "json"], Query(description="json: the page's data instead of HTML")]
SearchText = Annotated[Text | None, Query(max_length=200)]
RECENT = 20
FEATURED = 6  # at least; every featured example of the setup is shown
SEARCH_LIMIT = 50


# ---- rendering -----------------------------------------------------------------------------


def _template(services: ServicesDep, name: str) -> str:
    frontend = Path(services.settings.frontend_dir) / "templates"
    return name if (frontend / name).is_file() else f"server/{name}"


def _who(user: User | None) -> dict[str, Any]:
    return {"user": user.username if user else None, "is_admin": bool(user and user.is_admin)}


def _page(
    request: Request, services: ServicesDep, template: str, context: dict[str, Any], fmt: str = "html"
) -> Response:
    """The page, or with fmt=json the dict it is rendered from."""
    if fmt == "json":
        return JSONResponse(context)
    return services.templates.TemplateResponse(request, _template(services, template), context)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _graph_page(items: list[GraphRecord], total: int, limit: int) -> dict[str, Any]:
    page = GraphPage(items=[GraphListItem.of(g) for g in items], total=total, limit=limit, offset=0)
    return page.model_dump(mode="json")


# ---- queries the services do not have yet ---------------------------------------------------


def featured(session: Session, *, limit: int = FEATURED) -> list[dict[str, Any]]:
    """The setup's featured example graphs (firststart.featured, with their titles), then the
    public graphs people engaged with most; GraphListItem dicts plus a `title` (None: the prompt)
    and `top`, the model's top next tokens ([{token, prob}], featured graphs only)."""
    from firststart.featured import FEATURED as EXAMPLES
    from firststart.store import list_featured

    titles = {item.slug: item.title for item in EXAMPLES}
    curated = list_featured(session)
    popular = most_engaged_graphs(session, limit=limit, exclude={g.id for g in curated})
    return [
        {**GraphListItem.of(g).model_dump(mode="json"), "title": titles.get(g.slug), "top": _top_next(g)}
        for g in (curated + popular)[: max(limit, len(curated))]
    ]


def _top_next(g: GraphRecord) -> list[dict[str, Any]]:
    """The model's top next tokens the setup stored with a featured graph ([] for others)."""
    featured = (g.parameters or {}).get("featured")
    top = featured.get("top_predictions") if isinstance(featured, dict) else None
    return [t for t in top if isinstance(t, dict)] if isinstance(top, list) else []


def most_engaged_graphs(session: Session, *, limit: int, exclude: set[int]) -> list[GraphRecord]:
    """Public graphs with the most public saved views plus comments, newest first on ties."""
    views = (
        select(Subgraph.graph_id.label("graph_id"), func.count().label("n"))
        .where(Subgraph.visibility == Visibility.PUBLIC)
        .group_by(Subgraph.graph_id)
        .subquery()
    )
    talk = (
        select(Comment.graph_id.label("graph_id"), func.count().label("n"))
        .where(Comment.graph_id.is_not(None))
        .group_by(Comment.graph_id)
        .subquery()
    )
    score = func.coalesce(views.c.n, 0) + func.coalesce(talk.c.n, 0)
    stmt = (
        select(GraphRecord)
        .outerjoin(views, views.c.graph_id == GraphRecord.id)
        .outerjoin(talk, talk.c.graph_id == GraphRecord.id)
        .where(GraphRecord.visibility == Visibility.PUBLIC, score > 0, GraphRecord.id.not_in(exclude))
        .order_by(score.desc(), GraphRecord.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt).unique())


def search_feature_labels(session: Session, text: str, *, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Features whose label or auto label contains `text` (case-insensitive)."""
    needle = text.lower()
    stmt = (
        select(Feature, TranscoderSetEntry.name, ModelEntry.name)
        .join(TranscoderSetEntry, Feature.transcoder_set_id == TranscoderSetEntry.id)
        .join(ModelEntry, TranscoderSetEntry.model_id == ModelEntry.id)
        .where(
            ModelEntry.enabled.is_(True),
            or_(
                func.lower(Feature.label).contains(needle, autoescape=True),
                func.lower(Feature.auto_label).contains(needle, autoescape=True),
            ),
        )
        .order_by(Feature.updated_at.desc(), Feature.id.desc())
        .limit(limit)
    )
    return [
        {
            "model": model,
            "transcoders": tset,
            "layer": f.layer,
            "index": f.index,
            "label": f.label,
            "auto_label": f.auto_label,
            "url": feature_url(model, tset, f.layer, f.index),
        }
        for f, tset, model in session.execute(stmt)
    ]


def feature_url(model: str, transcoders: str, layer: int, index: int) -> str:
    return f"/features/{quote(model, safe='')}/{quote(transcoders, safe='')}/{layer}/{index}"


# ---- pages ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    q: SearchText = None,
    label: SearchText = None,
    format: Format = "html",
) -> Response:
    """Featured and recent graphs; search prompts (`q`, as GET /api/graphs?q=) and feature labels."""
    q, label = (q or "").strip() or None, (label or "").strip() or None
    recent, total = graphs.list_graphs(session, user=user, limit=RECENT)
    context: dict[str, Any] = {
        **_who(user),
        "query": q,
        "label_query": label,
        "featured": featured(session),
        "page": _graph_page(recent, total, RECENT),
        "results": None,
        "label_results": None,
    }
    if q:
        found, n = graphs.list_graphs(session, user=user, query=q, limit=SEARCH_LIMIT)
        context["results"] = _graph_page(found, n, SEARCH_LIMIT)
    if label:
        context["label_results"] = search_feature_labels(session, label)
    return _page(request, services, "index.html", context, format)


@router.get("/new", response_class=HTMLResponse)
def new_graph(
    request: Request, user: OptionalUser, session: SessionDep, services: ServicesDep, format: Format = "html"
) -> Response:
    """The form that starts a trace (JSON twins: GET /api/models; it posts to /api/traces)."""
    s = services.settings
    context = {
        **_who(user),
        "models": [model_public(m, services).model_dump(mode="json") for m in registry.list_models(session)],
        "defaults": _form_defaults(s.max_feature_nodes_limit),
        "limits": {
            "max_prompt_tokens": s.max_prompt_tokens,
            "max_prompt_chars": s.max_prompt_chars,
            "max_feature_nodes": s.max_feature_nodes_limit,
            "top_k": min(10, s.preview_max_top_k),
        },
        "visibilities": [v.value for v in Visibility],
    }
    return _page(request, services, "new.html", context, format)


def _form_defaults(max_feature_nodes_limit: int) -> dict[str, Any]:
    """The trace options the form starts with: the API's defaults, within this site's limit (as the
    API applies them when a request leaves max_feature_nodes out)."""
    defaults = TraceParams().model_dump(mode="json")
    if defaults["max_feature_nodes"] is not None:
        defaults["max_feature_nodes"] = min(defaults["max_feature_nodes"], max_feature_nodes_limit)
    return defaults


class ChatPromptRequest(Input):
    model: Name
    messages: ChatMessages


@router.post("/new/chat-prompt")
def chat_prompt(
    body: ChatPromptRequest, request: Request, session: SessionDep, services: ServicesDep
) -> dict[str, str]:
    """Chat messages as the prompt text the model's chat template makes of them (what
    POST /api/traces with `messages` traces), for the live tokenization."""
    limit_previews(services, request)
    model = registry.get_model(session, body.model, error=Unprocessable)
    session.close()  # release the connection while the tokenizer works
    messages = [m.model_dump() for m in body.messages]
    return {"prompt": services.preview.chat_prompt(model.source, body.model, messages)}


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    job_id: JobId,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    format: Format = "html",
) -> Response:
    """A trace job with live progress (JSON twin: GET /api/jobs/{id}; events: .../events)."""
    if user is None and format == "html":
        return _login_redirect(request)
    job = JobPublic.of(jobs.get_job(session, job_id, user)).model_dump(mode="json")
    return _page(request, services, "job.html", {**_who(user), "job": job}, format)


@router.get("/graph/{slug}", response_class=HTMLResponse)
def graph_page(
    slug: SlugPath,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    format: Format = "html",
) -> Response:
    """One graph (JSON twin: GET /api/graphs/{slug}; data: GET /api/graphs/{slug}/data)."""
    record = graphs.get_graph(session, slug, user)
    views = [SubgraphPublic.of(s) for s in subgraphs.list_subgraphs(session, record, user)]
    context = {
        **_who(user),
        "graph": GraphPublic.of(record).model_dump(mode="json"),
        "subgraphs": [{**v.model_dump(mode="json"), "url": f"/subgraph/{v.slug}"} for v in views],
        "explainer": explanations.explainer_status(services.settings),
    }
    return _page(request, services, "graph.html", context, format)


@router.get("/subgraph/{slug}")
def subgraph_link(slug: SlugPath, user: OptionalUser, session: SessionDep) -> RedirectResponse:
    """A saved subgraph's share link: its graph page with the view in Neuronpedia's URL parameters."""
    view = SubgraphPublic.of(subgraphs.get_subgraph(session, slug, user))
    return RedirectResponse(subgraph_view_url(view), status_code=303)


def subgraph_view_url(view: SubgraphPublic) -> str:
    params: dict[str, str] = {}
    if view.pinned_ids:
        params["pinnedIds"] = ",".join(view.pinned_ids)
    if view.supernodes:
        params["supernodes"] = json.dumps(view.supernodes)
    if view.label_overrides:
        params["clerps"] = json.dumps([[k, v] for k, v in view.label_overrides.items()])
    if view.pruning_threshold is not None:
        params["pruningThreshold"] = str(view.pruning_threshold)
    if view.density_threshold is not None:
        params["densityThreshold"] = str(view.density_threshold)
    query = f"?{urlencode(params)}" if params else ""
    return f"/graph/{quote(view.graph_slug, safe='')}{query}"


@router.get("/features/{model}/{transcoders}/{layer}/{index}", response_class=HTMLResponse)
def feature_page(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    format: Format = "html",
) -> Response:
    """A feature's dashboard, label history with votes, and comments (JSON twins: GET
    /api/features/{model}/{transcoders}/{layer}/{index}, .../labels, .../comments)."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    found = feature_rows.find_feature(session, addr, with_dashboard=True)
    explanation = explanations.explanation_of(session, found)
    public = features.feature_public(addr, found, with_dashboard=True, explanation=explanation)
    notes = comments.list_comments(session, feature=found) if found else []
    context = {
        **_who(user),
        "feature": public.model_dump(mode="json"),
        "labels": [x.model_dump(mode="json") for x in features.label_history(session, addr, user)],
        "comments": [CommentPublic.of(c).model_dump(mode="json") for c in notes],
        "api_url": "/api" + feature_url(model, transcoders, layer, index),
        "dashboard": dashboard_view(public.dashboard),
        "explainer": explanations.explainer_status(services.settings),
    }
    return _page(request, services, "feature.html", context, format)


def dashboard_view(dashboard: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the template draws from a dashboard (feature-details JSON or the builder's superset):
    density, histogram bars, logits with values, examples with each token's share of the max."""
    if not dashboard:
        return None
    quantiles = [q for q in dashboard.get("examples_quantiles") or [] if isinstance(q, dict)]
    acts = [
        _number(a)
        for q in quantiles
        for ex in q.get("examples") or []
        for a in (ex.get("tokens_acts_list") or [])
    ]
    top = max([a for a in acts if a > 0], default=0.0)
    density = dashboard.get("activation_frequency", dashboard.get("frac_nonzero"))
    return {
        "density": _number(density) if density is not None else None,
        "act_max": _number(dashboard["act_max"]) if "act_max" in dashboard else (top or None),
        "histogram": _histogram(dashboard.get("histogram"), dashboard.get("histogram_edges")),
        "top_logits": _logits(dashboard.get("top_logits"), dashboard.get("top_logits_values")),
        "bottom_logits": _logits(dashboard.get("bottom_logits"), dashboard.get("bottom_logits_values")),
        "quantiles": [
            {
                "name": str(q.get("quantile_name", "")),
                "examples": [
                    _example(ex, top) for ex in (q.get("examples") or [])[:10] if isinstance(ex, dict)
                ],
            }
            for q in quantiles
        ],
    }


def _number(value: Any) -> float:
    """A finite float for drawing (0.0 for anything else: the page's JSON twin must serialise)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _histogram(counts: Any, edges: Any) -> list[dict[str, Any]]:
    if not isinstance(counts, list) or not counts:
        return []
    values = [_number(c) for c in counts]
    peak = max(values) or 1.0
    edges = edges if isinstance(edges, list) and len(edges) == len(values) - 1 else None

    def span(i: int) -> str:
        if edges is None:
            return f"bin {i + 1}"
        low = "0" if i == 0 else f"{_number(edges[i - 1]):.3g}"
        high = "∞" if i == len(values) - 1 else f"{_number(edges[i]):.3g}"
        return f"{low} – {high}"

    def bound(i: int) -> float | None:
        """Edge i - 1 of the bins (None past the open ends, or without edges): axes for the chart."""
        return _number(edges[i - 1]) if edges is not None and 0 < i < len(values) else None

    return [
        {"count": int(v), "height": v / peak, "range": span(i), "low": bound(i), "high": bound(i + 1)}
        for i, v in enumerate(values)
    ]


def _logits(tokens: Any, values: Any) -> list[dict[str, Any]]:
    if not isinstance(tokens, list):
        return []
    vals = values if isinstance(values, list) and len(values) == len(tokens) else [None] * len(tokens)
    return [{"token": str(t), "value": v} for t, v in zip(tokens[:15], vals[:15], strict=True)]


def _example(ex: dict[str, Any], top: float) -> list[dict[str, Any]]:
    tokens = ex.get("tokens") or []
    acts = ex.get("tokens_acts_list") or []
    out = []
    for i, token in enumerate(tokens):
        act = _number(acts[i]) if i < len(acts) else 0.0
        out.append({"token": str(token), "act": act, "share": min(1.0, max(0.0, act / top)) if top else 0.0})
    return out


def _unsafe_next(request: Request) -> bool:
    """Whether `?next=` (every copy of it: browsers' scripts read the first, frameworks the
    last) is anything but a path on this site."""
    values = request.query_params.getlist("next")
    return any(same_site_path(v, fallback="") != v for v in values if v)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, user: OptionalUser, services: ServicesDep) -> Response:
    """The log-in form; its script goes to `?next=` afterwards, which the server vouches for:
    a page asked for with any other `next` is sent to the plain form first."""
    if _unsafe_next(request):
        return RedirectResponse("/login", status_code=303)
    return _page(request, services, "login.html", _who(user))


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, user: OptionalUser, services: ServicesDep) -> Response:
    """The sign-up form; `?next=` as on the log-in page."""
    if _unsafe_next(request):
        return RedirectResponse("/register", status_code=303)
    context = {**_who(user), "allow_registration": services.settings.allow_registration}
    return _page(request, services, "register.html", context)


@router.get("/profile", response_class=HTMLResponse)
def profile_page(
    request: Request, user: OptionalUser, session: SessionDep, services: ServicesDep, format: Format = "html"
) -> Response:
    """Your account, API keys, graphs and jobs (JSON twins: GET /api/auth/me, /api/auth/keys,
    /api/graphs?mine=true, /api/jobs)."""
    if user is None:
        if format == "json":
            return JSONResponse({"user": None}, status_code=401)
        return _login_redirect(request)
    mine, total = graphs.list_graphs(session, user=user, mine=True, limit=RECENT)
    recent_jobs = jobs.list_jobs(session, user, status=None, limit=RECENT, offset=0)
    context = {
        **_who(user),
        "account": UserPublic.of(user).model_dump(mode="json"),
        "keys": [ApiKeyPublic.of(k).model_dump(mode="json") for k in accounts.list_api_keys(session, user)],
        "graphs": _graph_page(mine, total, RECENT),
        "jobs": [JobPublic.of(j).model_dump(mode="json") for j in recent_jobs],
    }
    return _page(request, services, "profile.html", context, format)
