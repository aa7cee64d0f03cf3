"""The model registry and the tokenization preview."""

from __future__ import annotations

from fastapi import APIRouter, Request

from persistence import registry
from persistence.tables import ModelEntry
from server.deps import AdminUser, AppServices, ServicesDep, SessionDep
from server.errors import problems
from server.limits import limit_previews
from server.routes.params import NamePath
from server.schemas import (
    ModelCreate,
    ModelPublic,
    NextToken,
    TargetTokensRequest,
    TargetTokensResponse,
    TokenizeRequest,
    TokenizeResponse,
    TranscoderSetCreate,
    TranscoderSetPublic,
)
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api/models", tags=["models"], route_class=StrictJSONRoute)


def model_public(model: ModelEntry, services: AppServices) -> ModelPublic:
    """A model as the API shows it, with whether it has a chat template (from its files)."""
    return ModelPublic.of(model, chat_template=services.preview.chat_template(model.source))


@router.get("")
def list_models(session: SessionDep, services: ServicesDep) -> list[ModelPublic]:
    """Models that can be traced, with their transcoder sets."""
    return [model_public(m, services) for m in registry.list_models(session)]


@router.post("", status_code=201, responses=problems(401, 403, 409))
def add_model(body: ModelCreate, admin: AdminUser, session: SessionDep) -> ModelPublic:
    """Register a model (administrators). `source` is a Glassbox model name, a folder or a hub id."""
    model = registry.add_model(session, name=body.name, source=body.source, display_name=body.display_name)
    return ModelPublic.of(model)


@router.get("/{name}", responses=problems(404))
def get_model(name: NamePath, session: SessionDep, services: ServicesDep) -> ModelPublic:
    return model_public(registry.get_model(session, name), services)


@router.post("/{name}/transcoder-sets", status_code=201, responses=problems(401, 403, 404, 409))
def add_transcoder_set(
    name: NamePath, body: TranscoderSetCreate, admin: AdminUser, session: SessionDep
) -> TranscoderSetPublic:
    """Register a transcoder set for a model (administrators)."""
    model = registry.get_model(session, name)
    tset = registry.add_transcoder_set(
        session,
        model,
        name=body.name,
        source=body.source,
        description=body.description,
        n_layers=body.n_layers,
        is_default=body.is_default,
    )
    return TranscoderSetPublic.of(tset)


@router.post("/{name}/tokenize", responses=problems(404, 429))
def tokenize(
    name: NamePath, body: TokenizeRequest, request: Request, session: SessionDep, services: ServicesDep
) -> TokenizeResponse:
    """How the model splits a prompt (BOS included), and its most likely next tokens."""
    limit_previews(services, request)
    s = services.settings
    model = registry.get_model(session, name)
    session.close()  # release the connection while the model works
    top_k = min(body.top_k, s.preview_max_top_k)
    preview = services.preview.preview(model.source, body.prompt, top_k=top_k)
    return TokenizeResponse(
        model=name,
        token_ids=preview.token_ids,
        tokens=preview.tokens,
        n_tokens=len(preview.token_ids),
        max_tokens=s.max_prompt_tokens,
        top_next=[NextToken(token=t, prob=p) for t, p in preview.top_next],
    )


@router.post("/{name}/tokenize-target", responses=problems(404, 429))
def tokenize_target(
    name: NamePath, body: TargetTokensRequest, request: Request, session: SessionDep, services: ServicesDep
) -> TargetTokensResponse:
    """How the text of a custom target (a token of a logit difference) splits into tokens,
    without BOS; `problem` says why it cannot be a target (it must be exactly one token)."""
    limit_previews(services, request)
    model = registry.get_model(session, name)
    session.close()  # release the connection while the tokenizer works
    found = services.preview.target_tokens(model.source, body.text)
    return TargetTokensResponse(
        model=name,
        text=body.text,
        token_ids=found.token_ids,
        tokens=found.tokens,
        n_tokens=len(found.token_ids),
        problem=found.problem,
    )
