"""Database tables (SQLAlchemy 2, `Mapped[...]`). API schemas live apart, in server/schemas.py.

Enums are stored as their string values in VARCHAR columns (no native database enums), so
migrations stay plain and SQLite and Postgres behave alike. Large JSON (graphs, feature
dashboards) is stored gzip-compressed in binary columns that are loaded only on request.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(cls: type[enum.Enum]) -> Enum:
    """A str-Enum column stored as its values in a VARCHAR."""
    return Enum(
        cls,
        native_enum=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class JobKind(enum.StrEnum):
    """What a job does: trace a prompt into a graph, or run interventions on a graph's prompt."""

    TRACE = "trace"
    INTERVENTION = "intervention"
    SETUP = "setup"  # the demo setup (firststart); not run by the trace runner
    MODEL_ADD = "model-add"  # download, check and register a model and set (worker.model_add)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # listed and searchable
    UNLISTED = "unlisted"  # anyone with the link
    PRIVATE = "private"  # owner and administrators


class GraphSource(enum.StrEnum):
    TRACE = "trace"
    IMPORT = "import"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


# ---- accounts ------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginSession(Base):
    """A cookie session; only the SHA-256 of the token is stored."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship(lazy="joined")


class ApiKey(Base):
    """A bearer key for scripts; only the SHA-256 of the key is stored, the prefix is for display."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


# ---- registry ------------------------------------------------------------------------------


class ModelEntry(Base):
    """A language model the server offers; `source` is what `glassbox.load_model` is given."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    transcoder_sets: Mapped[list[TranscoderSetEntry]] = relationship(
        back_populates="model", order_by="TranscoderSetEntry.id", lazy="selectin"
    )


class TranscoderSetEntry(Base):
    """A transcoder set for a model; `source` is what `glassbox.load_transcoders` is given."""

    __tablename__ = "transcoder_sets"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    n_layers: Mapped[int | None]
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[ModelEntry] = relationship(back_populates="transcoder_sets", lazy="joined")


# ---- graphs and jobs -----------------------------------------------------------------------


class GraphRecord(Base):
    """An attribution graph's metadata; the JSON itself is in `GraphBlob`."""

    __tablename__ = "graphs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    prompt: Mapped[str] = mapped_column(Text)
    tokens: Mapped[list[Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scan: Mapped[str] = mapped_column(String(200), default="")
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    transcoder_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("transcoder_sets.id", ondelete="SET NULL")
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility), default=Visibility.PUBLIC)
    source: Mapped[GraphSource] = mapped_column(str_enum(GraphSource))
    node_count: Mapped[int] = mapped_column(Integer, default=0)
    link_count: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    replacement_score: Mapped[float | None] = mapped_column(Float)
    completeness_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    owner: Mapped[User | None] = relationship(lazy="joined")
    model: Mapped[ModelEntry | None] = relationship(lazy="joined")
    transcoder_set: Mapped[TranscoderSetEntry | None] = relationship(lazy="joined")


class GraphBlob(Base):
    __tablename__ = "graph_blobs"

    graph_id: Mapped[int] = mapped_column(ForeignKey("graphs.id", ondelete="CASCADE"), primary_key=True)
    data_gz: Mapped[bytes] = mapped_column(LargeBinary)


class Job(Base):
    """A job (a trace, or an intervention run: `kind`) and its lifecycle. The database, not
    Redis, is the record of truth; a non-trace job keeps what it computed in `result`.

    `attempt` counts how many times the job was handed to the queue; the RQ job id is
    `{id}-{attempt}`. `request_key` is the hash that deduplicates identical requests; at most
    one queued or running job per key (partial unique index).
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "uq_jobs_active_request_key",
            "request_key",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus), default=JobStatus.QUEUED)
    request_key: Mapped[str] = mapped_column(String(64), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(32), default="trace", server_default="trace")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what a non-trace job returns
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    transcoder_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("transcoder_sets.id", ondelete="SET NULL")
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    graph_id: Mapped[int | None] = mapped_column(ForeignKey("graphs.id", ondelete="SET NULL"))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    phase: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    worker_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)

    graph: Mapped[GraphRecord | None] = relationship(lazy="joined")


# ---- features, labels, comments, subgraphs -------------------------------------------------


class Feature(Base):
    """One transcoder feature: its dashboard (from the features builder), auto label and label.

    `label`/`label_version` mirror the newest row of `feature_labels`; writers compare
    `label_version` to the version they edited (optimistic locking) so no edit is lost.
    """

    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("transcoder_set_id", "layer", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transcoder_set_id: Mapped[int] = mapped_column(ForeignKey("transcoder_sets.id", ondelete="CASCADE"))
    layer: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    auto_label: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    label_version: Mapped[int] = mapped_column(Integer, default=0)
    dashboard_gz: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeatureLabel(Base):
    """One version of a feature's label (full history: author, time, text)."""

    __tablename__ = "feature_labels"
    __table_args__ = (UniqueConstraint("feature_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reverted_from: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship(lazy="joined")


class FeatureExplanation(Base):
    """An LLM's explanation of a feature, with its score and provenance; every one is kept and
    the newest is shown. A human label (`feature_labels`) takes precedence over it."""

    __tablename__ = "feature_explanations"

    id: Mapped[int] = mapped_column(primary_key=True)
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)  # accuracy on held-out contexts
    n_scored: Mapped[int] = mapped_column(Integer, default=0)
    explainer_model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(64))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    requested_by: Mapped[User | None] = relationship(lazy="joined")


class LabelVote(Base):
    __tablename__ = "label_votes"
    __table_args__ = (
        UniqueConstraint("label_id", "user_id"),
        CheckConstraint("value IN (-1, 1)", name="value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("feature_labels.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    value: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    """A comment on a graph or on a feature (exactly one of the two)."""

    __tablename__ = "comments"
    __table_args__ = (CheckConstraint("(graph_id IS NULL) <> (feature_id IS NULL)", name="one_target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    graph_id: Mapped[int | None] = mapped_column(ForeignKey("graphs.id", ondelete="CASCADE"), index=True)
    feature_id: Mapped[int | None] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship(lazy="joined")


class Subgraph(Base):
    """A saved view of a graph (pinned nodes, supernodes, label overrides, thresholds)."""

    __tablename__ = "subgraphs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    graph_id: Mapped[int] = mapped_column(ForeignKey("graphs.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200), default="")
    pinned_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    supernodes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    label_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pruning_threshold: Mapped[float | None] = mapped_column(Float)
    density_threshold: Mapped[float | None] = mapped_column(Float)
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility), default=Visibility.PUBLIC)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    graph: Mapped[GraphRecord] = relationship(lazy="joined")
    owner: Mapped[User | None] = relationship(lazy="joined")
