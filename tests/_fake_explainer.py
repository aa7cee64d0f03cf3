"""A local OpenAI-compatible chat endpoint for explanation tests: a stdlib HTTP server on a free
port of 127.0.0.1, in a thread. It answers deterministically:

- the explain prompt: `fires on <tok>`, with <tok> the most common token marked <<tok>> (stripped);
- the scoring prompt: 1 for each excerpt that contains <tok>, 0 for the others, so it is right
  on every activating excerpt of a feature that fires on <tok>.

`fail_next(...)` queues answers to give instead (an error status, a pause, a malformed body);
`requests` records what was asked (path, headers, JSON body).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARK = re.compile(r"<<(.*?)>>")
DESCRIBED = re.compile(r'described as: "(.*)"\s*$', re.M)
EXCERPT = re.compile(r"^(\d+)\. (.*)$", re.M)


def explanation_for(prompt: str) -> str:
    excerpts = "\n".join(text for _, text in EXCERPT.findall(prompt))
    marked = [m.strip() for m in MARK.findall(excerpts) if m.strip()]
    token = Counter(marked).most_common(1)[0][0] if marked else "nothing"
    return f"fires on {token}"


def predictions_for(prompt: str) -> list[int]:
    described = DESCRIBED.search(prompt)
    token = described.group(1).removeprefix("fires on ") if described else ""
    return [int(bool(token) and token in text) for _, text in EXCERPT.findall(prompt)]


class FakeExplainer:
    def __init__(self, *, api_key: str | None = None, model: str = "fake-explainer-1") -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        # ("status", code or (code, headers)) | ("sleep", seconds) | ("raw", body bytes)
        self.planned: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-explainer", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def fail_next(self, kind: str, value: Any = None, *, times: int = 1) -> None:
        with self.lock:
            self.planned.extend([(kind, value)] * times)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> FakeExplainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- answering ---------------------------------------------------------------------------
    def answer(self, body: dict[str, Any]) -> str:
        prompt = "\n".join(m.get("content", "") for m in body.get("messages", []))
        if "described as:" in prompt:
            return json.dumps(predictions_for(prompt))
        return explanation_for(prompt)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    planned = fake.planned.pop(0) if fake.planned else None
                if planned is not None:
                    kind, value = planned
                    if kind == "status":
                        code, headers = value if isinstance(value, tuple) else (value, {})
                        error = {"error": {"message": f"fake failure {code}", "type": "fake"}}
                        self._send(code, json.dumps(error).encode(), headers)
                        return
                    if kind == "raw":
                        self._send(200, value)
                        return
                    if kind == "sleep":
                        time.sleep(value)
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "no such route"}}')
                    return
                if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, b'{"error": {"message": "Incorrect API key provided"}}')
                    return
                reply = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "model": body.get("model") or fake.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": fake.answer(body)}}],
                }
                try:
                    self._send(200, json.dumps(reply).encode())
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler
