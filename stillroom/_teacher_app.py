"""The process the embedded teacher runs in: llama.cpp's OpenAI-compatible server.

Started by :class:`stillroom.teacher.TeacherServer` as ``python -m stillroom._teacher_app``
with its settings as one JSON argument (``"backend": "transformers"`` hands over to
:mod:`stillroom._teacher_hf`). It adds to ``llama_cpp.server``:

- a self-test before it listens: a short chat answer (a multi-token prompt decode and a few
  generated tokens) on the loaded model, so a llama.cpp build that crashes on this CPU dies
  before the teacher reports ready, with a Python traceback in the log (``faulthandler``);
- the scoring route (``/v1/completions`` + ``echo`` + ``logprobs`` in one ``Llama.eval``,
  :mod:`stillroom._teacher_scoring`) and ``GET /v1/tokenizer``;
- a default system prompt, prepended to a chat request that carries no system message
  (a request with its own system message is served as sent);
- a watchdog that exits when the parent process is gone, so a killed demo leaves no
  server behind.

The one place that reaches into ``llama_cpp.server.app``'s module state is
:func:`_llama_lock_and_model` (its model global and its request lock).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from stillroom._teacher_routes import (
    ASGIApp,
    DefaultSystemPrompt,
    ScoringRoutes,
    with_system_prompt,
)
from stillroom._teacher_scoring import (
    ScoreRequest,
    ScoringRequestError,
    score_completion,
    vocab_fingerprint,
)

__all__ = ["DefaultSystemPrompt", "LlamaScorer", "build_app", "self_test", "with_system_prompt"]


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


class LlamaScorer:
    """The scoring backend over a ``llama_cpp.Llama`` created with ``logits_all=True``.

    ``logits`` evaluates the text once (``Llama.eval``) and returns a view of ``Llama.scores``,
    reusing the prefix the model already holds (the same text's prompt, a previous sample).
    Memory: ``logits_all`` keeps n_ctx x vocab float32 scores (2048 x 49152 x 4 B = 403 MB for
    SmolLM2); the log-softmax adds CHUNK_ROWS x vocab floats (25 MB), not a second matrix.
    """

    def __init__(self, llama: Any, logits_all: bool = True) -> None:
        import llama_cpp

        self.llama = llama
        self.logits_all = logits_all
        self.vocab_size = llama.n_vocab()
        self.n_ctx = llama.n_ctx()
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._pieces: dict[int, bytes] = {}

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        data = text.encode("utf-8")
        ids = self.llama.tokenize(data, add_bos=True, special=True)
        bare = self.llama.tokenize(data, add_bos=False, special=True)
        return ids, len(ids) == len(bare) + 1

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        if not self.logits_all:
            raise ScoringRequestError(
                "logprobs",
                "this teacher runs without logits_all (--no-logprobs): start it with logprobs on",
            )
        llama = self.llama
        held = llama.input_ids[: llama.n_tokens].tolist()
        common = llama.longest_token_prefix(held, ids)
        if common < len(ids):
            llama.n_tokens = common  # eval() drops the KV cache from here on
            llama.eval(list(ids[common:]))
        return llama.scores[: len(ids)]

    def piece(self, token_id: int) -> bytes:
        if token_id not in self._pieces:
            self._pieces[token_id] = self.llama.detokenize([token_id], special=True)
        return self._pieces[token_id]

    def is_end(self, token_id: int) -> bool:
        return bool(self._is_eog(self._vocab, token_id))

    def tokenizer_info(self) -> dict[str, Any]:
        import llama_cpp

        texts = [
            llama_cpp.llama_vocab_get_text(self._vocab, i).decode("utf-8", errors="surrogateescape")
            for i in range(self.vocab_size)
        ]
        return {
            "backend": "llama.cpp",
            "vocab_size": self.vocab_size,
            "vocab_sha256": vocab_fingerprint(texts),
            "bos_token_id": self.llama.token_bos(),
            "eos_token_id": self.llama.token_eos(),
        }


@contextlib.asynccontextmanager
async def _llama_lock_and_model(model: str | None) -> AsyncIterator[Any]:
    """The served ``Llama``, held under llama_cpp.server's own request lock."""
    from llama_cpp.server.app import get_llama_proxy

    async with contextlib.asynccontextmanager(get_llama_proxy)() as proxy:
        yield proxy(model)


def loaded_llama() -> Any:
    """The model ``create_app`` loaded (llama_cpp.server keeps it in a module global)."""
    from llama_cpp.server import app as server_app

    return server_app._llama_proxy()  # no public accessor outside a request


def with_scoring(app: ASGIApp, llama: Any, settings: dict[str, Any]) -> ASGIApp:
    """``app`` with the scoring and tokenizer routes in front (see :class:`ScoringRoutes`)."""
    from starlette.concurrency import run_in_threadpool

    scorer = LlamaScorer(llama, logits_all=settings["model"].get("logits_all", False))
    alias = settings["model"].get("model_alias") or settings["model"]["model"]

    async def score(request: ScoreRequest) -> dict[str, Any]:
        async with _llama_lock_and_model(request.model):
            return await run_in_threadpool(score_completion, scorer, request, alias)

    return ScoringRoutes(app, score, scorer.tokenizer_info())


def build_app(settings: dict[str, Any]) -> ASGIApp:
    """The llama.cpp server app for these settings (see ``TeacherConfig.model_settings``)."""
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    app = create_app(
        server_settings=ServerSettings(
            host=settings["host"], port=settings["port"], interrupt_requests=False
        ),
        model_settings=[ModelSettings(**settings["model"])],
    )
    if settings.get("scoring_route", True):
        app = with_scoring(app, loaded_llama(), settings)
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
    if settings.get("backend") == "transformers":
        from stillroom._teacher_hf import build_app as build_hf_app

        app = build_hf_app(settings)
    else:
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
