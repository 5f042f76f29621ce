"""Fixtures for harvest tests: an injected clock, scripted HTTP, prompt files."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest


class FakeTime:
    """A clock and an async sleep that records each sleep and advances the clock."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def completion(content: str = "ok", **extra) -> dict:
    message = {"role": "assistant", "content": content, **extra.pop("message", {})}
    return {
        "id": "chatcmpl-1",
        "model": "served-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", **extra}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def scripted_client(script: list[Callable[[httpx.Request], httpx.Response] | httpx.Response]):
    """An httpx client answering from ``script`` in order (the last entry repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = script[min(len(seen) - 1, len(script) - 1)]
        return step(request) if callable(step) else step

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client.seen = seen  # type: ignore[attr-defined]
    return client


class ScriptedServer:
    """``scripted_client``'s script served on loopback, for harvest's default (lean) lane.

    Each request is recorded as an ``httpx.Request`` in ``seen``; the script's next step is
    answered as is, and a step that raises ``httpx.TransportError`` drops the connection.
    """

    def __init__(self, script: list[Callable[[httpx.Request], httpx.Response] | httpx.Response]):
        self.script = script
        self.seen: list[httpx.Request] = []
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, request):
        from aiohttp import web

        seen = httpx.Request(
            request.method, str(request.url), headers=list(request.headers.items()),
            content=await request.read(),
        )  # fmt: skip
        self.seen.append(seen)
        step = self.script[min(len(self.seen) - 1, len(self.script) - 1)]
        try:
            reply = step(seen) if callable(step) else step
        except httpx.TransportError:
            request.transport.abort()
            return web.Response(status=599)  # never reaches the client
        headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
        return web.Response(status=reply.status_code, body=reply.content, headers=headers)

    def __enter__(self) -> ScriptedServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "scripted server did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.base_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture(params=["httpx", "lean"])
def scripted(request):
    """``scripted(script)``: a scripted provider on the lane of this test's parameter:
    an injected httpx client with a mock transport, or a loopback server that harvest
    reaches with its own default client (the lean lane)."""
    servers: list[ScriptedServer] = []

    def make(script):
        if request.param == "httpx":
            return scripted_client(script)
        server = ScriptedServer(script).__enter__()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.__exit__()


def ok(content: str = "ok", headers: dict | None = None, **extra) -> httpx.Response:
    return httpx.Response(200, json=completion(content, **extra), headers=headers or {})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def error(status: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": f"e{status}"}}, headers=headers or {})
