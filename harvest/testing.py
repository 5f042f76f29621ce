"""A fake OpenAI-compatible provider over loopback, for tests, benchmarks and demos.

:class:`FakeProvider` serves ``POST /v1/chat/completions`` from a background thread
(``with FakeProvider(rpm=600) as fake: fake.base_url``) or, with :meth:`FakeProvider.spawn`,
from a child process (so a benchmark's client and server use different cores). It:

- enforces RPM/TPM with token buckets holding ``burst_seconds`` of budget, answers 429 with
  ``retry-after-ms`` when empty, and sends ``x-ratelimit-limit/remaining/reset-*`` headers
  on every answer (OpenAI's semantics: reset = time until the bucket is full again);
- injects faults at seeded random rates: 500s, truncated JSON, dropped connections, slow
  answers; and on demand per prompt: ``[[status:400]]``, ``[[slow:2.5]]`` in the last user
  message;
- returns reasoning as ``reasoning_content``, ``reasoning`` or a ``<think>`` block, and
  logprobs with ``top_logprobs`` alternatives when asked;
- with ``reasoning_model=True``, refuses and answers as OpenAI's reasoning models do, and
  with ``api="responses"`` serves a strict ``POST /v1/responses`` instead
  (:mod:`stillroom.harvest._fake_openai`, from pinned payloads);
- counts requests per prompt (``stats()["per_prompt"]``, keyed by the last user message);
- answers from a script with ``replies=``: ``[(substring, reply), ...]`` rules (the first
  rule whose substring is in the last user message wins; JSON-able, so :meth:`spawn` takes
  them too) or, in-thread, a callable ``last_user -> reply``; ``None`` from the callable, or
  no rule matching, falls back to the echo ``You asked: ...``;
- with ``record_requests=True``, keeps each request's method, path, headers and body bytes
  (``fake.server.seen``; in-thread servers only);
- serves https with ``ssl_context=`` (an ``ssl.SSLContext`` holding a certificate).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from stillroom.harvest import _fake_openai as oa
from stillroom.harvest._completions import render_assistant
from stillroom.harvest._fake_settings import FakeSettings, Faults, _Bucket

__all__ = ["FakeProvider", "FakeSettings", "Faults", "SpawnedProvider"]

_DIRECTIVE = re.compile(r"\[\[(status|slow):([0-9.]+)\]\]")


def _tokens(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(0, len(text), 4)] or [""]


class _Server:
    """The aiohttp application and its state (runs on one event loop)."""

    def __init__(self, settings: FakeSettings):
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.requests = Counter()  # by_status
        self.per_prompt: Counter[str] = Counter()
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth_headers_seen: set[str] = set()
        self.seen: list[dict[str, Any]] = []
        self.req_bucket = _Bucket(settings.rpm, settings.burst_seconds) if settings.rpm else None
        self.tok_bucket = _Bucket(settings.tpm, settings.burst_seconds) if settings.tpm else None

    def stats(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": {str(k): v for k, v in self.requests.items()},
            "per_prompt": dict(self.per_prompt),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
        }

    def _rate_headers(self) -> dict[str, str]:
        if not self.s.rate_headers:
            return {}
        out: dict[str, str] = {}
        if self.req_bucket:
            out.update(self.req_bucket.headers("requests"))
        if self.tok_bucket:
            out.update(self.tok_bucket.headers("tokens"))
        return out

    def _admit(self, cost: float) -> float:
        """Charge the buckets; returns 0 when admitted, else seconds to wait."""
        wait = 0.0
        for bucket, c in ((self.req_bucket, 1.0), (self.tok_bucket, cost)):
            if bucket is not None:
                bucket.refill()
                wait = max(wait, bucket.shortfall(c))
        if wait > 0:
            return wait
        for bucket, c in ((self.req_bucket, 1.0), (self.tok_bucket, cost)):
            if bucket is not None:
                bucket.level -= c
        return 0.0

    async def handle(self, request):
        from aiohttp import web

        self.total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._handle(request, web)
        finally:
            self.in_flight -= 1

    def _json(self, web, status: int, payload: dict, headers: dict[str, str]):
        self.requests[status] += 1
        body = json.dumps(payload).encode()
        return web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )

    async def _handle(self, request, web):
        raw_body = await request.read()
        if self.s.record_requests:
            self.seen.append(
                {
                    "method": request.method,
                    "path": request.path_qs,
                    "headers": list(request.headers.items()),
                    "body": raw_body,
                }
            )
        body = json.loads(raw_body)
        auth = request.headers.get("Authorization", "")
        self.auth_headers_seen.add(auth)
        responses = self.s.api == "responses"
        messages = oa.responses_messages(body) if responses else body.get("messages") or []
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        self.per_prompt[last_user] += 1
        headers = {"x-request-id": f"req_{self.total:08d}"}
        if self.s.api_key is not None and auth != f"Bearer {self.s.api_key}":
            return self._json(web, 401, {"error": {"message": "bad key"}}, headers)
        directives = dict(_DIRECTIVE.findall(last_user))
        if "status" in directives:
            status = int(float(directives["status"]))
            return self._json(web, status, {"error": {"message": f"injected {status}"}}, headers)
        if responses:
            refusal = oa.responses_refusal(body, self.s.reasoning_model)
        else:
            refusal = oa.reasoning_model_refusal(body) if self.s.reasoning_model else None
        if refusal is not None:
            return self._json(web, *refusal, headers)
        prompt_tokens, max_tokens = oa.request_budget(body, messages)
        wait = self._admit(prompt_tokens + max_tokens)
        headers.update(self._rate_headers())
        if wait > 0:
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            msg = {"error": {"message": "Rate limit reached", "type": "rate_limit"}}
            return self._json(web, 429, msg, headers)
        f, roll = self.s.faults, self.rng.random()
        delay = self.s.latency + float(directives.get("slow", 0))
        if roll < f.slow:
            delay += f.slow_seconds
        if delay:
            await asyncio.sleep(delay)
        roll = self.rng.random()
        if roll < f.error_500:
            return self._json(web, 500, {"error": {"message": "injected 500"}}, headers)
        roll -= f.error_500
        if roll < f.dropped:
            self.requests["dropped"] += 1
            request.transport.abort()
            return web.Response(status=599)  # never reaches the client
        roll -= f.dropped
        payload = self._completion(body, last_user, prompt_tokens, max_tokens)
        if roll < f.truncated:
            self.requests["truncated"] += 1
            raw = json.dumps(payload).encode()
            return web.Response(body=raw[: len(raw) // 2], content_type="application/json")
        return self._json(web, 200, payload, headers)

    def _completion(self, body: dict, last_user: str, prompt_tokens: int, max_tokens: int):
        answer = self._reply(last_user)
        tokens = _tokens(answer)
        if self.s.api == "responses":
            summary = f"**Reading** The user wrote {len(last_user)} characters."
            return oa.responses_answer(body, answer, summary, prompt_tokens, tokens)
        hidden = min(oa.HIDDEN_REASONING_TOKENS, max_tokens) if self.s.reasoning_model else 0
        max_tokens -= hidden
        finish = "stop"
        if len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        content = "".join(tokens)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        reasoning = f"The user wrote {len(last_user)} characters."
        reasoning_tokens = None
        if self.s.reasoning in ("reasoning_content", "reasoning"):
            message[self.s.reasoning] = reasoning
            reasoning_tokens = len(_tokens(reasoning))
        elif self.s.reasoning == "think":
            message["content"] = render_assistant(content, reasoning, "think")["content"]
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            choice["logprobs"] = {
                "content": [
                    {
                        "token": t,
                        "logprob": -0.01 * (i % 7),
                        "bytes": list(t.encode()),
                        "top_logprobs": [
                            {
                                "token": t if j == 0 else f"{t}~{j}",
                                "logprob": -0.01 * (i % 7) - j,
                                "bytes": list((t if j == 0 else f"{t}~{j}").encode()),
                            }
                            for j in range(k)
                        ],
                    }
                    for i, t in enumerate(tokens)
                ]
            }
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        if reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        if self.s.reasoning_model:
            usage = oa.reasoning_usage(prompt_tokens, len(tokens), hidden)
        return {
            "id": f"chatcmpl-{self.total}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.s.served_model or body.get("model"),
            "choices": [choice],
            "usage": usage,
        }

    def _reply(self, last_user: str) -> str:
        replies = self.s.replies
        if callable(replies):
            scripted = replies(last_user)
            if scripted is not None:
                return scripted
        elif replies:
            for substring, reply in replies:
                if substring in last_user:
                    return reply
        return "You asked: " + last_user

    def app(self):
        from aiohttp import web

        async def stats(_request):
            return web.json_response(self.stats())

        app = web.Application(client_max_size=64 * 1024 * 1024)
        path = "/v1/responses" if self.s.api == "responses" else "/v1/chat/completions"
        app.router.add_post(path, self.handle)
        app.router.add_get("/_stats", stats)
        return app


class FakeProvider:
    """A loopback OpenAI-compatible server; use as a context manager.

    >>> with FakeProvider(rpm=600, burst_seconds=2) as fake:   # doctest: +SKIP
    ...     run_harvest(HarvestConfig(..., base_url=fake.base_url))
    """

    def __init__(self, *, faults: Faults | None = None, ssl_context: Any = None, **settings: Any):
        self.settings = FakeSettings(faults=faults or Faults(), **settings)
        self.server = _Server(self.settings)
        self.ssl_context = ssl_context  # an ssl.SSLContext with a certificate: serve https
        self.base_url = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner = None

    def start(self) -> FakeProvider:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake provider did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._runner = web.AppRunner(self.server.app(), access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if self.ssl_context is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{port}/v1"
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def stats(self) -> dict[str, Any]:
        return self.server.stats()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def spawn(*, faults: Faults | None = None, **settings: Any) -> SpawnedProvider:
        """Run the fake provider in a child process (``python -m stillroom.harvest.testing``)."""
        spec = FakeSettings(faults=faults or Faults(), **settings)
        return SpawnedProvider(spec)


class SpawnedProvider:
    """A :class:`FakeProvider` in a child process; ``stats()`` asks it over HTTP."""

    def __init__(self, settings: FakeSettings):
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> SpawnedProvider:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stillroom.harvest.testing", json.dumps(asdict(self.settings))],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"fake provider did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/_stats") as resp:
            return json.loads(resp.read())

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


_LAZY = {  # public name -> the private module that owns it (imported on first use)
    "FakeBatchProvider": "_batch_server",  # the Files and Batch APIs too
    "FakeAnthropic": "_fake_anthropic",  # the native Messages API
    "FakeAnthropicBatches": "_fake_anthropic_batches",  # and its Message Batches API
    "FakeGemini": "_fake_gemini",  # the native generateContent
    "pinned_payload": "_fake_native",  # the fakes' pinned provider payloads
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"stillroom.harvest.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _main(argv: list[str]) -> None:
    raw = json.loads(argv[0]) if argv else {}
    faults = Faults(**raw.pop("faults", {}))
    provider = FakeProvider(faults=faults, **raw).start()
    print(f"READY {provider.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        provider.stop()


if __name__ == "__main__":
    _main(sys.argv[1:])
