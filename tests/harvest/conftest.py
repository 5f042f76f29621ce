"""Fixtures for harvest tests: an injected clock, scripted HTTP, prompt files."""

from __future__ import annotations

import asyncio
import json
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


def ok(content: str = "ok", headers: dict | None = None, **extra) -> httpx.Response:
    return httpx.Response(200, json=completion(content, **extra), headers=headers or {})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def error(status: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": f"e{status}"}}, headers=headers or {})
