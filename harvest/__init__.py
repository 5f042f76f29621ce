"""harvest: rate-limited, resumable teacher harvesting from OpenAI-compatible APIs into DuckDB.

>>> from harvest import HarvestConfig, run_harvest, harvest_status, export_dataset

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
    from harvest._config import HarvestConfig, HarvestResult
    from harvest._export import export_dataset
    from harvest._limiter import RateLimiter
    from harvest._prompts import Prompt, load_prompts
    from harvest._run import arun_harvest, run_harvest
    from harvest._status import HarvestStatus, harvest_status

_LAZY = {
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
    "export_dataset",
    "harvest_status",
    "load_prompts",
    "run_harvest",
]
