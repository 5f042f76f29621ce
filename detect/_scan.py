"""``stillroom.detect.scan``: logs in, report out; the stages themselves are in :mod:`stillroom.detect._stages`."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from stillroom.detect import _stages as stages
from stillroom.detect._behaviour import BehaviourParams
from stillroom.detect._engine import DuckDBEngine, memory_bytes
from stillroom.detect._graph import GraphParams
from stillroom.detect._scoring import CampaignDetector
from stillroom.detect.errors import ConfigError

# the share of ``memory_limit`` DuckDB keeps once the rows are reduced to per-account
# partials: the rest is left to the frames, samples and embeddings of the account-level stages
ENGINE_SHARE = 0.5


@dataclass
class ScanConfig:
    """How :func:`scan` works.  Every field has a default that needs no tuning per log.

    Content (text work on a per-account sample, never on every row):
        sample_per_account: prompts per account the scikit-learn estimators see.
        sample_budget: cap on sampled prompts in all (the per-account cap shrinks to fit).
        n_topics: capability topic clusters.
        intent_seed_share: share of an account's sampled prompts the intent classifier reads
            as reasoning or grading asks that makes it a graph seed (and a reason).

    Intent (what is asked; see :mod:`stillroom.detect._intent`):
        embedder: prompt embeddings, ``"static"`` (the packaged MiniLM's word-piece table,
            the whole sample), ``"minilm"`` (its transformer on ``embed_budget`` prompts) or
            ``"hashing"`` (no model).
        prompt_chars: prompts are cut to this many characters before embedding.
        public_index: optional file of public prompts (instruction / benchmark sets) whose
            closeness is reported as provenance.
        max_prompt_share: an exact prompt sent by 2 to this many accounts links them.
        target_fpr: false-positive rate the log-calibrated lines (robust upper quantiles
            per volume stratum) are drawn at.

    Coordination graph:
        max_group: an artifact (IP, user agent, ...) shared by more accounts links nobody.
        min_edge: summed link weight that makes two accounts neighbours.
        infra_edge: purity-weighted infrastructure weight (shared IPs, payment or org ids,
            synchronised activity) that makes two accounts share infrastructure.
        sync_bucket_s: SynchroTrap time bucket in seconds.

    Behaviours (see :class:`stillroom.detect.BehaviourParams`):
        behaviour: machine pacing, output-heavy and logprob-harvest thresholds.

    Calibration (label-free; see :class:`stillroom.detect.CampaignDetector`):
        alpha, min_rate, min_hits, member_min_rate, quiet_min.

    Engine and report:
        memory_limit: DuckDB memory limit (it spills to ``workdir`` beyond it) for the
            row-level stages; the account-level ones, whose pandas frames sit beside the
            engine, hold DuckDB to ``ENGINE_SHARE`` of it.
        threads: DuckDB threads (None: all cores).
        workdir: where the scan's temporary DuckDB file lives (None: a temp dir).
        max_graph_edges: edges kept in the report's ``graph``.
    """

    sample_per_account: int = 24
    intent_seed_share: float = 0.25
    sample_budget: int = 40_000
    n_topics: int = 24
    embedder: str = "static"
    embed_budget: int = 2000
    prompt_chars: int = 256
    public_index: Path | None = None
    max_prompt_share: int = 8
    target_fpr: float = 0.001
    max_group: int = 500
    min_edge: float = 0.5
    infra_edge: float = 0.3
    sync_bucket_s: int = 60
    alpha: float = 0.01
    min_rate: float = 0.05
    min_hits: int = 5
    member_min_rate: float = 0.02
    quiet_min: float = 0.1
    memory_limit: str = "3GB"
    threads: int | None = None
    workdir: Path | None = None
    max_graph_edges: int = 2000
    behaviour: BehaviourParams = field(default_factory=BehaviourParams)

    def graph_params(self) -> GraphParams:
        return GraphParams(
            max_group=self.max_group, min_edge=self.min_edge, sync_bucket_s=self.sync_bucket_s
        )

    def detector(self) -> CampaignDetector:
        return CampaignDetector(
            alpha=self.alpha,
            min_rate=self.min_rate,
            min_hits=self.min_hits,
            member_min_rate=self.member_min_rate,
            quiet_min=self.quiet_min,
        )

    def __post_init__(self) -> None:
        positive = (
            "sample_per_account",
            "sample_budget",
            "n_topics",
            "max_group",
            "sync_bucket_s",
            "min_hits",
            "max_graph_edges",
            "embed_budget",
            "prompt_chars",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"ScanConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.infra_edge > 0:
            raise ConfigError(f"ScanConfig.infra_edge must be > 0, got {self.infra_edge}")
        for name in ("alpha", "min_rate", "member_min_rate", "quiet_min", "intent_seed_share"):
            value = float(getattr(self, name))
            if not 0.0 <= value < 1.0 or (name == "alpha" and value == 0.0):
                raise ConfigError(f"ScanConfig.{name} must be in (0, 1), got {value}")
        if int(self.max_prompt_share) < 2:
            raise ConfigError(
                f"ScanConfig.max_prompt_share must be >= 2, got {self.max_prompt_share}"
            )
        if not 0.0 < float(self.target_fpr) < 0.5:
            raise ConfigError(f"ScanConfig.target_fpr must be in (0, 0.5), got {self.target_fpr}")
        if self.embedder not in ("static", "minilm", "hashing"):
            raise ConfigError(
                f"ScanConfig.embedder must be static, minilm or hashing, got {self.embedder!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"ScanConfig.threads must be >= 1, got {self.threads}")


@dataclass
class ScanResult:
    """The report (a JSON-able dict) with writers for JSON and CSV."""

    report: dict
    accounts: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def write_json(self, path: Path | str) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.report, indent=1, default=_json_default) + "\n")
        return path

    def write_csv(self, path: Path | str) -> Path:
        """One row per account: id, score, flagged, campaign, requests, reasons (``; ``)."""
        path = Path(path)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["account_id", "score", "flagged", "campaign", "requests", "reasons"])
            for a in self.report["accounts"]:
                writer.writerow(
                    [
                        a["account_id"],
                        a["score"],
                        a["flagged"],
                        a["campaign"] or "",
                        a["requests"],
                        "; ".join(a["reasons"]),
                    ]
                )
        return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def scan(
    paths: list[str | Path] | str | Path,
    *,
    column_map: list[str] | dict[str, str] | None = None,
    config: ScanConfig | None = None,
    progress=None,
    spark=None,
    state: Path | str | None = None,
    window_days: int = 30,
    late_days: int = 2,
) -> ScanResult:
    """Scan traffic logs (files, globs, directories) and return the campaign report.

    ``progress(stage, seconds)``, when given, is called as each stage (ingest, partials, features,
    content, graph, campaigns, report) finishes.  ``spark`` (a ``SparkSession``) runs the
    row-level stages on Spark instead of embedded DuckDB; the account-level ones stay here.
    ``state`` (a DuckDB file) makes the scan incremental: the per-(account, UTC day) partials
    of the rows read are folded into the store, and the latest ``window_days`` days in it are
    merged and scored (see :mod:`stillroom.detect._state`).  A file the store folded before
    (same content) is not read again; rows up to ``late_days`` days older than the store's
    latest day recompute their day, older ones for a day it folded raise ``LateRowsError``."""
    config = config or ScanConfig()
    store = None
    if state is not None:
        from stillroom.detect._state import StateStore

        if spark is not None:
            raise ConfigError("an incremental scan (state=) runs on DuckDB, not Spark")
        store = StateStore(Path(state), window_days, late_days)
    if isinstance(paths, str | Path):
        paths = [paths]
    if spark is not None:
        from stillroom.detect._spark import SparkEngine

        return _scan(SparkEngine(spark), list(paths), column_map, config, progress)
    workdir = Path(tempfile.mkdtemp(prefix="stillroom-detect-", dir=config.workdir))
    try:
        con = duckdb.connect(str(workdir / "scan.duckdb"))
        try:
            _configure(con, config, workdir)
            return _scan(DuckDBEngine(con), list(paths), column_map, config, progress, store)
        finally:
            con.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _configure(con, config: ScanConfig, workdir: Path) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{config.memory_limit}'")
    con.execute(f"SET temp_directory = '{workdir / 'spill'}'")
    con.execute("SET preserve_insertion_order = false")
    # inside Jupyter DuckDB refuses any change to this setting without ipywidgets
    with contextlib.suppress(duckdb.Error):
        con.execute("SET enable_progress_bar = false")
    if config.threads:
        con.execute(f"SET threads = {int(config.threads)}")


class _Stages:
    """Wall-clock seconds per stage, reported in ``summary.stage_seconds``."""

    def __init__(self, progress=None) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()
        self._progress = progress

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
        if self._progress is not None:
            self._progress(name, self.seconds[name])


def _scan(engine, paths, column_map, config: ScanConfig, progress=None, store=None) -> ScanResult:
    started = time.perf_counter()
    timer = _Stages(progress)
    stats = stages.ingest(engine, paths, column_map, config, store)
    timer.done("ingest")
    stats, folded_days = stages.partials(engine, stats, config, store)
    limit = memory_bytes(str(config.memory_limit))
    if limit is not None:
        engine.limit_memory(f"{int(limit * ENGINE_SHARE) // 2**20}MiB")
    timer.done("partials")
    accounts = stages.features(engine, stats, config)
    timer.done("features")
    accounts, templates = stages.content(engine, accounts, config)
    timer.done("content")
    accounts, graph = stages.graph(engine, accounts, templates, config)
    timer.done("graph")
    accounts, scored = stages.scoring(accounts, graph, config)
    timer.done("scoring")
    report = stages.report(engine, accounts, graph, scored, config)
    if store is not None:
        store.remember_flags(engine.con, report["campaigns"])
    report["summary"] = _summary(stats, accounts, scored, report["campaigns"], config, started)
    if store is not None:
        report["summary"]["state"] = {
            "path": str(store.path),
            "window_days": store.window_days,
            "days": store.window_days_kept(engine.con),
            "folded_days": [str(d) for d in folded_days],
            "late_days": store.late_days,
            "already_folded": store.already_folded,
        }
    timer.done("report")
    report["summary"]["stage_seconds"] = timer.seconds
    return ScanResult(report=report, accounts=accounts.join(scored.assigned))


def _summary(stats, accounts, scored, campaigns, config, started) -> dict:
    flagged, detector = scored.assigned["flagged"], scored.detector
    return {
        "rows": stats.rows,
        "rows_skipped": stats.rows_skipped,
        "accounts": len(accounts),
        "flagged": int(flagged.sum()),
        "campaigns": len(campaigns),
        "requests_flagged": int(accounts.loc[flagged, "requests"].sum()),
        "requests_before_flag": sum(c["evidence"]["requests_before_flag"] for c in campaigns),
        "files": stats.files,
        "columns_present": sorted(stats.columns_present),
        "skipped_by_reason": dict(stats.skipped_by_reason),
        "skipped_examples": stats.skipped_examples,
        "background_rates": detector.background_,
        "behaviour_background": detector.behaviour_background_,
        "thresholds": {
            "community_log10_p": detector.community_threshold_,
            "account_log10_p": detector.account_threshold_,
        },
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "schema": "v1",
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
