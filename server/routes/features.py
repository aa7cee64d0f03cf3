"""Features: dashboards, labels (history, edit, revert, votes) and comments."""

from __future__ import annotations

from fastapi import APIRouter, Response

from persistence import features as feature_rows
from persistence import registry
from server.deps import AdminUser, CurrentUser, OptionalUser, SessionDep
from server.errors import problems
from server.routes.params import FeatureIndex, IntId, Layer, NamePath
from server.schemas import (
    CommentCreate,
    CommentPublic,
    DashboardUpload,
    FeatureBatchRequest,
    FeaturePublic,
    LabelEdit,
    LabelPublic,
    LabelRevert,
    VoteRequest,
)
from server.services import comments, explanations, features
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api", tags=["features"], route_class=StrictJSONRoute)
FEATURE = "/features/{model}/{transcoders}/{layer}/{index}"


@router.get(FEATURE, responses=problems(404))
def get_feature(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    session: SessionDep,
    dashboard: bool = True,
) -> FeaturePublic:
    """A feature's label, auto label, newest LLM explanation and dashboard (null until the features
    builder made one)."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    feature = feature_rows.find_feature(session, addr, with_dashboard=dashboard)
    explanation = explanations.explanation_of(session, feature)
    frequency = None
    if feature is not None and not dashboard:
        frequency = feature_rows.activation_frequencies(session, [feature.id]).get(feature.id)
    return features.feature_public(
        addr, feature, with_dashboard=dashboard, explanation=explanation, frequency=frequency
    )


@router.post("/features/{model}/{transcoders}/batch", responses=problems(404))
def get_features(
    model: NamePath, transcoders: NamePath, body: FeatureBatchRequest, session: SessionDep
) -> list[FeaturePublic]:
    """Up to 1000 features in one request, in the order asked."""
    tset = registry.get_transcoder_set(session, registry.get_model(session, model), transcoders)
    refs = [(f.layer, f.index) for f in body.features]
    return features.get_features(session, tset, refs, with_dashboards=body.include_dashboards)


@router.put(FEATURE + "/dashboard", responses=problems(401, 403, 404))
def put_dashboard(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    body: DashboardUpload,
    admin: AdminUser,
    session: SessionDep,
) -> FeaturePublic:
    """Store a feature's dashboard JSON and auto label (administrators; the features builder)."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    feature = feature_rows.store_dashboard(
        session, addr, dashboard=body.dashboard, auto_label=body.auto_label
    )
    return features.feature_public(addr, feature, with_dashboard=False)


@router.get(FEATURE + "/labels", tags=["labels"], responses=problems(401, 404))
def label_history(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    user: OptionalUser,
    session: SessionDep,
) -> list[LabelPublic]:
    """Every version of the label, newest first, with votes."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    return features.label_history(session, addr, user)


@router.put(FEATURE + "/label", tags=["labels"], responses=problems(401, 403, 404, 409))
def edit_label(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    body: LabelEdit,
    user: CurrentUser,
    session: SessionDep,
) -> FeaturePublic:
    """Write a new label. `base_version` must be the `label_version` you edited; if someone saved
    since, the answer is 409 with the current label in `details`, and nothing is overwritten."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    feature = features.edit_label(session, addr, user, text=body.text, base_version=body.base_version)
    return features.feature_public(addr, feature, with_dashboard=False)


@router.post(FEATURE + "/label/revert", tags=["labels"], responses=problems(401, 403, 404, 409))
def revert_label(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    body: LabelRevert,
    user: CurrentUser,
    session: SessionDep,
) -> FeaturePublic:
    """Make an older version's text current again (as a new version)."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    feature = features.revert_label(session, addr, user, version=body.version, base_version=body.base_version)
    return features.feature_public(addr, feature, with_dashboard=False)


@router.post("/labels/{label_id}/vote", status_code=204, tags=["labels"], responses=problems(401, 403, 404))
def vote(label_id: IntId, body: VoteRequest, user: CurrentUser, session: SessionDep) -> Response:
    """Vote a label version up (1) or down (-1), or withdraw the vote (0)."""
    features.vote(session, label_id, user, value=body.value)
    return Response(status_code=204)


@router.get(FEATURE + "/comments", tags=["comments"], responses=problems(404))
def list_feature_comments(
    model: NamePath, transcoders: NamePath, layer: Layer, index: FeatureIndex, session: SessionDep
) -> list[CommentPublic]:
    addr = feature_rows.address(session, model, transcoders, layer, index)
    feature = feature_rows.find_feature(session, addr)
    return [CommentPublic.of(c) for c in comments.list_comments(session, feature=feature)] if feature else []


@router.post(FEATURE + "/comments", status_code=201, tags=["comments"], responses=problems(401, 403, 404))
def add_feature_comment(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    body: CommentCreate,
    user: CurrentUser,
    session: SessionDep,
) -> CommentPublic:
    addr = feature_rows.address(session, model, transcoders, layer, index)
    feature = feature_rows.ensure_feature(session, addr)
    return CommentPublic.of(comments.add_comment(session, user, body.text, feature=feature))
