"""An OpenAI-compatible upstream that replays recorded proposals: a stand-in for a strong model.

Run as its own process (``python tests/dsl/replay_upstream.py --replies FILE``; it prints
``ready <port>`` once it listens on loopback). ``POST /v1/chat/completions`` with
``response_format`` json_schema answers the recorded proposal whose ``when`` text occurs
last in the prompt (the newest user turn it was recorded for), as a strong model would
under the schema; any other request gets ``--text``. Streaming (SSE with usage) and whole
answers both work; every request body is appended to ``--log`` (JSON lines) if given.
``GET /v1/models`` lists ``replay``. Used by tests/dsl/test_dsl_strong.py and by
``bench/dsl_quality.py --replay``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def pick(replies: list[dict[str, Any]], prompt: str) -> dict[str, Any] | None:
    """The reply recorded for the newest user turn quoted in ``prompt``."""
    best, where = None, -1
    for reply in replies:
        at = prompt.rfind(reply["when"])
        if at > where:
            best, where = reply, at
    return best


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ReplayServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, json.dumps({"object": "list", "data": [{"id": "replay", "object": "model"}]}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        body = json.loads(raw or b"{}")
        self.server.record(body)
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        text = self.server.text
        if (body.get("response_format") or {}).get("type") == "json_schema":
            reply = pick(self.server.replies, prompt)
            text = json.dumps(reply["proposal"]) if reply else '{"entities": [], "relationships": []}'
        usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": max(1, len(text) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            self._send(200, json.dumps({
                "id": "replay-1", "object": "chat.completion", "model": "replay", "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }).encode())
            return
        pieces = [text[i:i + 64] for i in range(0, len(text), 64)] or [""]
        events = [{"id": "replay-1", "object": "chat.completion.chunk", "model": "replay",
                   "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
        events.append({"id": "replay-1", "object": "chat.completion.chunk", "model": "replay",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
        payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self._send(200, payload.encode(), "text/event-stream")


class ReplayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, replies: list[dict[str, Any]], text: str, log: str | None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.replies = replies
        self.text = text
        self.log_path = log
        self._lock = threading.Lock()

    def record(self, body: dict[str, Any]) -> None:
        if self.log_path:
            with self._lock, open(self.log_path, "a") as f:
                f.write(json.dumps(body) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", required=True, help="JSON file with a 'replies' list (case, turn, when, proposal)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--text", default="Here is the data model so far.", help="the answer to plain requests")
    parser.add_argument("--log", help="append every request body here (JSON lines)")
    args = parser.parse_args()
    with open(args.replies) as f:
        replies = json.load(f)["replies"]
    server = ReplayServer(args.port, replies, args.text, args.log)
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
