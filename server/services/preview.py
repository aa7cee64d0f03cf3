"""Tokenization preview and the prompt-length check, with models loaded in the server.

The server loads a model (on `preview_device`, CPU by default) the first time a prompt for
it is previewed or submitted, to count tokens and show the top next tokens; traces never
run here (they go to the queue). Calls are serialised by one lock: tokenizers are not safe to
share between threads, and previews are short.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from persistence.errors import Unprocessable
from worker.cache import ModelCache


@dataclass(frozen=True)
class Preview:
    token_ids: list[int]
    tokens: list[str]
    top_next: list[tuple[str, float]]


class PreviewService:
    def __init__(self, cache: ModelCache, *, max_prompt_tokens: int, max_prompt_chars: int):
        self.cache = cache
        self.max_prompt_tokens = max_prompt_tokens
        self.max_prompt_chars = max_prompt_chars
        self.lock = threading.Lock()

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
