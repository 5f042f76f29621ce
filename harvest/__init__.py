"""harvest: rate-limited, resumable teacher harvesting from OpenAI-compatible APIs into DuckDB.

>>> from harvest import HarvestConfig, run_harvest, harvest_status, export_dataset
"""

from harvest._config import HarvestConfig, HarvestResult
from harvest._export import export_dataset, read_acceptances
from harvest._limiter import RateLimiter
from harvest._prompts import Prompt, load_prompts
from harvest._run import arun_harvest, run_harvest
from harvest._status import HarvestStatus, harvest_status
from harvest.errors import (
    DatabaseBusyError,
    HarvestConfigError,
    HarvestError,
    MissingDependencyError,
    PromptFileError,
    ProviderAuthError,
)

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
    "read_acceptances",
    "run_harvest",
]
