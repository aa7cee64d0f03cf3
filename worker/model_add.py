"""Adding a model and a transcoder set to the registry as a job of kind "model-add": the
download and the conversion run on a worker, visible on /admin/jobs with their progress.

The request names a model (hub id, demo model or folder) and a transcoder set (hub reference,
alias or folder). The job fetches both through the engine (glassbox.models.fetch and
glassbox.transcoders.fetch: downloads resume, conversions land in GLASSBOX_HOME once), checks
that the set fits the model (layer count and width; hook names are checked as the set loads)
and registers both in the transaction that marks the job done. So a job that fails or is
cancelled registers nothing, and the new-graph form lists the model only once it can trace.

What can be checked cheaply is checked where the request is made (`ModelAddRequest.build`: the
spelling of the references; `check_unregistered`: the registry); what needs the files fails
the job with one line. The server (server/services/model_add.py) and `glassbox add-model`
(worker/add_model_cli.py) make the same rows. A job is an ordinary worker job (claim, heartbeat,
cancel, retry, reaper: persistence.jobs), which the worker runs through the
`glassbox.job_kinds` entry point; the request key lets one identical request be queued or
running at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError, TranscoderError
from persistence import registry
from persistence.db import SessionFactory
from persistence.errors import Conflict, ServerError
from persistence.jobs import (
    Claim,
    JobMonitor,
    JobStopped,
    done_values,
    fail_job,
    failure_reason,
    owned,
    running_values,
    start_queued,
)
from persistence.tables import Job, JobStatus, utcnow
from worker.context import WorkerContext

log = logging.getLogger(__name__)

MODEL_ADD_KIND = "model-add"
WHAT = "model download"  # how time-limit and failure messages name the job
MODEL_SHARE, SET_SHARE = 0.4, 0.55  # of the job's progress; registering takes the rest
MAX_REASON_CHARS = 500
MAX_SOURCE_CHARS, MAX_DISPLAY_CHARS = 500, 200  # the registry's columns
Report = Callable[[str, float], None]  # (phase, fraction of the job)


# ---- the request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelAddRequest:
    """What to add: the references load_model and load_transcoders get, and registry names."""

    model_source: str
    transcoders_source: str
    name: str
    transcoders_name: str
    display_name: str

    @classmethod
    def build(
        cls,
        *,
        model: str,
        transcoders: str,
        name: str | None = None,
        transcoders_name: str | None = None,
        display_name: str | None = None,
    ) -> ModelAddRequest:
        """Check the spelling of both references (nothing is downloaded) and fill in the names
        left out; raises a GlassboxError (a 422 from the API) for a reference that cannot work."""
        model_source = model_reference(model)
        transcoders_source = transcoders_reference(transcoders)
        for what, source in (("model", model_source), ("transcoder", transcoders_source)):
            if len(source) > MAX_SOURCE_CHARS:
                raise GlassboxError(f"the {what} reference is longer than {MAX_SOURCE_CHARS} characters")
        return cls(
            model_source=model_source,
            transcoders_source=transcoders_source,
            name=checked_name(name) if name else registry_name(model_source, what="model"),
            transcoders_name=checked_name(transcoders_name)
            if transcoders_name
            else registry_name(set_label(transcoders_source), what="set"),
            display_name=(display_name or default_display_name(model_source))[:MAX_DISPLAY_CHARS],
        )

    def to_request(self) -> dict[str, Any]:
        """The job's request. `prompt`, `model` and `transcoders` are what job lists show."""
        return {
            "prompt": f"Add model {self.name} ({self.model_source}) with transcoders "
            f"{self.transcoders_name} ({self.transcoders_source})",
            "model": self.name,
            "transcoders": self.transcoders_name,
            "slug": "",
            "add": asdict(self),
        }

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> ModelAddRequest:
        return cls(**request["add"])

    def key(self) -> str:
        """Identical requests (same model and set, same sources) share one key, whoever asks."""
        fields = asdict(self)
        fields.pop("display_name")
        canonical = json.dumps({"kind": MODEL_ADD_KIND, **fields}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def model_reference(ref: str) -> str:
    """A model reference the workers can load: a demo name, a hub id, or an absolute folder."""
    from glassbox.models.fetch import reference_kind

    text = ref.strip()
    if reference_kind(text) == "folder":
        return absolute_folder(text, what="model")
    return text


def transcoders_reference(ref: str) -> str:
    """A transcoder reference the workers can load: an alias, a hub reference (`owner/repo`,
    with a folder, a revision, or `hf://`), or an absolute folder."""
    from glassbox.transcoders.hub import ALIASES, parse_hub_ref

    text = ref.strip()
    if text in ALIASES:
        return text
    if text.startswith(("/", "~", ".")):
        return absolute_folder(text, what="transcoder")
    try:
        parse_hub_ref(text)
    except TranscoderError:
        raise
    except ValueError as exc:  # what urllib says of a malformed hf:// URL
        raise TranscoderError(f"{text!r} is not a hub reference: {exc}") from exc
    return text


def absolute_folder(text: str, *, what: str) -> str:
    """`text` as an absolute path: servers and workers may run in other working folders."""
    try:
        path = Path(text).expanduser()
    except RuntimeError as exc:  # ~user of no such user
        raise GlassboxError(f"{what} folder {text!r}: {exc}") from exc
    if not path.is_absolute():
        raise GlassboxError(
            f"{what} folder {text!r} must be an absolute path (servers and workers read it from their "
            "own working folders)"
        )
    return str(path)


def set_label(ref: str) -> str:
    """What a set's default name is made from: an alias, a folder's name, or a hub repo's name
    with the folder inside it (`owner/repo/sub@rev` -> `repo-sub`)."""
    from glassbox.transcoders.hub import ALIASES, parse_hub_ref

    if ref in ALIASES or ref.startswith("/"):
        return ref
    hub_ref = parse_hub_ref(ref)
    repo = hub_ref.repo_id.partition("/")[2]
    return f"{repo}-{hub_ref.path.rpartition('/')[2]}" if hub_ref.path else repo


def default_display_name(model_source: str) -> str:
    """A hub model's id (`google/gemma-2-2b`), else the folder's or demo model's name."""
    hub = "/" in model_source and not model_source.startswith("/")
    return model_source if hub else model_source.rstrip("/").rpartition("/")[2]


def registry_name(ref: str, *, what: str) -> str:
    """A registry name (letters, digits, '.', '_', '-'; 100 at most) from a reference's last part."""
    last = ref.rstrip("/").rpartition("/")[2]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", last).lstrip("._-")[:100]
    if not name:
        raise GlassboxError(f"cannot make a {what} name from {ref!r}; give one")
    return name


def checked_name(name: str) -> str:
    """`name` if it is a registry name as it is (what `registry_name` leaves alone)."""
    if registry_name(name, what="registry") != name:
        raise GlassboxError(
            f"{name!r} is not a registry name: 1-100 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


def check_unregistered(session: Session, request: ModelAddRequest) -> None:
    """Conflict when the registry already has the set, or the name for another model."""
    registry.check_new_set(
        session, name=request.name, source=request.model_source, set_name=request.transcoders_name
    )


def new_model_add_job(request: ModelAddRequest, *, owner_id: int | None) -> Job:
    """A queued first attempt, not yet stored."""
    return Job(
        id=uuid.uuid4().hex,
        kind=MODEL_ADD_KIND,
        status=JobStatus.QUEUED,
        request_key=request.key(),
        request=request.to_request(),
        owner_id=owner_id,
        attempt=1,
    )


def start_here(sessions: SessionFactory, request: ModelAddRequest, *, worker_name: str) -> Claim:
    """Store a model-add job already running for `worker_name`, for a process that runs it itself
    (`glassbox add-model`); Conflict when the registry has it or an identical job is active."""
    with sessions() as session:
        check_unregistered(session, request)
        job = new_model_add_job(request, owner_id=None)
        for column, value in running_values(worker_name, now=utcnow()).items():
            setattr(job, column, value)
        session.add(job)
        try:
            session.commit()
        except IntegrityError as exc:  # the active-request-key index: one identical job at a time
            raise Conflict("an identical model-add job is queued or running (see /admin/jobs)") from exc
        return Claim.of(job, worker_name)


# ---- running -----------------------------------------------------------------------------------


def run_model_add_job(context: WorkerContext, job_id: str) -> str:
    """The job function of kind "model-add" (named in the `glassbox.job_kinds` entry point
    group); a no-op if the job is not queued."""
    claimed = claim_model_add_job(context.sessions, job_id, worker_name=context.name)
    if claimed is None:
        return "skipped"
    claim, request = claimed
    return execute_model_add(
        claim,
        request,
        sessions=context.sessions,
        heartbeat_interval_s=context.settings.job_heartbeat_interval_s,
        timeout_s=context.settings.job_timeout_s,
    )


def claim_model_add_job(
    sessions: SessionFactory, job_id: str, *, worker_name: str
) -> tuple[Claim, ModelAddRequest] | None:
    """Move a queued model-add job to running for `worker_name`; None if someone else has it."""
    with sessions() as session:
        if not start_queued(session, job_id, worker_name=worker_name, kind=MODEL_ADD_KIND):
            return None
        job = session.get(Job, job_id)
        if job is None:
            return None
        claim = Claim.of(job, worker_name)
        try:
            return claim, ModelAddRequest.from_request(job.request)
        except (KeyError, TypeError) as exc:
            reason = f"the job's request cannot be read ({exc!r})"
    fail_job(sessions, claim, reason)
    return None


def execute_model_add(
    claim: Claim,
    request: ModelAddRequest,
    *,
    sessions: SessionFactory,
    heartbeat_interval_s: float,
    timeout_s: float,
    echo: Report | None = None,
) -> str:
    """Fetch, check and register for a claimed job; "done", "failed" or "stopped". `echo` also
    gets every progress report (the CLI prints them)."""
    monitor = JobMonitor(
        sessions, claim, heartbeat_interval_s=heartbeat_interval_s, timeout_s=timeout_s, what=WHAT
    )

    def report(phase: str, fraction: float) -> None:
        monitor.progress(phase, fraction)
        if echo is not None:
            echo(phase, fraction)

    what = request.to_request()["prompt"]
    log.info("model-add job %s started (attempt %d): %s", claim.job_id, claim.attempt, what)
    with monitor:
        try:
            result = fetch_and_check(request, report)
            ok = register_and_finish(sessions, claim, request, result)
        except JobStopped:
            log.info("model-add job %s was cancelled or taken over", claim.job_id)
            return "stopped"
        except Exception as exc:
            fail_job(sessions, claim, one_line_reason(exc, timeout_s=timeout_s))
            return "failed"
    return "done" if ok else "stopped"


def fetch_and_check(request: ModelAddRequest, report: Report) -> dict[str, Any]:
    """Download the model and the set, check that they fit; what the job's result says."""
    from glassbox.models.fetch import fetch_model
    from glassbox.transcoders.fetch import fetch_transcoders

    report("fetching the model", 0.0)
    facts = fetch_model(
        request.model_source, progress=lambda phase, fraction: report(phase, MODEL_SHARE * fraction)
    )
    tset = fetch_transcoders(
        request.transcoders_source,
        progress=lambda phase, fraction: report(phase, MODEL_SHARE + SET_SHARE * fraction),
    )
    tset.check_compatible(facts)
    report("registering", MODEL_SHARE + SET_SHARE)
    return {
        "model": request.name,
        "transcoders": request.transcoders_name,
        "model_type": facts.model_type,
        "n_layers": facts.n_layers,
        "d_model": facts.d_model,
        "transcoder_kind": tset.kind,
        "d_transcoder": tset.d_transcoder,
        "activation": tset.activation,
        "input_hook": tset.input_hook,
        "output_hook": tset.output_hook,
        "set_model_name": tset.model_name,
    }


def register_and_finish(
    sessions: SessionFactory, claim: Claim, request: ModelAddRequest, result: dict[str, Any]
) -> bool:
    """Register the model and the set and mark the job done, in one transaction: False (and
    nothing registered) when the job was cancelled or taken away meanwhile. `duration_s` stays
    empty: not a trace, so out of the trace-duration histogram."""
    with sessions() as session:
        registry.stage_model_with_set(
            session,
            name=request.name,
            source=request.model_source,
            display_name=request.display_name,
            set_name=request.transcoders_name,
            set_source=request.transcoders_source,
            description=describe_set(result, request.transcoders_source),
            n_layers=int(result["n_layers"]),
        )
        done = session.execute(
            update(Job).where(owned(claim)).values(**done_values(claim, result=result, duration_s=None))
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            log.warning("model-add job %s was taken from this worker; nothing is registered", claim.job_id)
            return False
        try:
            session.commit()
        except IntegrityError as exc:  # another request registered the same name meanwhile
            raise Conflict(
                f"model {request.name!r} or its set {request.transcoders_name!r} was registered "
                "meanwhile by another request"
            ) from exc
    log.info("model-add job %s done: %s with %s", claim.job_id, request.name, request.transcoders_name)
    return True


def describe_set(result: dict[str, Any], source: str) -> str:
    kind = "cross-layer" if result["transcoder_kind"] == "clt" else "per-layer"
    return (
        f"{kind} transcoders, {result['n_layers']} layers x {result['d_transcoder']} features "
        f"({result['activation']}), from {source}"
    )


def one_line_reason(exc: BaseException, *, timeout_s: float) -> str:
    """What the job row shows: the engine's or the registry's sentence, on one line."""
    if isinstance(exc, ServerError):
        text = exc.message
    else:
        text = failure_reason(exc, what=WHAT, timeout_s=timeout_s)
    return " ".join(text.split())[:MAX_REASON_CHARS]
