"""Intervention jobs from the API's side: check the edits against the graph, store, enqueue.

An intervention job reuses the job table and lifecycle of traces (`kind` tells them apart);
the worker runs it on the cached model and transcoders and writes its answer to `result`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from functools import partial

from sqlalchemy.orm import Session

from persistence.errors import Unprocessable
from persistence.tables import GraphRecord, Job, JobKind, User
from server.schemas import InterventionCreate, InterventionItem
from server.services.jobs import Submitted, new_job, submit_job
from worker.queue import JobQueue

log = logging.getLogger(__name__)

TOP_K = 10


def request_key(*, owner_id: int, graph_id: int, body: InterventionCreate) -> str:
    """Identical experiments (same user, graph and edits) share one key."""
    canonical = json.dumps(
        {"k": JobKind.INTERVENTION.value, "o": owner_id, "g": graph_id, "b": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _is_special(token: str) -> bool:
    return len(token) > 2 and token.startswith("<") and token.endswith(">")


def check_item(item: InterventionItem, i: int, *, n_layers: int | None, tokens: list[str]) -> None:
    """Refuse edits the graph cannot have: a layer past the model, a position past the prompt,
    a feature at the BOS position (features there are zero by construction)."""
    where = f"interventions[{i}]"
    if n_layers is not None and item.layer >= n_layers:
        raise Unprocessable(f"{where}.layer is {item.layer}; this model has layers 0 to {n_layers - 1}")
    if item.pos is not None:
        if item.pos >= len(tokens):
            raise Unprocessable(
                f"{where}.pos is {item.pos}; the prompt has positions 0 to {len(tokens) - 1}"
            )
        if item.pos == 0 and tokens and _is_special(str(tokens[0])):
            raise Unprocessable(f"{where}.pos is 0, the {tokens[0]} token, which has no features")


def submit(
    session: Session,
    queue: JobQueue,
    user: User,
    record: GraphRecord,
    body: InterventionCreate,
    *,
    charge: Callable[[], None] | None = None,
) -> Submitted:
    """Accept an intervention request on graph `record`: validate, deduplicate, store, enqueue
    (`charge`, the rate limit, runs only when a new job is made)."""
    if record.model is None or record.transcoder_set is None:
        raise Unprocessable(
            f"graph {record.slug!r} has no registered model and transcoder set, so it cannot be re-run"
        )
    tset = record.transcoder_set
    for i, item in enumerate(body.interventions):
        check_item(item, i, n_layers=tset.n_layers, tokens=list(record.tokens))
    key = request_key(owner_id=user.id, graph_id=record.id, body=body)
    build = partial(
        new_job,
        kind=JobKind.INTERVENTION,
        key=key,
        request={
            "prompt": record.prompt,
            "model": record.model.name,
            "transcoders": tset.name,
            "graph_slug": record.slug,
            "interventions": [item.model_dump(mode="json") for item in body.interventions],
            "max_new_tokens": body.max_new_tokens,
            "constrained": body.constrained,
            "top_k": TOP_K,
        },
        model_id=record.model_id,
        transcoder_set_id=record.transcoder_set_id,
        owner_id=user.id,
    )
    return submit_job(session, queue, key=key, output=Job.result, build=build, charge=charge)
