"""The compare page: two graphs, side by side (features present in both highlighted) or as their
difference (features only in A, only in B, how the shared ones changed); for one prompt on two
models, the token positions of both tokenizations aligned.

`/compare?a=SLUG&b=SLUG[&view=side|diff]`; `&format=json` answers with the page's data (its JSON
twin), the same for either view.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from server.deps import OptionalUser, ServicesDep, SessionDep
from server.routes.pages import Format, _page, _who
from server.schemas import GraphPublic, Slug
from server.services import compare, graphs
from server.strict_json import StrictJSONRoute

router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)

SlugQuery = Annotated[Slug, Query(description="slug of a graph")]
View = Annotated[
    Literal["side", "diff"], Query(description="side: both graphs side by side; diff: only what differs")
]


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(
    a: SlugQuery,
    b: SlugQuery,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    view: View = "side",
    format: Format = "html",
) -> Response:
    """Graphs a and b: shared features (by influence share), each graph's own, the overlap, the
    difference, both graphs' outputs and (one prompt, two tokenizers) the aligned tokens."""
    record_a = graphs.get_graph(session, a, user)
    record_b = graphs.get_graph(session, b, user)
    result = await run_in_threadpool(compare.compare_records, session, record_a, record_b)
    col_a, col_b = compare.columns(result)
    context = {
        **_who(user),
        "view": view,
        "a": GraphPublic.of(record_a).model_dump(mode="json"),
        "b": GraphPublic.of(record_b).model_dump(mode="json"),
        "comparison": result,
        "column_a": col_a,
        "column_b": col_b,
        "difference": compare.difference(result),
    }
    return _page(request, services, "compare.html", context, format)
