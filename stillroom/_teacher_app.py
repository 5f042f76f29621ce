"""The process the embedded teacher runs in: llama.cpp's OpenAI-compatible server.

Started by :class:`stillroom.teacher.TeacherServer` as ``python -m stillroom._teacher_app``
with its settings as one JSON argument. It adds three things to ``llama_cpp.server``:

- a self-test before it listens: a short chat answer (a multi-token prompt decode and a few
  generated tokens) on the loaded model, so a llama.cpp build that crashes on this CPU dies
  before the teacher reports ready, with a Python traceback in the log (``faulthandler``);
- a default system prompt, prepended to a chat request that carries no system message
  (a request with its own system message is served as sent);
- a watchdog that exits when the parent process is gone, so a killed demo leaves no
  server behind.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"


def with_system_prompt(body: bytes, system: str) -> bytes:
    """The request body with ``system`` as first message when it has no system message.

    Anything that is not a JSON chat request with a ``messages`` list is returned as is,
    for llama.cpp's own validation to answer.
    """
    try:
        request = json.loads(body)
    except ValueError:
        return body
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return body
    if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        return body
    request["messages"] = [{"role": "system", "content": system}, *messages]
    return json.dumps(request).encode()


class DefaultSystemPrompt:
    """ASGI middleware: a default system prompt for chat requests that have none."""

    def __init__(self, app: ASGIApp, system: str) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = with_system_prompt(b"".join(chunks), self.system)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, replay, send)


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(0)


def self_test(llama: Any, max_tokens: int = 4) -> str:
    """Decode a short chat answer on ``llama`` (a ``llama_cpp.Llama``); a one-line report.

    A multi-token prompt is what crashes a native build on AVX-512/AMX CPUs (a one-token
    decode does not), so this is what the teacher runs before it reports ready.
    """
    started = time.perf_counter()
    answer = llama.create_chat_completion(
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=max_tokens,
        temperature=0.0,
    )
    llama.reset()  # the first request starts from an empty context, as without the test
    usage = answer["usage"]
    return (
        f"self-test: {usage['prompt_tokens']} prompt tokens decoded, "
        f"{usage['completion_tokens']} generated in {time.perf_counter() - started:.2f}s"
    )


def loaded_llama() -> Any:
    """The model ``create_app`` loaded (llama_cpp.server keeps it in a module global)."""
    from llama_cpp.server import app as server_app

    return server_app._llama_proxy()  # no public accessor outside a request


def build_app(settings: dict[str, Any]) -> ASGIApp:
    """The llama.cpp server app for these settings (see ``TeacherConfig.server_settings``)."""
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    app = create_app(
        server_settings=ServerSettings(
            host=settings["host"], port=settings["port"], interrupt_requests=False
        ),
        model_settings=[ModelSettings(**settings["model"])],
    )
    if settings.get("system"):
        return DefaultSystemPrompt(app, settings["system"])
    return app


def main(argv: list[str]) -> None:
    import uvicorn

    faulthandler.enable()  # a crash in llama.cpp leaves the Python stack in the log
    settings = json.loads(argv[0])
    parent = settings.get("parent_pid")
    if parent:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    import llama_cpp

    print(f"llama.cpp: {llama_cpp.llama_print_system_info().decode().strip()}", flush=True)
    app = build_app(settings)
    print(self_test(loaded_llama()), flush=True)
    uvicorn.run(
        app,
        host=settings["host"],
        port=settings["port"],
        log_level="warning",
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
