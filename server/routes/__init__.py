"""HTTP routes: thin functions that parse, call a service, and shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from server.routes import (
    auth,
    compare,
    explanations,
    features,
    graphs,
    health,
    interventions,
    models,
    pages,
    setup_status,
    subgraphs,
    traces,
)

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    models.router,
    traces.router,
    graphs.router,
    interventions.router,
    compare.router,
    subgraphs.router,
    features.router,
    explanations.router,
    setup_status.router,
    pages.router,
]
