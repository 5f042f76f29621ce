"""detect: find distillation campaigns in API traffic logs, and explain why.

``scan(paths)`` reads schema-v1 traffic (Parquet, JSONL plain or gzip, CSV), computes
per-account features in DuckDB, content signals with scikit-learn estimators, a coordination
graph across accounts, and scores communities as candidate campaigns with label-free
thresholds.  ``simulate`` writes labelled traffic; ``write_html_report`` renders a report.
"""

from detect._content import MinHashSignatures, PromptIntentClassifier, TopicClusters
from detect._ingest import REQUIRED_COLUMNS, SCHEMA_V1, parse_column_map
from detect._scan import ScanConfig, ScanResult, scan
from detect._scoring import CampaignDetector
from detect.errors import (
    ColumnMapError,
    ConfigError,
    DetectError,
    LogFormatError,
    LogNotFoundError,
    NoValidRowsError,
    SchemaError,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "SCHEMA_V1",
    "CampaignDetector",
    "ColumnMapError",
    "ConfigError",
    "DetectError",
    "LogFormatError",
    "LogNotFoundError",
    "MinHashSignatures",
    "NoValidRowsError",
    "PradaDetector",
    "PromptIntentClassifier",
    "ScanConfig",
    "ScanResult",
    "SchemaError",
    "SeatDetector",
    "TopicClusters",
    "parse_column_map",
    "scan",
    "simulate",
    "write_html_report",
]

_LAZY = {
    "simulate": ("detect.simulator", "simulate"),
    "write_html_report": ("detect._html", "write_html_report"),
    "PradaDetector": ("detect._baselines", "PradaDetector"),
    "SeatDetector": ("detect._baselines", "SeatDetector"),
}


def __getattr__(name: str):
    """Lazy re-exports of the simulator, HTML writer and baselines (built alongside)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'detect' has no attribute {name!r}")
