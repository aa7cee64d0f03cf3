"""LLM explanations of transcoder features, scored, through any OpenAI-compatible chat endpoint.

Hosted APIs and local servers (llama.cpp, vLLM, Ollama...) all answer
`POST {base_url}/chat/completions`; `ChatClient` speaks that with the standard library only.

Method (`PROMPT_VERSION`, stored with every explanation):
1. Evidence: the feature's activating contexts, strongest first, each with the token where it
   fires most, and the tokens its decoder promotes (top logits).
2. Some activating contexts are held out; the rest (at most `n_explain`) go to the explainer,
   the activating token marked <<like this>>, with the top logits. It answers with a phrase of
   at most 12 words.
3. Scoring: the held-out contexts and as many non-activating ones (random corpus windows, or
   other features' contexts), shuffled and unmarked, go back to the explainer with the
   explanation; it says for each whether the feature fires in it. The score is the share of
   right answers (0.5 is chance), over `n_scored` contexts.

    client = ChatClient("http://127.0.0.1:8080/v1", model="qwen2.5-7b-instruct")
    explanation = explain_store_feature(client, FeatureStore.open(folder), layer=3, feature=1234)
"""

from __future__ import annotations

import http.client
import json
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError

if TYPE_CHECKING:
    from glassbox.features.store import FeatureStore

PROMPT_VERSION = "glassbox-explain-v1"
MAX_WORDS = 12
N_EXPLAIN = 10  # activating contexts shown to the explainer
N_HOLDOUT = 5  # activating contexts kept back for scoring (and as many non-activating ones)
SCORE_BATCH = 10  # contexts judged per request
CONTEXT_BEFORE, CONTEXT_AFTER = 24, 8  # tokens kept around the activating one
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_ERROR_CHARS = 300

EXPLAIN_SYSTEM = (
    "You are an interpretability researcher. You explain what makes one feature of a language model "
    "activate, in plain words."
)
EXPLAIN_PROMPT = """Below are text excerpts on which one feature of a language model activates. In each \
excerpt the token where it activates most is marked <<like this>>.

{contexts}

Tokens the feature makes more likely to come next: {logits}

What does the feature respond to? Answer with one short phrase of at most {max_words} words and \
nothing else."""
SCORE_SYSTEM = "You predict where a feature of a language model activates, from a description of it."
SCORE_PROMPT = """A feature of a language model is described as: "{explanation}"

For each numbered excerpt below, decide whether the feature activates on one of its tokens.

{contexts}

Answer with a JSON list of {n} numbers in excerpt order: 1 if the feature activates in that excerpt, \
0 if it does not. Answer with the list only, e.g. [1, 0, 0]."""


# ---- errors ----------------------------------------------------------------------------------


class ExplainerError(GlassboxError):
    """The explainer endpoint cannot give an explanation (see the subclasses)."""


class ExplainerUnavailable(ExplainerError):
    """The endpoint is unreachable, too slow, or kept failing (5xx) through every retry."""


class ExplainerAuthError(ExplainerError):
    """The endpoint refused the API key (401, 403)."""


class ExplainerRateLimited(ExplainerUnavailable):
    """The endpoint kept answering 429 through every retry."""


class ExplainerResponseError(ExplainerError):
    """The endpoint answered, but not with a usable chat completion (bad JSON, wrong shape, 4xx)."""


# ---- the chat client -------------------------------------------------------------------------


@dataclass
class ChatClient:
    """A client of one OpenAI-compatible chat endpoint; `base_url` ends before /chat/completions
    (e.g. https://api.openai.com/v1, http://127.0.0.1:8080/v1). Retries 429 and 5xx answers
    `retries` times with exponential backoff (or the server's Retry-After). The API key is only
    ever sent in the Authorization header: never in errors or the repr."""

    base_url: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        url = (self.base_url or "").strip()
        if not re.match(r"^https?://[^/\s]+", url):
            raise ExplainerError(
                f"the explainer URL must start with http:// or https:// and name a host, not {url!r} "
                "(e.g. http://127.0.0.1:8080/v1)")
        self.base_url = url.rstrip("/")

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def complete(self, messages: Sequence[dict[str, str]], *,
                 max_tokens: int = 100) -> tuple[str, str | None]:
        """(the reply's text, the model the server says answered)."""
        body: dict[str, Any] = {"messages": list(messages), "temperature": 0, "max_tokens": max_tokens}
        if self.model:
            body["model"] = self.model
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "glassbox"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
                return self._reply(raw)
            except urllib.error.HTTPError as exc:
                status, detail = exc.code, _error_detail(exc)
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                if status in RETRY_STATUSES and attempt < self.retries:
                    self.sleep(self._delay(attempt, retry_after))
                    continue
                raise self._status_error(status, detail) from None
            except TimeoutError:
                raise ExplainerUnavailable(
                    f"the explainer at {self.base_url} did not answer within {self.timeout_s:g} s: give it "
                    "more time (GLASSBOX_EXPLAINER_TIMEOUT_S, or --timeout) or use a faster model") from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    raise ExplainerUnavailable(
                        f"the explainer at {self.base_url} did not answer within {self.timeout_s:g} s: give "
                        "it more time (GLASSBOX_EXPLAINER_TIMEOUT_S, or --timeout)") from None
                raise ExplainerUnavailable(
                    f"cannot reach the explainer at {self.base_url} ({exc.reason}): check the URL "
                    "(GLASSBOX_EXPLAINER_URL, or --url) and that its server is running") from None
            except (http.client.HTTPException, ConnectionError) as exc:
                raise ExplainerUnavailable(
                    f"the explainer at {self.base_url} broke off the answer ({type(exc).__name__}: {exc})"
                ) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_backoff_s, self.backoff_s * 2**attempt)

    def _status_error(self, status: int, detail: str) -> ExplainerError:
        said = f" ({detail})" if detail else ""
        if status in (401, 403):
            return ExplainerAuthError(
                f"the explainer at {self.base_url} refused the request (HTTP {status}{said}): check the "
                "API key (GLASSBOX_EXPLAINER_API_KEY, or --api-key)")
        if status == 429:
            return ExplainerRateLimited(
                f"the explainer at {self.base_url} is rate limiting (HTTP 429{said}) through {self.retries} "
                "retries: wait, or raise the account's limits")
        if status >= 500:
            return ExplainerUnavailable(
                f"the explainer at {self.base_url} failed (HTTP {status}{said}) through {self.retries} "
                "retries")
        if status == 404:
            return ExplainerResponseError(
                f"no chat endpoint at {self.url} (HTTP 404{said}): the base URL usually ends in /v1, "
                "or the model name is unknown to it")
        return ExplainerResponseError(
            f"the explainer at {self.base_url} refused the request (HTTP {status}{said})")

    def _reply(self, raw: bytes) -> tuple[str, str | None]:
        try:
            doc = json.loads(raw)
            content = doc["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            shown = raw[:120].decode("utf-8", "replace")
            raise ExplainerResponseError(
                f"the explainer at {self.base_url} did not answer with a chat completion (JSON with "
                f"choices[0].message.content), but {shown!r}: is the URL an OpenAI-compatible API?") from None
        if not isinstance(content, str):
            raise ExplainerResponseError(f"the explainer at {self.base_url} sent no text in its answer")
        answered_by = doc.get("model") if isinstance(doc.get("model"), str) else None
        return content, answered_by


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's own words about an error status, short (its JSON `error.message` if any)."""
    try:
        raw = exc.read()
    except Exception:
        return ""
    text = raw.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
        error = doc.get("error") if isinstance(doc, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            text = message
    except ValueError:
        pass
    return " ".join(text.split())[:MAX_ERROR_CHARS]


# ---- evidence --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """A text excerpt as tokens; `peak` is the index of the token where the feature fires most
    (None for a non-activating excerpt)."""

    tokens: tuple[str, ...]
    peak: int | None = None
    act: float = 0.0


@dataclass(frozen=True)
class FeatureEvidence:
    contexts: tuple[Context, ...]  # activating, strongest first
    top_logits: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    text: str
    score: float | None  # accuracy on the held-out contexts; None when none could be scored
    n_scored: int
    explainer_model: str
    prompt_version: str
    created_at: datetime


def _context(example: dict[str, Any], *, marked: bool) -> Context | None:
    tokens = example.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        return None
    acts = example.get("tokens_acts_list") or []
    peak = example.get("max_index")
    if not isinstance(peak, int) or not 0 <= peak < len(tokens):
        values = [float(a) if isinstance(a, int | float) else 0.0 for a in acts[: len(tokens)]]
        peak = max(range(len(values)), key=values.__getitem__) if values else 0
    act = example.get("act")
    if not isinstance(act, int | float):
        act = float(acts[peak]) if peak < len(acts) and isinstance(acts[peak], int | float) else 0.0
    lo, hi = max(0, peak - CONTEXT_BEFORE), min(len(tokens), peak + CONTEXT_AFTER + 1)
    cut = tuple(str(t) for t in tokens[lo:hi])
    return Context(cut, peak - lo if marked else None, float(act))


def dashboard_examples(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every example of a dashboard (feature-details format), strongest group first."""
    groups = dashboard.get("examples_quantiles") or []
    return [ex for g in groups if isinstance(g, dict)
            for ex in (g.get("examples") or []) if isinstance(ex, dict)]


def evidence_from_dashboard(dashboard: dict[str, Any]) -> FeatureEvidence:
    """What the explainer is told, from a dashboard (FeatureStore.get, or the server's copy)."""
    contexts, seen = [], set()
    for example in dashboard_examples(dashboard):
        context = _context(example, marked=True)
        if context is None or context.act <= 0:
            continue
        key = example.get("train_token_ind", context.tokens)  # one example can be in two groups
        if key in seen:
            continue
        seen.add(key)
        contexts.append(context)
    logits = tuple(str(t) for t in (dashboard.get("top_logits") or [])[:10])
    return FeatureEvidence(tuple(contexts), logits)


def contexts_of_other_features(dashboards: Sequence[dict[str, Any]], *, exclude: FeatureEvidence,
                               seed: int = 0) -> list[Context]:
    """Non-activating stand-ins: one random example of each other feature's dashboard, unmarked,
    skipping any whose text is one of this feature's own contexts."""
    rng = random.Random(seed)
    own = {c.tokens for c in exclude.contexts}
    out = []
    for dashboard in dashboards:
        examples = dashboard_examples(dashboard)
        if not examples:
            continue
        context = _context(rng.choice(examples), marked=False)
        if context is not None and context.tokens not in own:
            out.append(context)
    return out


def random_contexts(store: FeatureStore, layer: int, feature: int, n: int, *, seed: int = 0) -> list[Context]:
    """`n` random windows of the store's corpus, from rows where none of the feature's stored
    examples lie (so they are most likely non-activating; a sparse feature rarely fires in one)."""
    tokens = store.tokens
    rows, seq_len = tokens.shape
    examples = dashboard_examples(store.get(layer, feature))
    busy = {int(ex["train_token_ind"]) // seq_len
            for ex in examples if isinstance(ex.get("train_token_ind"), int)}
    free = [r for r in range(rows) if r not in busy]
    width = min(seq_len - 1, CONTEXT_BEFORE + 1 + CONTEXT_AFTER)
    rng = random.Random(seed)
    out = []
    for row in rng.sample(free, min(n, len(free))):
        start = rng.randrange(1, seq_len - width + 1)  # column 0 is BOS
        ids = tokens[row, start: start + width].tolist()
        out.append(Context(tuple(str(t) for t in store.vocab[ids].tolist())))
    return out


# ---- prompts and answers ---------------------------------------------------------------------


def _visible(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def render_context(context: Context) -> str:
    """One excerpt on one line; the activating token (if any) as <<token>>."""
    parts = [_visible(t) for t in context.tokens]
    if context.peak is not None:
        parts[context.peak] = f"<<{parts[context.peak]}>>"
    return "".join(parts).strip()


def _numbered(contexts: Sequence[Context]) -> str:
    return "\n".join(f"{i}. {render_context(c)}" for i, c in enumerate(contexts, 1))


def explain_messages(shown: Sequence[Context], top_logits: Sequence[str]) -> list[dict[str, str]]:
    logits = ", ".join(json.dumps(t, ensure_ascii=False) for t in top_logits) or "(none)"
    user = EXPLAIN_PROMPT.format(contexts=_numbered(shown), logits=logits, max_words=MAX_WORDS)
    return [{"role": "system", "content": EXPLAIN_SYSTEM}, {"role": "user", "content": user}]


def score_messages(explanation: str, contexts: Sequence[Context]) -> list[dict[str, str]]:
    user = SCORE_PROMPT.format(explanation=explanation, contexts=_numbered(contexts), n=len(contexts))
    return [{"role": "system", "content": SCORE_SYSTEM}, {"role": "user", "content": user}]


_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_PREFIX = re.compile(r"^(?:explanation|answer|description|feature|label)\s*:\s*", re.I)


def clean_explanation(reply: str) -> str:
    """The explanation in a reply: its first line of text, without a reasoning block, a leading
    "Explanation:", quotes or a final period, cut to MAX_WORDS words."""
    text = _THINK.sub("", reply)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line.lstrip("-*# ").strip())
    line = line.strip().strip("\"'`“”*").strip().rstrip(".").strip()
    words = line.split()
    if not words:
        raise ExplainerResponseError(f"the explainer's answer holds no explanation: {reply[:120]!r}")
    return " ".join(words[:MAX_WORDS])


def parse_predictions(reply: str, n: int) -> list[bool]:
    """The explainer's yes/no for each of `n` excerpts, from a JSON list of 0/1 in its reply."""
    text = _THINK.sub("", reply)
    for match in re.finditer(r"\[[^\[\]]*\]", text):
        try:
            values = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(values, list) and len(values) == n and all(v in (0, 1, True, False) for v in values):
            return [bool(v) for v in values]
    raise ExplainerResponseError(
        f"the explainer's answer to the scoring prompt is not a JSON list of {n} zeros and ones: "
        f"{reply[:160]!r}")


# ---- explaining and scoring ------------------------------------------------------------------


def split_contexts(contexts: Sequence[Context], *, n_explain: int = N_EXPLAIN, n_holdout: int = N_HOLDOUT,
                   seed: int = 0) -> tuple[list[Context], list[Context]]:
    """(shown to the explainer, held out for scoring): a random sample of at most `n_holdout`
    (and at most half) is held out; the strongest `n_explain` of the rest are shown."""
    k = min(n_holdout, len(contexts) // 2)
    held = set(random.Random(seed).sample(range(len(contexts)), k))
    shown = [c for i, c in enumerate(contexts) if i not in held][:n_explain]
    return shown, [contexts[i] for i in sorted(held)]


def score_explanation(client: ChatClient, explanation: str, activating: Sequence[Context],
                      non_activating: Sequence[Context], *, seed: int = 0) -> tuple[float | None, int]:
    """(accuracy, contexts judged): as many of each kind (the fewer decide), shuffled, judged in
    batches of SCORE_BATCH; (None, 0) when either kind is missing."""
    n = min(len(activating), len(non_activating))
    if n == 0:
        return None, 0
    items = [(c, True) for c in activating[:n]] + [(c, False) for c in non_activating[:n]]
    random.Random(seed).shuffle(items)
    right = 0
    for start in range(0, len(items), SCORE_BATCH):
        batch = items[start: start + SCORE_BATCH]
        unmarked = [Context(c.tokens) for c, _ in batch]
        reply, _ = client.complete(score_messages(explanation, unmarked), max_tokens=16 + 4 * len(batch))
        guesses = parse_predictions(reply, len(batch))
        right += sum(guess == truth for guess, (_, truth) in zip(guesses, batch, strict=True))
    return right / len(items), len(items)


def explain(client: ChatClient, evidence: FeatureEvidence, non_activating: Sequence[Context], *,
            n_explain: int = N_EXPLAIN, n_holdout: int = N_HOLDOUT, seed: int = 0) -> Explanation:
    """Ask for an explanation of the feature from part of its evidence, then score it on the rest."""
    if not evidence.contexts:
        raise ExplainerError("the feature has no activating contexts to explain (it never fired in its "
                             "dashboard's corpus)")
    shown, held = split_contexts(evidence.contexts, n_explain=n_explain, n_holdout=n_holdout, seed=seed)
    reply, answered_by = client.complete(explain_messages(shown, evidence.top_logits), max_tokens=60)
    text = clean_explanation(reply)
    score, n_scored = score_explanation(client, text, held, non_activating, seed=seed)
    return Explanation(text=text, score=score, n_scored=n_scored,
                       explainer_model=(client.model or answered_by or "unknown")[:200],
                       prompt_version=PROMPT_VERSION, created_at=datetime.now(UTC))


def explain_store_feature(client: ChatClient, store: FeatureStore, layer: int, feature: int, *,
                          n_explain: int = N_EXPLAIN, n_holdout: int = N_HOLDOUT,
                          seed: int = 0) -> Explanation:
    """Explain one feature of a feature store; non-activating contexts are random corpus windows."""
    evidence = evidence_from_dashboard(store.get(layer, feature))
    negatives = random_contexts(store, layer, feature, n_holdout, seed=seed)
    return explain(client, evidence, negatives, n_explain=n_explain, n_holdout=n_holdout, seed=seed)
