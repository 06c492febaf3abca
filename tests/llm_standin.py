"""A local stand-in for an OpenAI-compatible chat server (real HTTP on a loopback port).

    with ChatStandIn() as server:
        server.url  # http://127.0.0.1:PORT/v1

``POST /v1/chat/completions`` answers as the API does: with ``"stream": true`` as server-sent events
(``data: {"choices": [{"delta": {"content": ...}}]}`` ... ``data: [DONE]``), else one JSON object. The
answer repeats the question: "You asked: <question>. ..." in a few sentences, one word per event.
How it misbehaves is chosen by the model name:

- ``refuse``: 401 with an error object (or any model, when ``key`` is set and the request lacks it)
- ``missing``: 404 "model not found";  ``broken``: 500 with an error object
- ``slow``: waits ``delay`` seconds before the first byte;  ``stall``: sends two words, then waits
- ``vanish``: sends a few words, then closes the connection without ``[DONE]``
- ``garbage``: an event that is not JSON
- ``gated``: sends the first sentence and the next word, then waits until the test sets ``gate`` (so a
  test can check that the client had that sentence before the rest existed)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer_words(question: str) -> list[str]:
    text = (f"You asked: {question.rstrip('.?!')}. That is a good question, and here is a short answer. "
            "Thank you for asking!")
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class ChatStandIn:
    def __init__(self, key: str | None = None, delay: float = 5.0) -> None:
        self.key, self.delay = key, delay
        self.requests: list[dict] = []  # what the client sent: {"headers": ..., "body": ...}
        self.gate = threading.Event()
        self.finished = threading.Event()  # set when an answer's [DONE] went out
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                standin.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                try:
                    standin.handle(self, body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout): normal here
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ChatStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _json(self, handler, status: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _event(self, handler, data) -> None:
        raw = f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()
        handler.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        handler.wfile.flush()

    def handle(self, handler, body: dict) -> None:
        model = body.get("model", "")
        if handler.path != "/v1/chat/completions":
            return self._json(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        if model == "refuse" or (self.key and handler.headers.get("Authorization") != f"Bearer {self.key}"):
            return self._json(handler, 401, {"error": {"message": "Incorrect API key provided", "type": "auth"}})
        if model == "missing":
            return self._json(handler, 404, {"error": {"message": f"model '{model}' not found"}})
        if model == "broken":
            return self._json(handler, 500, {"error": {"message": "CUDA out of memory"}})
        if model == "slow":
            time.sleep(self.delay)
        question = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        words = answer_words(question)
        if not body.get("stream"):
            return self._json(handler, 200, {"object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}]})
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if model == "garbage":
            self._event(handler, "<html>proxy error</html>")
        self._event(handler, {"object": "chat.completion.chunk",
                              "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for i, word in enumerate(words):
            if model == "vanish" and i == 4:
                handler.wfile.flush()
                handler.connection.shutdown(2)  # the server goes away mid-answer
                handler.close_connection = True
                return
            if model == "stall" and i == 2:
                time.sleep(self.delay)
            if model == "gated" and i > 1 and words[i - 2].endswith("."):  # the first sentence and the
                self.gate.wait(timeout=30)  # next word (which shows that the sentence ended) are out
            self._event(handler, {"object": "chat.completion.chunk",
                                  "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
            time.sleep(0.01)
        self._event(handler, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {},
                                                                               "finish_reason": "stop"}]})
        self._event(handler, "[DONE]")
        handler.wfile.write(b"0\r\n\r\n")
        self.finished.set()
