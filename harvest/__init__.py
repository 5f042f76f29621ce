"""harvest: rate-limited, resumable teacher harvesting from OpenAI-compatible APIs into DuckDB.

>>> from harvest import HarvestConfig, run_harvest, harvest_status, export_dataset

Everything downstream (export, train, eval, curate) reads a harvest through one contract,
``stillroom.harvest._completions``: :class:`CompletionRow`, :func:`read_completions`,
:func:`write_completions`, :func:`split_think`, :func:`prompt_key`, :func:`render_assistant`.

The errors are plain imports; every other name is imported on first use (see
:mod:`stillroom._core.lazy`), so ``import stillroom.harvest`` (and the CLI's ``--help``) does not load
the openai SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stillroom._core.lazy import lazy_exports
from stillroom.harvest.errors import (
    DatabaseBusyError,
    HarvestConfigError,
    HarvestError,
    MissingDependencyError,
    NoPromptLogprobs,
    PromptFileError,
    ProviderAuthError,
)

if TYPE_CHECKING:
    from stillroom.harvest._batch_run import cancel_batches
    from stillroom.harvest._budget import Caps, RunLimits, limits_within
    from stillroom.harvest._completions import (
        CompletionRow,
        completion_row,
        iter_completions,
        prompt_key,
        read_completions,
        render_assistant,
        split_think,
        write_completions,
    )
    from stillroom.harvest._config import HarvestConfig, HarvestResult
    from stillroom.harvest._dialect import RequestOptions, dialect_for
    from stillroom.harvest._dialect_scoring import ScoringEcho
    from stillroom.harvest._export import export_dataset, read_acceptances, reasoning_kind_note
    from stillroom.harvest._limiter import RateLimiter, retry_after_seconds
    from stillroom.harvest._prompts import Prompt, load_prompts
    from stillroom.harvest._retry import PermanentError, TransientError, retrying
    from stillroom.harvest._run import arun_harvest, run_harvest
    from stillroom.harvest._status import HarvestStatus, harvest_status

_LAZY = {
    "cancel_batches": "stillroom.harvest._batch_run",
    "Caps": "stillroom.harvest._budget",
    "RunLimits": "stillroom.harvest._budget",
    "limits_within": "stillroom.harvest._budget",
    "CompletionRow": "stillroom.harvest._completions",
    "completion_row": "stillroom.harvest._completions",
    "iter_completions": "stillroom.harvest._completions",
    "prompt_key": "stillroom.harvest._completions",
    "read_completions": "stillroom.harvest._completions",
    "render_assistant": "stillroom.harvest._completions",
    "split_think": "stillroom.harvest._completions",
    "write_completions": "stillroom.harvest._completions",
    "HarvestConfig": "stillroom.harvest._config",
    "HarvestResult": "stillroom.harvest._config",
    "RequestOptions": "stillroom.harvest._dialect",
    "dialect_for": "stillroom.harvest._dialect",
    "ScoringEcho": "stillroom.harvest._dialect_scoring",
    "export_dataset": "stillroom.harvest._export",
    "reasoning_kind_note": "stillroom.harvest._export",
    "read_acceptances": "stillroom.harvest._export",
    "RateLimiter": "stillroom.harvest._limiter",
    "retry_after_seconds": "stillroom.harvest._limiter",
    "PermanentError": "stillroom.harvest._retry",
    "TransientError": "stillroom.harvest._retry",
    "retrying": "stillroom.harvest._retry",
    "Prompt": "stillroom.harvest._prompts",
    "load_prompts": "stillroom.harvest._prompts",
    "arun_harvest": "stillroom.harvest._run",
    "run_harvest": "stillroom.harvest._run",
    "HarvestStatus": "stillroom.harvest._status",
    "harvest_status": "stillroom.harvest._status",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "Caps",
    "CompletionRow",
    "DatabaseBusyError",
    "HarvestConfig",
    "HarvestConfigError",
    "HarvestError",
    "HarvestResult",
    "HarvestStatus",
    "MissingDependencyError",
    "NoPromptLogprobs",
    "PermanentError",
    "Prompt",
    "PromptFileError",
    "ProviderAuthError",
    "RateLimiter",
    "RequestOptions",
    "RunLimits",
    "ScoringEcho",
    "TransientError",
    "arun_harvest",
    "cancel_batches",
    "completion_row",
    "dialect_for",
    "export_dataset",
    "harvest_status",
    "iter_completions",
    "limits_within",
    "load_prompts",
    "prompt_key",
    "read_acceptances",
    "read_completions",
    "reasoning_kind_note",
    "render_assistant",
    "retry_after_seconds",
    "retrying",
    "run_harvest",
    "split_think",
    "write_completions",
]
