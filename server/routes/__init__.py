"""HTTP routes: thin functions that parse, call a service, and shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from server.routes import (
    auth,
    compare,
    features,
    graphs,
    health,
    interventions,
    models,
    pages,
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
    pages.router,
]
