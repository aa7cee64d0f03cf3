"""The registry of models and transcoder sets that traces and features refer to by name."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from persistence.errors import Conflict, NotFound, Unprocessable
from persistence.tables import ModelEntry, TranscoderSetEntry


def list_models(session: Session, *, include_disabled: bool = False) -> list[ModelEntry]:
    stmt = select(ModelEntry).order_by(ModelEntry.name)
    if not include_disabled:
        stmt = stmt.where(ModelEntry.enabled.is_(True))
    return list(session.scalars(stmt))


def get_model(session: Session, name: str, *, error: type[NotFound | Unprocessable] = NotFound) -> ModelEntry:
    """The enabled model called `name`; the error lists the names that exist."""
    model = session.scalar(select(ModelEntry).where(ModelEntry.name == name, ModelEntry.enabled.is_(True)))
    if model is None:
        known = ", ".join(m.name for m in list_models(session)) or "none registered"
        raise error(f"unknown model {name!r} (known: {known})")
    return model


def get_transcoder_set(
    session: Session,
    model: ModelEntry,
    name: str | None,
    *,
    error: type[NotFound | Unprocessable] = NotFound,
) -> TranscoderSetEntry:
    """The named set of `model`, or its default (the one marked default, or the only one)."""
    sets = model.transcoder_sets
    if name is not None:
        found = [t for t in sets if t.name == name]
    else:
        found = [t for t in sets if t.is_default] or (sets if len(sets) == 1 else [])
    if not found:
        known = ", ".join(t.name for t in sets) or "none registered"
        what = f"transcoder set {name!r}" if name else "default transcoder set"
        raise error(f"model {model.name!r} has no {what} (known: {known})")
    return found[0]


def add_model(session: Session, *, name: str, source: str, display_name: str | None) -> ModelEntry:
    if session.scalar(select(ModelEntry.id).where(ModelEntry.name == name)) is not None:
        raise Conflict(f"a model named {name!r} exists")
    model = ModelEntry(name=name, source=source, display_name=display_name or name)
    session.add(model)
    session.commit()
    return model


def add_transcoder_set(
    session: Session,
    model: ModelEntry,
    *,
    name: str,
    source: str,
    description: str,
    n_layers: int | None,
    is_default: bool,
) -> TranscoderSetEntry:
    if any(t.name == name for t in model.transcoder_sets):
        raise Conflict(f"model {model.name!r} already has a transcoder set named {name!r}")
    if is_default:
        session.execute(
            update(TranscoderSetEntry).where(TranscoderSetEntry.model_id == model.id).values(is_default=False)
        )
    tset = TranscoderSetEntry(
        model_id=model.id,
        name=name,
        source=source,
        description=description,
        n_layers=n_layers,
        is_default=is_default,
    )
    session.add(tset)
    session.commit()
    session.refresh(model)
    return tset


def find_model(session: Session, name: str) -> ModelEntry | None:
    """The model called `name`, enabled or not."""
    return session.scalar(select(ModelEntry).where(ModelEntry.name == name))


def check_new_set(session: Session, *, name: str, source: str, set_name: str) -> ModelEntry | None:
    """Whether set `set_name` can be added to model `name` from `source`: the model (None when
    it is new), or Conflict when the name is the model of another source or the set exists."""
    model = find_model(session, name)
    if model is None:
        return None
    if model.source != source:
        raise Conflict(f"a model named {name!r} is registered from {model.source!r}, not {source!r}")
    if any(t.name == set_name for t in model.transcoder_sets):
        raise Conflict(f"model {name!r} already has a transcoder set named {set_name!r}")
    return model


def stage_model_with_set(
    session: Session,
    *,
    name: str,
    source: str,
    display_name: str,
    set_name: str,
    set_source: str,
    description: str,
    n_layers: int,
) -> tuple[ModelEntry, TranscoderSetEntry]:
    """Add a model (or take the one of that name from the same source, enabling it) and a
    transcoder set for it, without committing: the caller commits, so both appear at once
    (lists never show the model without its set), in the transaction that ends the job that
    checked them. The set becomes the model's default when the model has none."""
    model = check_new_set(session, name=name, source=source, set_name=set_name)
    if model is None:
        model = ModelEntry(name=name, source=source, display_name=display_name or name)
        session.add(model)
        session.flush()
    model.enabled = True
    tset = TranscoderSetEntry(
        model_id=model.id,
        name=set_name,
        source=set_source,
        description=description,
        n_layers=n_layers,
        is_default=not any(t.is_default for t in model.transcoder_sets),
    )
    session.add(tset)
    session.flush()
    return model, tset
