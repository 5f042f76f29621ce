"""Errors raised by ``detect``; all derive from :class:`DetectError`."""

from stillroom._core.errors import StillroomError


class DetectError(StillroomError):
    """Base class of every error ``detect`` raises on purpose."""


class LogNotFoundError(DetectError):
    """A log path, glob or directory matched no readable traffic file."""


class LogFormatError(DetectError):
    """A traffic file could not be read (unknown extension or corrupt content)."""


class SchemaError(DetectError):
    """A traffic file lacks a required schema-v1 column (after ``--map`` renames)."""


class ColumnMapError(DetectError):
    """A ``--map src=dst`` entry is malformed or names an unknown schema-v1 column."""


class ConfigError(DetectError):
    """A :class:`stillroom.detect.ScanConfig` field is out of range."""


class NoValidRowsError(DetectError):
    """Every row of the input was skipped, so there is nothing to scan."""


class EngineError(DetectError):
    """The requested engine cannot run here (pyspark or a suitable Java is missing)."""


class LateRowsError(DetectError):
    """A fold brought rows for a day the state store folded and no longer keeps rows of."""
