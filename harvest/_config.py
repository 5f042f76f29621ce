"""The typed configuration of a harvest run, and what a run returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from stillroom.harvest._dialect import API_NAMES, RequestOptions, dialect_for, infer_api
from stillroom.harvest.errors import HarvestConfigError


@dataclass
class HarvestConfig:
    """Everything one ``harvest run`` needs.

    Inputs:
        prompts: a prompt file (JSONL/CSV/Parquet/text, see :func:`stillroom.harvest.load_prompts`) or an
            in-memory list of dicts shaped like the JSONL lines (``{"prompt": ...}`` or
            ``{"messages": [...]}``, optional ``"id"``).
        db: the DuckDB file answers go to (created and migrated when missing).
        system: a system message prepended to prompts that do not start with one.

    Teacher:
        base_url, model: the endpoint (what the provider's own SDK takes as its base URL)
            and the model to ask for.
        api: the API dialect (``chat``, ``responses``, ``anthropic``, ``gemini``; default:
            inferred from the host, else ``chat``; see ``stillroom.harvest._dialect``).
        api_key_env: the environment variable holding the key (its value is never stored;
            default: the dialect's, ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``).
        policy, accept, purpose: passed to :func:`stillroom.policies.resolve_for_harvest` before any
            request; ``accept`` lists policy ids whose conditions the user accepts.

    Sampling (dialect-neutral, stored verbatim as ``request_params``; unset ones add nothing):
        max_tokens, temperature, top_p, samples (answers per prompt), top_logprobs (k),
        reasoning_effort, thinking_budget, extra_body (a JSON object merged into every
        request body), seed, stop.

    Limits (the tighter of these and the policy's apply; headers teach the rest):
        rpm, tpm, rpd (requests per UTC day; the run stops cleanly and resumes next run),
        max_spend_usd (with the policy's per-Mtok prices), concurrency, burst_seconds.

    Retries:
        max_wait: the longest single wait (a server asking for more stops the run cleanly),
        max_attempts, request_timeout (seconds), retry_failed (retry recorded failures).

    Batch (``mode="batch"``: the provider's ``/v1/files`` and ``/v1/batches`` (lines for
    ``/v1/chat/completions``, or ``/v1/responses`` with ``api="responses"``), or with
    ``api="anthropic"`` its Message Batches, at batch prices; ``"batch-file"``: write the request JSONL for an offline runner such as
    ``vllm run-batch``; the same run with ``batch_output`` then ingests its output files):
        mode, poll_interval (seconds before the first re-poll; grows while nothing
        changes), max_poll_s (stop polling after this long, ``0``: submit and stop; the
        same run later collects; default: poll until every batch ends), batch_max_requests / batch_max_bytes (per input file; OpenAI's limits by
        default), batch_dir (where ``batch-file`` writes, default beside the database),
        batch_output (``batch-file``: output files to ingest).

    Limits profile:
        limits_profile: what the host's ``x-ratelimit-*`` headers mean (``openai``,
        ``groq``, ``cerebras``, ``anthropic``, ``none``; default: the policy's, else by host, else openai).

    Transport:
        reuse_request: let the SDK build the chat request once and re-send it with each
            prompt's body (the default; about 2x the requests a CPU second). False calls
            ``AsyncOpenAI.post`` for every request. Clients the SDK re-authenticates per
            request always take that path.
    """

    prompts: Path | Sequence[dict[str, Any]]
    db: Path
    base_url: str
    model: str
    policy: str | None = None
    accept: Sequence[str] = ()
    purpose: str | None = None
    api_key_env: str | None = None
    api: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    concurrency: int = 32
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float | None = None
    samples: int = 1
    top_logprobs: int | None = None
    system: str | None = None
    max_wait: float = 300.0
    retry_failed: bool = False
    max_attempts: int = 6
    request_timeout: float = 600.0
    max_spend_usd: float | None = None
    burst_seconds: float = 1.0
    reuse_request: bool = True
    limits_profile: str | None = None
    mode: str = "sync"
    poll_interval: float = 30.0
    max_poll_s: float | None = None
    batch_max_requests: int = 50_000
    batch_max_bytes: int = 200 * 1024 * 1024
    batch_dir: Path | None = None
    batch_output: Sequence[Path] = ()
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    extra_body: dict[str, Any] | None = None
    seed: int | None = None
    stop: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.prompts, str):
            self.prompts = Path(self.prompts)
        self.db = Path(self.db)
        self.accept = tuple(self.accept)
        if not self.base_url.startswith(("http://", "https://")):
            self._bad("base_url", "must start with http:// or https://")
        if not self.model.strip():
            self._bad("model", "must not be empty")
        if self.api is None:
            self.api = infer_api(self.base_url)
        if self.api not in API_NAMES:
            self._bad("api", f"must be one of {', '.join(API_NAMES)}")
        if self.api_key_env is None:
            self.api_key_env = dialect_for(self.api).key_env
        if not self.api_key_env.strip():
            self._bad("api_key_env", "must name an environment variable")
        self.stop = tuple(self.stop)
        if self.extra_body is not None and not isinstance(self.extra_body, dict):
            self._bad("extra_body", "must be a JSON object")
        if self.thinking_budget is not None and self.thinking_budget < -1:
            self._bad("thinking_budget", "must be -1 (Gemini: the model decides), 0 (off) or more")
        if self.mode != "sync" and dialect_for(self.api).batch_url is None:
            self._bad("mode", f"batch modes do not support --api {self.api} yet")
        if self.mode == "batch-file" and self.api == "anthropic":
            self._bad("mode", "batch-file writes OpenAI batch JSONL (vllm run-batch); --api "
                      "anthropic takes --mode batch (Message Batches)")  # fmt: skip
        for name in ("rpm", "tpm", "rpd"):
            value = getattr(self, name)
            if value is not None and value < 1:
                self._bad(name, "must be at least 1")
        for name in ("concurrency", "max_tokens", "samples", "max_attempts"):
            if getattr(self, name) < 1:
                self._bad(name, "must be at least 1")
        if not 0.0 <= self.temperature <= 2.0:
            self._bad("temperature", "must be between 0 and 2")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            self._bad("top_p", "must be in (0, 1]")
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= 20:
            self._bad("top_logprobs", "must be between 0 and 20")
        for name in ("max_wait", "request_timeout", "burst_seconds"):
            if getattr(self, name) <= 0:
                self._bad(name, "must be positive")
        if self.max_spend_usd is not None and self.max_spend_usd <= 0:
            self._bad("max_spend_usd", "must be positive")
        if self.mode not in ("sync", "batch", "batch-file"):
            self._bad("mode", "must be sync, batch or batch-file")
        if self.poll_interval <= 0:
            self._bad("poll_interval", "must be positive")
        if self.max_poll_s is not None and self.max_poll_s < 0:
            self._bad("max_poll_s", "must be >= 0 (0: submit, then stop)")
        if self.batch_max_requests < 1 or self.batch_max_bytes < 1024:
            self._bad("batch_max_requests", "and batch_max_bytes must be >= 1 and >= 1024")
        if self.batch_dir is not None:
            self.batch_dir = Path(self.batch_dir)
        self.batch_output = tuple(Path(p) for p in self.batch_output)
        if self.batch_output and self.mode != "batch-file":
            self._bad("batch_output", "is for mode='batch-file' (ingest an offline run's output)")

    def _bad(self, name: str, why: str) -> None:
        raise HarvestConfigError(f"HarvestConfig.{name}={getattr(self, name)!r}: {why}")

    def request_options(self) -> RequestOptions:
        """The dialect-neutral options every request of this run asks for."""
        return RequestOptions(
            max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
            top_logprobs=self.top_logprobs, reasoning_effort=self.reasoning_effort,
            thinking_budget=self.thinking_budget, extra_body=self.extra_body, seed=self.seed,
            stop=tuple(self.stop),
        )  # fmt: skip

    def record(self) -> dict[str, Any]:
        """JSON-able copy for the runs table (in-memory prompts summarised, no key)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["prompts"] = (
            str(self.prompts)
            if isinstance(self.prompts, Path)
            else f"<{len(self.prompts)} in memory>"
        )
        data["db"] = str(self.db)
        data["accept"] = list(self.accept)
        data["batch_dir"] = str(self.batch_dir) if self.batch_dir else None
        data["batch_output"] = [str(p) for p in self.batch_output]
        data["stop"] = list(self.stop)
        return data


@dataclass
class HarvestResult:
    """What one run did. ``stopped_reason`` is None when every item was settled."""

    run_id: str
    db: Path
    planned: int
    already_done: int
    completed: int
    failed: int
    requests: int
    rate_limited: int
    prompt_tokens: int
    completion_tokens: int
    elapsed_s: float
    stopped_reason: str | None = None
    message: str | None = None
    learned_limits: dict[str, Any] = field(default_factory=dict)
    est_spend_usd: float | None = None  # batch runs: the worst case reserved before submission
    spend_usd: float | None = None  # what this run's answers cost (batch runs: batch prices)
    length_stops: int = 0  # this run's answers cut at max_tokens (finish == "length")

    @property
    def pending(self) -> int:
        return self.planned - self.already_done - self.completed - self.failed

    @property
    def completions_per_s(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["db"] = str(self.db)
        data["pending"] = self.pending
        data["completions_per_s"] = round(self.completions_per_s, 2)
        return data
