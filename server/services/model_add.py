"""Model-add jobs from the API's side: check the request, deduplicate, store, enqueue.

The job itself (download, conversion, checks, registration) is worker/model_add.py; this only
refuses what can be refused at once (a misspelt reference: 422; a model or set already
registered: 409) and otherwise answers with the job to follow.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from persistence.tables import Job, User
from server.schemas import ModelAddCreate
from server.services.jobs import Submitted, submit_job
from worker.model_add import ModelAddRequest, check_unregistered, new_model_add_job
from worker.queue import JobQueue


def submit_model_add(session: Session, queue: JobQueue, admin: User, body: ModelAddCreate) -> Submitted:
    """Queue a model-add job, or answer with the queued or running one of an identical request."""
    request = ModelAddRequest.build(
        model=body.model,
        transcoders=body.transcoders,
        name=body.name,
        transcoders_name=body.transcoders_name,
        display_name=body.display_name,
    )
    check_unregistered(session, request)
    # A model-add job makes no graph, so `graph_id` stays empty and only an active job is reused;
    # once one is done, the registry check above answers an identical request.
    return submit_job(
        session,
        queue,
        key=request.key(),
        output=Job.graph_id,
        build=lambda: new_model_add_job(request, owner_id=admin.id),
    )
