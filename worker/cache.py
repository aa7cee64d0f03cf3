"""Loaded models and transcoder sets, kept across jobs (loading takes seconds to minutes).

A small LRU per kind; a lock per kind makes threads that ask for the same source wait for
one load instead of loading twice.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Loader = Callable[[str], Any]


class _LRU:
    def __init__(self, kind: str, loader: Loader, capacity: int):
        self.kind = kind
        self.loader = loader
        self.capacity = capacity
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, source: str) -> Any:
        with self.lock:
            if source in self.items:
                self.items.move_to_end(source)
                return self.items[source]
            log.info("loading %s %s", self.kind, source)
            value = self.loader(source)
            self.items[source] = value
            while len(self.items) > self.capacity:
                evicted, _ = self.items.popitem(last=False)
                log.info("unloading %s %s", self.kind, evicted)
            return value

    def __contains__(self, source: str) -> bool:
        return source in self.items


class ModelCache:
    """Models and transcoder sets by source string, loaded on first use on one device."""

    def __init__(
        self,
        *,
        capacity: int = 2,
        device: str | None = None,
        dtype: str = "float32",
        load_model: Loader | None = None,
        load_transcoders: Loader | None = None,
    ):
        self.device = device
        self.dtype = dtype
        self._models = _LRU("model", load_model or self._load_model, capacity)
        self._transcoders = _LRU("transcoders", load_transcoders or self._load_transcoders, capacity)

    def model(self, source: str) -> Any:
        return self._models.get(source)

    def transcoders(self, source: str) -> Any:
        return self._transcoders.get(source)

    def has_model(self, source: str) -> bool:
        return source in self._models

    def resolved_device(self) -> str:
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _load_model(self, source: str) -> Any:
        import torch

        import glassbox

        return glassbox.load_model(source, dtype=getattr(torch, self.dtype), device=self.resolved_device())

    def _load_transcoders(self, source: str) -> Any:
        import glassbox

        return glassbox.load_transcoders(source, device=self.resolved_device())
