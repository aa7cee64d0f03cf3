"""Shared by the tests of `glassbox view`, `show()` and the circuit-tracer interop: a traced tiny
graph, a features store built for the same transcoders, and `glassbox view` run as a process."""

from __future__ import annotations

import queue
import random
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ("Fact : Michael Jordan plays the sport of", "The capital of the state containing Dallas is")
SERVING = re.compile(r"serving \d+ graphs? at (http://\S+?)/ ")


def tiny_model_and_transcoders() -> tuple[Any, Any]:
    """glassbox.testing's tiny llama and random transcoders (24 features a layer)."""
    from glassbox.testing import make_random_transcoders, make_tiny_model

    model = make_tiny_model("llama")
    return model, make_random_transcoders(model, d_transcoder=24)


def build_tiny_store(model: Any, transcoders: Any, folder: Path) -> Path:
    """A features store for `transcoders` over a small random-word corpus (seconds)."""
    from glassbox.features import BuildConfig, build_features
    from glassbox.testing import WORDS

    rng = random.Random(0)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) for _ in range(60)]
    corpus = folder / "corpus.txt"
    folder.mkdir(parents=True, exist_ok=True)
    corpus.write_text("\n\n".join(docs))
    config = BuildConfig(seq_len=16, batch_size=4, top_k=5, window_before=4, window_after=2,
                         samples_per_band=3, examples_per_group=4, n_logits=8)
    return build_features(model, transcoders, corpus, n_tokens=16 * 4 * 6, output_dir=folder / "store",
                          config=config, split="all")


@contextmanager
def glassbox_view(*args: str | Path, timeout_s: float = 90.0) -> Iterator[str]:
    """Run `glassbox view ARGS --port 0`; yields the server's base URL once it listens."""
    command = [sys.executable, "-m", "glassbox", "view", *map(str, args), "--port", "0"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    output: list[str] = []
    try:
        url = _wait_for_url(lines, output, timeout_s)
        if url is None:
            raise AssertionError("glassbox view did not start:\n" + "".join(output))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _wait_for_url(lines: queue.Queue[str | None], output: list[str], timeout_s: float) -> str | None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            return None
        if line is None:
            return None
        output.append(line)
        match = SERVING.search(line)
        if match:
            return match.group(1)
    return None
