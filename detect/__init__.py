"""detect: find distillation campaigns in API traffic logs, and explain why.

``scan(paths)`` reads schema-v1 traffic (Parquet, JSONL plain or gzip, CSV), computes
per-account features in DuckDB, content signals with scikit-learn estimators, a coordination
graph across accounts, and scores communities as candidate campaigns with label-free
thresholds.  ``simulate`` writes labelled traffic; ``write_html_report`` renders a report.

The errors are plain imports; every other name is imported on first use (see
:mod:`stillroom_core.lazy`), so ``import detect`` and ``stillroom detect --help`` do not
load scikit-learn or scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detect.errors import (
    ColumnMapError,
    ConfigError,
    DetectError,
    LogFormatError,
    LogNotFoundError,
    NoValidRowsError,
    SchemaError,
)
from stillroom_core.lazy import lazy_exports

if TYPE_CHECKING:
    from detect._baselines import PradaDetector, SeatDetector
    from detect._content import MinHashSignatures, PromptIntentClassifier, TopicClusters
    from detect._html import write_html_report
    from detect._ingest import REQUIRED_COLUMNS, SCHEMA_V1, parse_column_map
    from detect._scan import ScanConfig, ScanResult, scan
    from detect._scoring import CampaignDetector
    from detect._simulator import simulate

_LAZY = {
    "MinHashSignatures": "detect._content",
    "PromptIntentClassifier": "detect._content",
    "TopicClusters": "detect._content",
    "REQUIRED_COLUMNS": "detect._ingest",
    "SCHEMA_V1": "detect._ingest",
    "parse_column_map": "detect._ingest",
    "ScanConfig": "detect._scan",
    "ScanResult": "detect._scan",
    "scan": "detect._scan",
    "CampaignDetector": "detect._scoring",
    "simulate": "detect._simulator",
    "write_html_report": "detect._html",
    "PradaDetector": "detect._baselines",
    "SeatDetector": "detect._baselines",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

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
