"""HTTP routes: thin functions that parse, call a service, and shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from server.routes import auth, features, graphs, health, models, pages, subgraphs, traces

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    models.router,
    traces.router,
    graphs.router,
    subgraphs.router,
    features.router,
    pages.router,
]
