"""A loopback teacher for tests: OpenAI legacy ``POST /v1/completions`` with ``echo`` and
``logprobs``, scored by a Hugging Face model in this process in one forward pass.

Knobs for the refusal and resume tests: ``accept_ids`` (a token-id prompt is a 422, as
llama-cpp-python's server answers), ``char_tokens`` (a teacher with another tokenizer: one
token per character), ``kill`` (``(pid, n)``: SIGKILL ``pid`` on the n-th scoring request,
before answering it). ``answered`` lists the bodies it answered, in order.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stillroom.train._scoring import PROBE_TEXT, decode_starts


class ScoringTeacher:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        system: str | None = None,
        accept_ids: bool = True,
        char_tokens: bool = False,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.accept_ids, self.char_tokens = accept_ids, char_tokens
        self.answered: list[dict[str, Any]] = []
        self.kill: tuple[int, int] | None = None
        self.scoring_seen = 0
        self._lock = threading.Lock()
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, reply = teacher.answer(body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ScoringTeacher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def scoring_bodies(self) -> list[str]:
        """The answered requests that were not probes, as canonical JSON."""
        out = []
        for body in self.answered:
            prompt = body["prompt"]
            if prompt == PROBE_TEXT or prompt == self._probe_ids():
                continue
            out.append(json.dumps(body, sort_keys=True))
        return out

    def _probe_ids(self) -> list[int]:
        return self.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        prompt = body.get("prompt")
        if not body.get("echo") or body.get("logprobs") is None:
            return 400, {"error": "this test teacher only scores (echo + logprobs)"}
        if isinstance(prompt, list) and not self.accept_ids:
            return 422, {"detail": "prompt: Input should be a valid string"}
        with self._lock:
            if prompt not in (PROBE_TEXT, self._probe_ids()):
                self.scoring_seen += 1
                if self.kill and self.scoring_seen == self.kill[1]:
                    os.kill(self.kill[0], signal.SIGKILL)
                    return 500, {"error": "killed"}
            reply = self._score(prompt)
            self.answered.append(body)
        return 200, reply

    def _score(self, prompt: str | list[int]) -> dict[str, Any]:
        import torch

        tok = self.tokenizer
        if isinstance(prompt, list):
            ids = list(prompt)
            text = tok.decode(ids, skip_special_tokens=False)
        else:
            text, ids = prompt, tok(prompt, add_special_tokens=False)["input_ids"]
        offsets = decode_starts(tok, ids)
        with torch.no_grad():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        values: list[float | None] = [None]
        values += [float(logp[i, ids[i + 1]]) for i in range(len(ids) - 1)]
        nxt = int(logp[-1].argmax())
        values.append(float(logp[-1, nxt]))
        offsets = [*offsets, len(text)]
        if self.char_tokens:
            values, offsets = [None] + [-1.0] * len(text), list(range(len(text) + 1))
        return {
            "object": "text_completion",
            "model": "test-teacher",
            "choices": [
                {
                    "index": 0,
                    "text": text + tok.decode([nxt]),
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": [tok.decode([i]) for i in [*ids, nxt]],
                        "token_logprobs": values,
                        "top_logprobs": [None] * len(values),
                        "text_offset": offsets,
                    },
                }
            ],
            "usage": {
                "prompt_tokens": len(ids),
                "completion_tokens": 1,
                "total_tokens": len(ids) + 1,
            },
        }
