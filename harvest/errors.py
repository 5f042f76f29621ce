"""Errors raised by ``harvest``; all derive from :class:`HarvestError`."""

from stillroom._core.errors import StillroomError


class HarvestError(StillroomError):
    """Base class of every error ``harvest`` raises on purpose."""


class HarvestConfigError(HarvestError, ValueError):
    """A :class:`~stillroom.harvest.HarvestConfig` field has a value that cannot work."""


class PromptFileError(HarvestError):
    """A prompt file (or in-memory prompt list) has a bad line; names the file and line."""


class DatabaseBusyError(HarvestError):
    """Another process holds the harvest database open for writing."""


class ProviderAuthError(HarvestError):
    """The provider refused the credentials (401/403); the whole run stops."""


class MissingDependencyError(HarvestError):
    """An optional package (for example ``datasets``) is needed but not installed."""


class NoPromptLogprobs(HarvestError):
    """A teacher's reply to a scoring request (dialect ``scoring``) has no per-token
    log-probabilities of the given text."""
