"""Stand-ins for the engine in server tests: a word-level "model" and a tracer that builds a
small valid graph JSON. They exercise everything around the trace (queue, lifecycle,
storage, API); tests/server/test_server_engine_e2e.py runs the real engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from glassbox.errors import GlassboxError
from worker.cache import ModelCache
from worker.tracing import ProgressFn, TraceOutput, TraceSpec

BOS = "<bos>"


class FakeTokenizer:
    """Splits on spaces, no special tokens; no chat template."""

    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [1 + hash(word) % 999 for word in text.split()]}


class FakeModel:
    """Splits on spaces; BOS first. top_next_tokens is a fixed distribution."""

    name = "fake"
    n_layers = 2
    vocab_size = 1000
    tokenizer = FakeTokenizer()

    def tokenize(self, prompt: str) -> list[int]:
        return [0] + [1 + hash(word) % 999 for word in prompt.split()]

    def decode_tokens(self, ids: list[int]) -> list[str]:
        return [BOS if i == 0 else f"t{i}" for i in ids]

    def top_next_tokens(self, prompt: str, k: int) -> list[tuple[str, float]]:
        return [(f" next{i}", 0.5 / (i + 1)) for i in range(k)]


def fake_cache() -> ModelCache:
    return ModelCache(load_model=lambda source: FakeModel(), load_transcoders=lambda source: object())


def fake_graph_json(prompt: str, slug: str, scan: str = "tiny") -> dict[str, Any]:
    """A graph in Neuronpedia's schema: one embedding node per token, a feature, a logit."""
    words = [BOS, *prompt.split()]
    nodes = [
        {
            "node_id": f"E_{i}_{i}",
            "feature": None,
            "layer": "E",
            "ctx_idx": i,
            "feature_type": "embedding",
            "jsNodeId": f"E_{i}-{i}",
            "clerp": "",
        }
        for i in range(len(words))
    ]
    last = len(words) - 1
    nodes.append(
        {
            "node_id": f"0_7_{last}",
            "feature": 7,
            "layer": "0",
            "ctx_idx": last,
            "feature_type": "cross layer transcoder",
            "jsNodeId": f"0_7-{last}",
            "clerp": "",
            "influence": 0.5,
        }
    )
    nodes.append(
        {
            "node_id": f"3_42_{last}",
            "feature": None,
            "layer": "3",
            "ctx_idx": last,
            "feature_type": "logit",
            "jsNodeId": f"3_42-{last}",
            "clerp": 'Output " x" (p=0.500)',
        }
    )
    links = [
        {"source": f"E_{i}_{i}", "target": f"0_7_{last}", "weight": 0.1 * (i + 1)} for i in range(len(words))
    ]
    links.append({"source": f"0_7_{last}", "target": f"3_42_{last}", "weight": 1.5})
    return {
        "metadata": {"slug": slug, "scan": scan, "prompt_tokens": words, "prompt": prompt},
        "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""},
        "nodes": nodes,
        "links": links,
    }


class FakeTracer:
    """Calls progress `steps` times, `step_delay_s` apart, then returns a fake graph.

    `on_step(spec, i)` runs at each step (tests use it to look at the job mid-run); a prompt
    containing "FAIL" raises a GlassboxError, "CRASH" a RuntimeError.
    """

    def __init__(
        self,
        *,
        steps: int = 3,
        step_delay_s: float = 0.0,
        on_step: Callable[[TraceSpec, int], None] | None = None,
    ):
        self.steps = steps
        self.step_delay_s = step_delay_s
        self.on_step = on_step
        self.calls: list[TraceSpec] = []

    def __call__(self, spec: TraceSpec, progress: ProgressFn) -> TraceOutput:
        self.calls.append(spec)
        for i in range(self.steps):
            progress("attribution", i / self.steps)
            if self.on_step is not None:
                self.on_step(spec, i)
            time.sleep(self.step_delay_s)
        if "FAIL" in spec.prompt:
            raise GlassboxError("the fake engine refuses prompts containing FAIL")
        if "CRASH" in spec.prompt:
            raise RuntimeError("fake crash")
        progress("export", 1.0)
        return TraceOutput(fake_graph_json(spec.prompt, spec.slug, spec.model_name), 0.75, 0.9)
