"""API schemas (what clients send and get), kept apart from the tables in persistence/tables.py.

Every input model forbids unknown fields and bounds every number and string, so bad input is
a 422 with a message, never a database error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from persistence.graphs import SLUG_PATTERN, graph_parameters, graph_title
from persistence.tables import (
    ApiKey,
    Comment,
    GraphRecord,
    GraphSource,
    Job,
    JobStatus,
    ModelEntry,
    Subgraph,
    TranscoderSetEntry,
    User,
    Visibility,
)

MAX_INT = 2**31 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,40}$")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- accounts ------------------------------------------------------------------------------


class UserCreate(Input):
    username: Username = Field(description="3-40 letters, digits, '.', '_' or '-'; case-insensitive.")
    password: Annotated[Text, Field(min_length=8, max_length=256)]


class LoginRequest(Input):
    username: Annotated[Text, Field(min_length=1, max_length=40)]
    password: Annotated[Text, Field(min_length=1, max_length=256)]


class UserProfile(BaseModel):
    """An account as anyone may see it."""

    id: int
    username: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserProfile:
        return cls(id=user.id, username=user.username, created_at=user.created_at)


class UserPublic(UserProfile):
    """An account as its owner and administrators see it: with its role."""

    is_admin: bool

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(id=user.id, username=user.username, is_admin=user.is_admin, created_at=user.created_at)


class SessionInfo(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on writes made with the cookie.")


class ApiKeyCreate(Input):
    name: Annotated[Text, Field(min_length=1, max_length=80)]


class ApiKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked=key.revoked_at is not None,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself; shown once. Send as `Authorization: Bearer <key>`.")


# ---- registry and tokenization -------------------------------------------------------------


class ModelCreate(Input):
    name: Name
    source: Annotated[Text, Field(min_length=1, max_length=500, description="What load_model is given.")]
    display_name: Annotated[Text, Field(max_length=200)] | None = None


class TranscoderSetCreate(Input):
    name: Name
    source: Annotated[Text, Field(min_length=1, max_length=500)]
    description: Annotated[Text, Field(max_length=5000)] = ""
    n_layers: Annotated[int, Field(ge=1, le=1000)] | None = None
    is_default: bool = False


class TranscoderSetPublic(BaseModel):
    name: str
    description: str
    n_layers: int | None
    is_default: bool

    @classmethod
    def of(cls, tset: TranscoderSetEntry) -> TranscoderSetPublic:
        return cls(
            name=tset.name, description=tset.description, n_layers=tset.n_layers, is_default=tset.is_default
        )


class ModelPublic(BaseModel):
    name: str
    display_name: str
    enabled: bool
    transcoder_sets: list[TranscoderSetPublic]
    chat_template: bool | None = Field(
        default=None,
        description="Whether the model's tokenizer has a chat template, so a trace may give chat "
        "`messages`; null: not known yet (the model's files are not on the server).",
    )

    @classmethod
    def of(cls, model: ModelEntry, *, chat_template: bool | None = None) -> ModelPublic:
        sets = [TranscoderSetPublic.of(t) for t in model.transcoder_sets]
        return cls(
            name=model.name,
            display_name=model.display_name,
            enabled=model.enabled,
            transcoder_sets=sets,
            chat_template=chat_template,
        )


class ModelAddCreate(Input):
    """A model and a transcoder set to download, check and register as a job (administrators)."""

    model: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=500,
            description="Hub id (owner/name), demo model name, or an absolute folder on the server.",
        ),
    ]
    transcoders: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=500,
            description="Hub reference (owner/repo[/folder][@revision] or hf://...), alias (gemma, "
            "llama), or an absolute folder on the server.",
        ),
    ]
    name: Name | None = Field(default=None, description="Registry name; default: from the reference.")
    transcoders_name: Name | None = Field(
        default=None, description="Name of the set; default: from the reference."
    )
    display_name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class TokenizeRequest(Input):
    prompt: Annotated[Text, Field(max_length=100_000)]
    top_k: Annotated[int, Field(ge=0, le=100)] = 10


class TargetTokensRequest(Input):
    text: Annotated[Text, Field(max_length=100)]


class TargetTokensResponse(BaseModel):
    """How a custom target's text splits into tokens; a target must be exactly one."""

    model: str
    text: str
    token_ids: list[int]
    tokens: list[str]
    n_tokens: int
    problem: str | None = Field(description="Why the text cannot be a target; null when it can.")


class NextToken(BaseModel):
    token: str
    prob: float


class TokenizeResponse(BaseModel):
    model: str
    token_ids: list[int]
    tokens: list[str]
    n_tokens: int
    max_tokens: int
    top_next: list[NextToken]


# ---- traces and jobs -----------------------------------------------------------------------


TokenText = Annotated[Text, Field(min_length=1, max_length=100)]


class LogitDiff(Input):
    """A custom target: the difference of two single-token logits, e.g. " Austin" - " Dallas"."""

    plus: TokenText
    minus: TokenText


# Feature nodes a trace visits unless the request says otherwise. Every active feature (null)
# costs 2.5-7x the CPU time on 6-14 token prompts for 0.01-0.03 more replacement score
# (bench/RESULTS.md, "Submit to graph"); the featured graphs use the same 1,000.
DEFAULT_MAX_FEATURE_NODES = 1000


class TraceParams(Input):
    """Options of glassbox.trace; defaults follow circuit-tracer's, except max_feature_nodes."""

    max_n_logits: Annotated[int, Field(ge=1, le=50)] = 10
    desired_logit_prob: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    max_feature_nodes: Annotated[int, Field(ge=1, le=MAX_INT)] | None = Field(
        default=DEFAULT_MAX_FEATURE_NODES,
        description="Most feature nodes (features visited in order of influence on the logits); "
        "null: every active feature (slow beyond a few tokens on a CPU).",
    )
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 64
    node_threshold: Fraction = 0.8
    edge_threshold: Fraction = 0.98
    logit_diff: LogitDiff | None = Field(
        default=None, description="Trace to logit(plus) - logit(minus) instead of the top logits."
    )


class ChatMessage(Input):
    role: Literal["system", "user", "assistant"]
    content: Annotated[Text, Field(max_length=20_000)]


ChatMessages = Annotated[list[ChatMessage], Field(min_length=1, max_length=50)]


class TraceCreate(Input):
    model: Name
    transcoders: Name | None = Field(
        default=None, description="Transcoder set; default: the model's default."
    )
    prompt: Annotated[Text, Field(max_length=100_000)] = Field(
        default="", description="The prompt; or give `messages` instead."
    )
    messages: ChatMessages | None = Field(
        default=None,
        description="Chat messages instead of a prompt: the model's chat template makes the prompt "
        "of them (a model without one answers 422; see `chat_template` in GET /api/models).",
    )
    params: TraceParams = Field(default_factory=TraceParams)
    slug: Slug | None = Field(default=None, description="Slug of the graph; default: made from the prompt.")
    visibility: Visibility = Visibility.PUBLIC

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> TraceCreate:
        if self.messages is not None and self.prompt:
            raise ValueError("give a prompt or chat messages, not both")
        return self


class JobPublic(BaseModel):
    id: str
    status: JobStatus
    progress: float
    phase: str | None
    error: str | None
    attempt: int
    prompt: str
    model: str | None
    transcoders: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    graph_slug: str | None
    kind: str = "trace"
    result: dict[str, Any] | None = Field(
        default=None, description="What an intervention job computed (once done)."
    )
    deduplicated: bool = False

    @classmethod
    def of(cls, job: Job, *, deduplicated: bool = False) -> JobPublic:
        request: dict[str, Any] = job.request
        # a trace's graph once done; an intervention's graph is the one it experiments on
        graph_slug = job.graph.slug if job.graph is not None else request.get("graph_slug")
        return cls(
            id=job.id,
            status=job.status,
            progress=job.progress,
            phase=job.phase,
            error=job.error,
            attempt=job.attempt,
            prompt=request.get("prompt", ""),
            model=request.get("model"),
            transcoders=request.get("transcoders"),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            graph_slug=graph_slug,
            kind=job.kind,
            result=job.result,
            deduplicated=deduplicated,
        )


# ---- interventions -------------------------------------------------------------------------


class InterventionItem(Input):
    """One feature edit: `set` to `value`, `ablate` (to 0), or `scale` by `value`."""

    layer: Annotated[int, Field(ge=0, le=1000)]
    pos: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None, description="Token position (BOS is 0); empty: every position after BOS."
    )
    feature: Annotated[int, Field(ge=0, le=MAX_INT)]
    mode: Literal["set", "ablate", "scale"] = "set"
    value: Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)] = 0.0


class InterventionCreate(Input):
    interventions: Annotated[list[InterventionItem], Field(min_length=1, max_length=64)]
    max_new_tokens: Annotated[int, Field(ge=1, le=64)] = 20
    constrained: bool = Field(
        default=False, description="Hold attention, norms and MLPs at their clean values (linear paths only)."
    )


# ---- graphs --------------------------------------------------------------------------------


LIST_PROMPT_CHARS = 300  # a list row shows the start of a prompt; the graph's own page shows all


class GraphListItem(BaseModel):
    """A graph as lists show it (GET /api/graphs, the home page): the prompt cut to
    LIST_PROMPT_CHARS, no tokens or parameters, so a page of rows stays small whatever was
    uploaded. GET /api/graphs/{slug} has the rest."""

    slug: str
    title: str | None = Field(default=None, description="The name its owner gave it; null: none.")
    prompt: str
    scan: str
    model: str | None
    transcoders: str | None
    owner: str | None
    visibility: Visibility
    source: GraphSource
    node_count: int
    link_count: int
    size_bytes: int
    replacement_score: float | None
    completeness_score: float | None
    created_at: datetime
    data_url: str

    @classmethod
    def of(cls, g: GraphRecord) -> GraphListItem:
        return cls(**_graph_fields(g, prompt=_shortened(g.prompt, LIST_PROMPT_CHARS)))


class GraphPublic(GraphListItem):
    """A graph's metadata in full; its JSON is at `data_url`."""

    tokens: list[str]
    parameters: dict[str, Any]

    @classmethod
    def of(cls, g: GraphRecord) -> GraphPublic:
        return cls(**_graph_fields(g, prompt=g.prompt), tokens=g.tokens, parameters=graph_parameters(g))


def _shortened(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _graph_fields(g: GraphRecord, *, prompt: str) -> dict[str, Any]:
    return dict(
        slug=g.slug,
        title=graph_title(g),
        prompt=prompt,
        scan=g.scan,
        model=g.model.name if g.model else None,
        transcoders=g.transcoder_set.name if g.transcoder_set else None,
        owner=g.owner.username if g.owner else None,
        visibility=g.visibility,
        source=g.source,
        node_count=g.node_count,
        link_count=g.link_count,
        size_bytes=g.size_bytes,
        replacement_score=g.replacement_score,
        completeness_score=g.completeness_score,
        created_at=g.created_at,
        data_url=f"/api/graphs/{g.slug}/data",
    )


class GraphPage(BaseModel):
    items: list[GraphListItem]
    total: int
    limit: int
    offset: int


GraphTitle = Annotated[Text, Field(max_length=200)]


class GraphUpdate(Input):
    """What a graph's owner (or an administrator) may change; fields left out stay as they are."""

    visibility: Visibility | None = None
    title: GraphTitle | None = Field(
        default=None, description="A name for the graph, shown instead of its prompt; empty: none."
    )

    @model_validator(mode="after")
    def _something(self) -> GraphUpdate:
        if self.visibility is None and self.title is None:
            raise ValueError("give a visibility or a title")
        return self


# ---- features and labels -------------------------------------------------------------------


class FeatureRef(Input):
    layer: Annotated[int, Field(ge=0, le=10_000)]
    index: Annotated[int, Field(ge=0, le=MAX_INT)]


class FeatureBatchRequest(Input):
    features: Annotated[list[FeatureRef], Field(min_length=1, max_length=1000)]
    include_dashboards: bool = True


class ExplanationPublic(BaseModel):
    """An LLM's explanation of a feature and its provenance. A human `label` is shown before it,
    and it before the `auto_label`."""

    text: str
    score: float | None = Field(
        description="Share of held-out contexts (activating and not, half each) the explainer told "
        "apart given the explanation: 0.5 is chance, 1 perfect; null when none could be scored."
    )
    n_scored: int
    explainer_model: str
    prompt_version: str
    created_at: datetime
    requested_by: str | None = None


class FeaturePublic(BaseModel):
    model: str
    transcoders: str
    layer: int
    index: int
    auto_label: str | None
    label: str | None
    label_version: int
    activation_frequency: float | None = Field(
        default=None,
        description="Share of tokens the feature fires on (from its dashboard; null without one), "
        "also when the dashboard is left out.",
    )
    dashboard: dict[str, Any] | None = None
    explanation: ExplanationPublic | None = Field(
        default=None, description="The newest LLM explanation (POST .../explain makes one)."
    )


class DashboardUpload(Input):
    dashboard: dict[str, Any]
    auto_label: Annotated[Text, Field(max_length=2000)] | None = None


class LabelEdit(Input):
    text: Annotated[Text, Field(min_length=1, max_length=2000)]
    base_version: Annotated[int, Field(ge=0, le=MAX_INT - 1, description="label_version you edited.")]

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the label is empty")
        return value.strip()


class LabelRevert(Input):
    version: Annotated[int, Field(ge=1, le=MAX_INT, description="The version whose text comes back.")]
    base_version: Annotated[int, Field(ge=0, le=MAX_INT - 1)]  # the new version is one more


class LabelPublic(BaseModel):
    id: int
    version: int
    text: str
    author: str | None
    created_at: datetime
    reverted_from: int | None
    score: int
    my_vote: int


class VoteRequest(Input):
    value: Literal[-1, 0, 1]


# ---- comments and subgraphs ----------------------------------------------------------------


class CommentCreate(Input):
    text: Annotated[Text, Field(min_length=1, max_length=5000)]


class CommentPublic(BaseModel):
    id: int
    author: str | None
    text: str
    created_at: datetime

    @classmethod
    def of(cls, c: Comment) -> CommentPublic:
        author = c.author.username if c.author else None
        return cls(id=c.id, author=author, text=c.text, created_at=c.created_at)


NodeId = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]


class SubgraphFields(Input):
    title: Annotated[Text, Field(max_length=200)] = ""
    pinned_ids: Annotated[list[NodeId], Field(max_length=10_000)] = []
    supernodes: Annotated[list[Annotated[list[NodeId], Field(min_length=2)]], Field(max_length=1000)] = Field(
        default=[], description="[[label, node_id, ...], ...] as in Neuronpedia share URLs."
    )
    label_overrides: Annotated[
        dict[NodeId, Annotated[Text, Field(max_length=2000)]], Field(max_length=10_000)
    ] = {}
    pruning_threshold: Fraction | None = None
    density_threshold: Fraction | None = None
    visibility: Visibility = Visibility.PUBLIC


class SubgraphUpdate(Input):
    title: Annotated[Text, Field(max_length=200)] | None = None
    pinned_ids: Annotated[list[NodeId], Field(max_length=10_000)] | None = None
    supernodes: (
        Annotated[list[Annotated[list[NodeId], Field(min_length=2)]], Field(max_length=1000)] | None
    ) = None
    label_overrides: (
        Annotated[dict[NodeId, Annotated[Text, Field(max_length=2000)]], Field(max_length=10_000)] | None
    ) = None
    pruning_threshold: Fraction | None = None
    density_threshold: Fraction | None = None
    visibility: Visibility | None = None


class GuideContributor(BaseModel):
    """A node the suggested subgraph's note names: its direct edge into the target logit
    (signed; 0 when it has none) and its influence on it (a share, 0-1)."""

    node_id: str
    kind: str
    label: str
    direct: float
    influence: float


class SuggestedSubgraph(BaseModel):
    """A graph's suggested subgraph for its most likely output (glassbox.graph.guide): nodes to
    pin, supernodes ([[name, node id, ...], ...]) and a note computed from the graph's numbers."""

    version: int
    target: str
    token: str
    prob: float
    pinned_ids: list[str]
    supernodes: list[list[str]]
    note: list[str]
    carriers: list[GuideContributor]
    against: list[GuideContributor]
    shares: dict[str, float]


class SubgraphPublic(BaseModel):
    slug: str
    graph_slug: str
    title: str
    pinned_ids: list[str]
    supernodes: list[list[str]]
    label_overrides: dict[str, str]
    pruning_threshold: float | None
    density_threshold: float | None
    visibility: Visibility
    owner: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subgraph) -> SubgraphPublic:
        return cls(
            slug=s.slug,
            graph_slug=s.graph.slug,
            title=s.title,
            pinned_ids=s.pinned_ids,
            supernodes=s.supernodes,
            label_overrides=s.label_overrides,
            pruning_threshold=s.pruning_threshold,
            density_threshold=s.density_threshold,
            visibility=s.visibility,
            owner=s.owner.username if s.owner else None,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )
