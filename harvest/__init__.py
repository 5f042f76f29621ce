"""harvest: rate-limited, resumable teacher harvesting from OpenAI-compatible APIs into DuckDB.

>>> from harvest import HarvestConfig, run_harvest, harvest_status, export_dataset

Everything downstream (export, train, eval, curate) reads a harvest through one contract,
``harvest._completions``: :class:`CompletionRow`, :func:`read_completions`,
:func:`write_completions`, :func:`split_think`, :func:`prompt_key`, :func:`render_assistant`.

The errors are plain imports; every other name is imported on first use (see
:mod:`stillroom_core.lazy`), so ``import harvest`` (and the CLI's ``--help``) does not load
the openai SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harvest.errors import (
    DatabaseBusyError,
    HarvestConfigError,
    HarvestError,
    MissingDependencyError,
    PromptFileError,
    ProviderAuthError,
)
from stillroom_core.lazy import lazy_exports

if TYPE_CHECKING:
    from harvest._completions import (
        CompletionRow,
        completion_row,
        prompt_key,
        read_completions,
        render_assistant,
        split_think,
        write_completions,
    )
    from harvest._config import HarvestConfig, HarvestResult
    from harvest._export import export_dataset
    from harvest._limiter import RateLimiter
    from harvest._prompts import Prompt, load_prompts
    from harvest._run import arun_harvest, run_harvest
    from harvest._status import HarvestStatus, harvest_status

_LAZY = {
    "CompletionRow": "harvest._completions",
    "completion_row": "harvest._completions",
    "prompt_key": "harvest._completions",
    "read_completions": "harvest._completions",
    "render_assistant": "harvest._completions",
    "split_think": "harvest._completions",
    "write_completions": "harvest._completions",
    "HarvestConfig": "harvest._config",
    "HarvestResult": "harvest._config",
    "export_dataset": "harvest._export",
    "RateLimiter": "harvest._limiter",
    "Prompt": "harvest._prompts",
    "load_prompts": "harvest._prompts",
    "arun_harvest": "harvest._run",
    "run_harvest": "harvest._run",
    "HarvestStatus": "harvest._status",
    "harvest_status": "harvest._status",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "CompletionRow",
    "DatabaseBusyError",
    "HarvestConfig",
    "HarvestConfigError",
    "HarvestError",
    "HarvestResult",
    "HarvestStatus",
    "MissingDependencyError",
    "Prompt",
    "PromptFileError",
    "ProviderAuthError",
    "RateLimiter",
    "arun_harvest",
    "completion_row",
    "export_dataset",
    "harvest_status",
    "load_prompts",
    "prompt_key",
    "read_completions",
    "render_assistant",
    "run_harvest",
    "split_think",
    "write_completions",
]
