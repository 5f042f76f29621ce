"""detect: find distillation campaigns in API traffic logs, and explain why.

``scan(paths)`` reads schema-v1 traffic (Parquet, JSONL plain or gzip, CSV), computes
per-account features in DuckDB, content signals with scikit-learn estimators, a coordination
graph across accounts, and scores communities as candidate campaigns with label-free
thresholds.  ``simulate`` writes labelled traffic; ``write_html_report`` renders a report.

The errors are plain imports; every other name is imported on first use (see
:mod:`stillroom._core.lazy`), so ``import stillroom.detect`` and ``stillroom detect --help`` do not
load scikit-learn or scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stillroom._core.lazy import lazy_exports
from stillroom.detect.errors import (
    ColumnMapError,
    ConfigError,
    DetectError,
    LateRowsError,
    LogFormatError,
    LogNotFoundError,
    NoValidRowsError,
    SchemaError,
)

if TYPE_CHECKING:
    from stillroom.detect._baselines import PradaDetector, SeatDetector
    from stillroom.detect._behaviour import BehaviourParams, behaviour_flags
    from stillroom.detect._content import MinHashSignatures, PromptIntentClassifier, TopicClusters
    from stillroom.detect._engine import DuckDBEngine, Engine, to_spark_sql
    from stillroom.detect._html import write_html_report
    from stillroom.detect._ingest import REQUIRED_COLUMNS, SCHEMA_V1, parse_column_map
    from stillroom.detect._scan import ScanConfig, ScanResult, scan
    from stillroom.detect._scoring import CampaignDetector
    from stillroom.detect._spark import SparkEngine, spark_session
    from stillroom.detect.simulator import simulate

_LAZY = {
    "MinHashSignatures": "stillroom.detect._content",
    "PromptIntentClassifier": "stillroom.detect._content",
    "TopicClusters": "stillroom.detect._content",
    "REQUIRED_COLUMNS": "stillroom.detect._ingest",
    "SCHEMA_V1": "stillroom.detect._ingest",
    "parse_column_map": "stillroom.detect._ingest",
    "ScanConfig": "stillroom.detect._scan",
    "ScanResult": "stillroom.detect._scan",
    "scan": "stillroom.detect._scan",
    "CampaignDetector": "stillroom.detect._scoring",
    "simulate": "stillroom.detect.simulator",
    "BehaviourParams": "stillroom.detect._behaviour",
    "behaviour_flags": "stillroom.detect._behaviour",
    "write_html_report": "stillroom.detect._html",
    "PradaDetector": "stillroom.detect._baselines",
    "SeatDetector": "stillroom.detect._baselines",
    # the engine layer, public for other packages (curate's out-of-core dedup runs on it)
    "Engine": "stillroom.detect._engine",
    "DuckDBEngine": "stillroom.detect._engine",
    "to_spark_sql": "stillroom.detect._engine",
    "SparkEngine": "stillroom.detect._spark",
    "spark_session": "stillroom.detect._spark",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "REQUIRED_COLUMNS",
    "SCHEMA_V1",
    "BehaviourParams",
    "CampaignDetector",
    "ColumnMapError",
    "ConfigError",
    "DetectError",
    "DuckDBEngine",
    "Engine",
    "LateRowsError",
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
    "SparkEngine",
    "TopicClusters",
    "behaviour_flags",
    "parse_column_map",
    "scan",
    "simulate",
    "spark_session",
    "to_spark_sql",
    "write_html_report",
]
