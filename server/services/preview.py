"""Tokenization preview and the prompt-length check, with models loaded in the server.

The server loads a model (on `preview_device`, CPU by default) the first time a prompt for
it is previewed or submitted, to count tokens and show the top next tokens; traces never
run here (they go to the queue). Calls are serialised by one lock: tokenizers are not safe to
share between threads, and previews are short.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from persistence.errors import Unprocessable
from worker.cache import ModelCache


@dataclass(frozen=True)
class Preview:
    token_ids: list[int]
    tokens: list[str]
    top_next: list[tuple[str, float]]


@dataclass(frozen=True)
class TargetTokens:
    """How a custom target's text splits into tokens (no BOS: the engine's rule for targets)."""

    token_ids: list[int]
    tokens: list[str]

    @property
    def problem(self) -> str | None:
        """Why the text cannot be a target (None when it is exactly one token)."""
        if len(self.token_ids) == 1:
            return None
        if not self.token_ids:
            return "no token - a target must be one token"
        pieces = " ".join(repr(t) for t in self.tokens)
        return f"{len(self.token_ids)} tokens: {pieces} - a target must be one token (mind the leading space)"


class PreviewService:
    def __init__(self, cache: ModelCache, *, max_prompt_tokens: int, max_prompt_chars: int):
        self.cache = cache
        self.max_prompt_tokens = max_prompt_tokens
        self.max_prompt_chars = max_prompt_chars
        self.lock = threading.Lock()
        self._chat_templates: dict[str, bool] = {}

    def check_prompt(self, source: str, prompt: str) -> list[int]:
        """The prompt's token ids, or a 422 naming the problem (empty, too long)."""
        if not prompt.strip():
            raise Unprocessable("the prompt is empty")
        if len(prompt) > self.max_prompt_chars:
            raise Unprocessable(
                f"the prompt is {len(prompt)} characters long; the limit is {self.max_prompt_chars}"
            )
        with self.lock:
            ids = list(self.cache.model(source).tokenize(prompt))
        if len(ids) > self.max_prompt_tokens:
            raise Unprocessable(
                f"the prompt is {len(ids)} tokens long; the limit is {self.max_prompt_tokens}"
            )
        return ids

    def preview(self, source: str, prompt: str, *, top_k: int) -> Preview:
        ids = self.check_prompt(source, prompt)
        with self.lock:
            model = self.cache.model(source)
            tokens = list(model.decode_tokens(ids))
            top = [(str(t), float(p)) for t, p in model.top_next_tokens(prompt, top_k)] if top_k else []
        return Preview(ids, tokens, top)

    def chat_template(self, source: str) -> bool | None:
        """Whether the model has a chat template, from its files (no load: lists of models ask
        for every model), else from its tokenizer when a preview loaded it; None: not known
        without a download. Known answers are kept."""
        from glassbox.models.chat import has_chat_template

        if source in self._chat_templates:
            return self._chat_templates[source]
        known = has_chat_template(source)
        if known is None and self.cache.has_model(source):
            tokenizer = getattr(self.cache.model(source), "tokenizer", None)
            known = bool(getattr(tokenizer, "chat_template", None))
        if known is not None:
            self._chat_templates[source] = known
        return known

    def chat_prompt(self, source: str, name: str, messages: list[dict[str, Any]]) -> str:
        """Chat messages as the prompt text the model's chat template makes of them, or a 422
        when model `name` has none (a trace takes one prompt string; the worker tokenizes it as
        it is, so the template's BOS is not doubled)."""
        with self.lock:
            tokenizer = self.cache.model(source).tokenizer
            if not getattr(tokenizer, "chat_template", None):
                self._chat_templates[source] = False
                raise Unprocessable(f"model {name!r} has no chat template; give a plain prompt")
            self._chat_templates[source] = True
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if len(text) > self.max_prompt_chars:
            limit = self.max_prompt_chars
            raise Unprocessable(f"the prompt is {len(text)} characters long; the limit is {limit}")
        return str(text)

    def target_tokens(self, source: str, text: str) -> TargetTokens:
        """The tokens of a custom target's text, split as glassbox.attribution.targets does."""
        with self.lock:
            model = self.cache.model(source)
            ids = [int(i) for i in model.tokenizer(text, add_special_tokens=False)["input_ids"]]
            tokens = list(model.decode_tokens(ids)) if ids else []
        return TargetTokens(ids, tokens)
