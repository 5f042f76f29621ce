"""What the native-API fakes (``FakeAnthropic``, ``FakeGemini``) share.

- :func:`pinned_payload`: one of the example payloads shipped in ``fixtures/<provider>/``
  (package data, so the fakes work from an installed wheel). Each file records the page or
  SDK source it was read from (``source``) and the date (``read``); the fakes answer with
  these bodies, filling in only the text and the counts.
- :class:`Directives`: on-demand faults written into the last user message, as
  :class:`~stillroom.harvest.testing.FakeProvider` reads them:

  - ``[[status:529]]`` answers that status with the provider's documented error body, every
    time; ``[[status:429*2]]`` only for the first two requests of that prompt;
  - ``[[retry:7]]`` sets the wait a 429 asks for (seconds);
  - ``[[stop:refusal]]`` / ``[[stop:safety]]`` answers with that stop reason;
  - ``[[slow:2.5]]`` waits before answering.
- :class:`NativeFake`: a :class:`~stillroom.harvest.testing.FakeProvider` whose server
  answers one native API instead of chat completions; ``base_url`` is what that
  provider's SDK takes (no ``/v1``).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from stillroom.harvest.testing import FakeProvider

_DIRECTIVE = re.compile(r"\[\[(status|retry|stop|slow):([0-9a-z_.*]+)\]\]")


@cache
def _load(provider: str, name: str) -> str:
    path = resources.files("stillroom.harvest").joinpath("fixtures", provider, f"{name}.json")
    return path.read_text(encoding="utf-8")


def pinned_payload(provider: str, name: str) -> dict[str, Any]:
    """A fresh copy of ``fixtures/<provider>/<name>.json`` (``sources``, ``read``, ``body``...)."""
    return json.loads(_load(provider, name))


def estimate_tokens(text: str) -> int:
    """The fakes' token count: one per four characters, at least one."""
    return max(1, len(text) // 4)


def cut_to_tokens(text: str, tokens: int) -> str:
    return text[: max(0, tokens) * 4]


@dataclass(frozen=True)
class Directives:
    status: int | None = None
    status_times: int | None = None  # None: every request of the prompt
    retry: float | None = None
    stop: str | None = None
    slow: float = 0.0

    @classmethod
    def read(cls, text: str) -> Directives:
        found = dict(_DIRECTIVE.findall(text))
        status = times = None
        if "status" in found:
            code, _, count = found["status"].partition("*")
            status, times = int(float(code)), (int(count) if count else None)
        return cls(
            status=status,
            status_times=times,
            retry=float(found["retry"]) if "retry" in found else None,
            stop=found.get("stop"),
            slow=float(found.get("slow", 0)),
        )

    def fault(self, seen_before: int) -> int | None:
        """The status to answer for this prompt's request number ``seen_before + 1``."""
        if self.status is None:
            return None
        if self.status_times is not None and seen_before >= self.status_times:
            return None
        return self.status


async def receive(server: Any, request: Any) -> bytes:
    """Count a request and read its body, recording it when ``record_requests``."""
    server.total += 1
    raw = await request.read()
    if server.s.record_requests:
        seen = {"method": request.method, "path": request.path_qs, "body": raw}
        server.seen.append({**seen, "headers": list(request.headers.items())})
    return raw


async def take_prompt(server: Any, last_user: str) -> tuple[Directives, int]:
    """Count a request for this prompt and wait as its directives (and ``latency``) say;
    returns its directives and how many requests the prompt had before this one."""
    seen_before = server.per_prompt[last_user]
    server.per_prompt[last_user] += 1
    directives = Directives.read(last_user)
    if directives.slow or server.s.latency:
        await asyncio.sleep(directives.slow + server.s.latency)
    return directives, seen_before


class NativeFake(FakeProvider):
    """A :class:`FakeProvider` serving ``app_factory(self.server)`` instead of chat
    completions: its thread, loop, settings, counters and recorded requests."""

    api_root = ""  # the SDK's base URL is the bare origin

    def _install(self, app: Any) -> None:
        self.app = app
        self.server.app = app.build  # type: ignore[method-assign]  # served by FakeProvider

    def start(self) -> NativeFake:
        super().start()
        self.base_url = self.base_url.removesuffix("/v1") + self.api_root
        return self

    @property
    def seen(self) -> list[dict[str, Any]]:
        """Every request (method, path, headers, body bytes) when ``record_requests``."""
        return self.server.seen

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the recorded requests, in order."""
        return [json.loads(r["body"]) for r in self.server.seen]
