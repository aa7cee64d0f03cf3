"""Features: dashboards (written by the features builder), labels with history, votes.

Label edits use optimistic locking: the client says which `label_version` it edited, and the
update only applies if that is still the current version (a conditional UPDATE, so two
servers cannot both win). A stale edit gets 409 with the current label; nothing is lost.
"""

from __future__ import annotations

import gzip
import json

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from persistence.errors import Conflict, NotFound
from persistence.features import (
    FeatureAddress,
    activation_frequencies,
    check_layer,
    ensure_feature,
    find_feature,
    frequency_of,
)
from persistence.tables import Feature, FeatureLabel, LabelVote, TranscoderSetEntry, User, utcnow
from server.schemas import ExplanationPublic, FeaturePublic, LabelPublic
from server.services.explanations import explanations_of


def feature_public(
    addr: FeatureAddress,
    feature: Feature | None,
    *,
    with_dashboard: bool,
    explanation: ExplanationPublic | None = None,
    frequency: float | None = None,
) -> FeaturePublic:
    """`frequency`: the activation frequency when the dashboard is not loaded
    (persistence.features.activation_frequencies)."""
    dashboard = None
    if with_dashboard and feature is not None and feature.dashboard_gz is not None:
        # NaN/Infinity in rows stored before JSON bodies were read strictly read as null
        dashboard = json.loads(gzip.decompress(feature.dashboard_gz), parse_constant=lambda _: None)
        frequency = frequency_of(dashboard)
    return FeaturePublic(
        model=addr.tset.model.name,
        transcoders=addr.tset.name,
        layer=addr.layer,
        index=addr.index,
        auto_label=feature.auto_label if feature else None,
        label=feature.label if feature else None,
        label_version=feature.label_version if feature else 0,
        activation_frequency=frequency,
        dashboard=dashboard,
        explanation=explanation,
    )


def get_features(
    session: Session, tset: TranscoderSetEntry, refs: list[tuple[int, int]], *, with_dashboards: bool
) -> list[FeaturePublic]:
    """Many features at once, in the order asked; unknown ones come back empty."""
    for layer, _ in refs:
        check_layer(tset, layer)
    stmt = select(Feature).where(
        Feature.transcoder_set_id == tset.id, tuple_(Feature.layer, Feature.index).in_(refs)
    )
    if with_dashboards:
        stmt = stmt.options(undefer(Feature.dashboard_gz))
    found = {(f.layer, f.index): f for f in session.scalars(stmt)}
    explained = explanations_of(session, list(found.values()))
    frequencies = {} if with_dashboards else activation_frequencies(session, [f.id for f in found.values()])
    return [
        feature_public(
            FeatureAddress(tset, layer, index),
            feature,
            with_dashboard=with_dashboards,
            explanation=explained.get(feature.id) if feature is not None else None,
            frequency=frequencies.get(feature.id) if feature is not None else None,
        )
        for layer, index in refs
        for feature in [found.get((layer, index))]
    ]


# ---- labels --------------------------------------------------------------------------------


def edit_label(
    session: Session,
    addr: FeatureAddress,
    user: User,
    *,
    text: str,
    base_version: int,
    reverted_from: int | None = None,
) -> Feature:
    """Write a new label version if `base_version` is still current; else 409."""
    feature = ensure_feature(session, addr)
    new_version = base_version + 1
    result = session.execute(
        update(Feature)
        .where(Feature.id == feature.id, Feature.label_version == base_version)
        .values(label=text, label_version=new_version, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise _stale_edit(session, addr, base_version)
    session.add(
        FeatureLabel(
            feature_id=feature.id,
            version=new_version,
            text=text,
            author_id=user.id,
            reverted_from=reverted_from,
        )
    )
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise _stale_edit(session, addr, base_version) from exc
    session.refresh(feature)
    return feature


def _stale_edit(session: Session, addr: FeatureAddress, base_version: int) -> Conflict:
    current = find_feature(session, addr)
    version = current.label_version if current else 0
    label = current.label if current else None
    return Conflict(
        f"the label changed since version {base_version} (now version {version}); "
        "reload, merge your edit and send it with the new base_version",
        details={"label_version": version, "label": label},
    )


def revert_label(
    session: Session, addr: FeatureAddress, user: User, *, version: int, base_version: int
) -> Feature:
    """Bring back the text of an older version, as a new version (history is kept)."""
    feature = find_feature(session, addr)
    old = None
    if feature is not None:
        old = session.scalar(
            select(FeatureLabel).where(FeatureLabel.feature_id == feature.id, FeatureLabel.version == version)
        )
    if old is None:
        raise NotFound(f"label version {version} not found")
    return edit_label(session, addr, user, text=old.text, base_version=base_version, reverted_from=version)


def label_history(session: Session, addr: FeatureAddress, user: User | None) -> list[LabelPublic]:
    """Every version, newest first, with vote scores."""
    feature = find_feature(session, addr)
    if feature is None:
        return []
    labels = session.scalars(
        select(FeatureLabel)
        .where(FeatureLabel.feature_id == feature.id)
        .order_by(FeatureLabel.version.desc())
    ).all()
    ids = [label.id for label in labels]
    scores = dict(
        session.execute(
            select(LabelVote.label_id, func.sum(LabelVote.value))
            .where(LabelVote.label_id.in_(ids))
            .group_by(LabelVote.label_id)
        ).all()
    )
    mine: dict[int, int] = {}
    if user is not None:
        mine = dict(
            session.execute(
                select(LabelVote.label_id, LabelVote.value).where(
                    LabelVote.label_id.in_(ids), LabelVote.user_id == user.id
                )
            ).all()
        )
    return [
        LabelPublic(
            id=label.id,
            version=label.version,
            text=label.text,
            author=label.author.username if label.author else None,
            created_at=label.created_at,
            reverted_from=label.reverted_from,
            score=int(scores.get(label.id) or 0),
            my_vote=int(mine.get(label.id, 0)),
        )
        for label in labels
    ]


def vote(session: Session, label_id: int, user: User, *, value: int) -> None:
    """Up (+1), down (-1) or withdraw (0) one user's vote on a label version."""
    if session.get(FeatureLabel, label_id) is None:
        raise NotFound(f"label {label_id} not found")
    row = session.scalar(
        select(LabelVote).where(LabelVote.label_id == label_id, LabelVote.user_id == user.id)
    )
    if value == 0:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(LabelVote(label_id=label_id, user_id=user.id, value=value))
    else:
        row.value = value
    session.commit()
