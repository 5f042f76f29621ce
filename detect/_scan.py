"""``detect.scan``: logs in, report out (ingest -> features -> content -> graph -> campaigns)."""

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
from sklearn.base import clone

from detect._behaviour import BehaviourParams, behaviour_flags
from detect._content import PromptIntentClassifier
from detect._features import account_features
from detect._graph import GraphParams, communities, coordination_edges, infra_groups, shared_with
from detect._ingest import ingest_logs
from detect._report import (
    account_entries,
    add_shared_evidence,
    build_campaigns,
    features_section,
    graph_section,
)
from detect._scoring import CampaignDetector
from detect._signals import content_signals, sample_prompts
from detect.errors import ConfigError, NoValidRowsError

CARRIER_SCORE = 0.3  # own content evidence (0.5 = significant alone) that makes a link count


@dataclass
class ScanConfig:
    """How :func:`scan` works.  Every field has a default that needs no tuning per log.

    Content (text work on a per-account sample, never on every row):
        sample_per_account: prompts per account the scikit-learn estimators see.
        sample_budget: cap on sampled prompts in all (the per-account cap shrinks to fit).
        n_topics: capability topic clusters.
        intent_seed_share: share of an account's sampled prompts the intent classifier reads
            as reasoning or grading asks that makes it a graph seed (and a reason).

    Coordination graph:
        max_group: an artifact (IP, user agent, ...) shared by more accounts links nobody.
        min_edge: summed link weight that makes two accounts neighbours.
        infra_edge: purity-weighted infrastructure weight (shared IPs, payment or org ids,
            synchronised activity) that makes two accounts share infrastructure.
        sync_bucket_s: SynchroTrap time bucket in seconds.

    Calibration (label-free; see :class:`detect.CampaignDetector`):
        alpha, min_rate, min_hits, member_min_rate, quiet_min.

    Engine and report:
        memory_limit: DuckDB memory limit (it spills to ``workdir`` beyond it).
        threads: DuckDB threads (None: all cores).
        workdir: where the scan's temporary DuckDB file lives (None: a temp dir).
        max_graph_edges: edges kept in the report's ``graph``.
    """

    sample_per_account: int = 24
    intent_seed_share: float = 0.25
    sample_budget: int = 40_000
    n_topics: int = 24
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

    def __post_init__(self) -> None:
        positive = (
            "sample_per_account",
            "sample_budget",
            "n_topics",
            "max_group",
            "sync_bucket_s",
            "min_hits",
            "max_graph_edges",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"ScanConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("alpha", "min_rate", "member_min_rate", "quiet_min"):
            value = float(getattr(self, name))
            if not 0.0 <= value < 1.0 or (name == "alpha" and value == 0.0):
                raise ConfigError(f"ScanConfig.{name} must be in (0, 1), got {value}")
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
) -> ScanResult:
    """Scan traffic logs (files, globs, directories) and return the campaign report.

    ``progress(stage, seconds)``, when given, is called as each stage (ingest, features,
    content, graph, campaigns, report) finishes."""
    config = config or ScanConfig()
    if isinstance(paths, str | Path):
        paths = [paths]
    workdir = Path(tempfile.mkdtemp(prefix="stillroom-detect-", dir=config.workdir))
    try:
        con = duckdb.connect(str(workdir / "scan.duckdb"))
        try:
            _configure(con, config, workdir)
            return _scan(con, list(paths), column_map, config, progress)
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


def _scan(con, paths, column_map, config: ScanConfig, progress=None) -> ScanResult:
    started = time.perf_counter()
    stages = _Stages(progress)
    stats = ingest_logs(con, paths, column_map)
    stages.done("ingest")
    if stats.rows == 0:
        examples = "; ".join(f"{e['file']}: {e['reason']}" for e in stats.skipped_examples[:3])
        raise NoValidRowsError(f"no valid rows in {len(stats.files)} file(s) ({examples})")
    accounts = account_features(con, columns_present=stats.columns_present)
    accounts = accounts.join(behaviour_flags(accounts, config.behaviour))
    stages.done("features")
    sample = sample_prompts(con, cap=config.sample_per_account, budget=config.sample_budget)
    content, templates = content_signals(
        sample, intent=PromptIntentClassifier().fit(), n_topics=config.n_topics
    )
    accounts = accounts.join(content)
    stages.done("content")
    for signal in ("reasoning", "grading", "logprob"):
        accounts[f"{signal}_rate"] = accounts[f"{signal}_requests"] / accounts["requests"]
    detector = CampaignDetector(
        alpha=config.alpha,
        min_rate=config.min_rate,
        min_hits=config.min_hits,
        member_min_rate=config.member_min_rate,
        quiet_min=config.quiet_min,
    )
    behaving = accounts[list(BEHAVIOUR_COLUMNS)].any(axis=1)
    seeds = clone(detector).fit(accounts.assign(community=0)).seeds(accounts)
    # the intent classifier reads the sampled prompts the lexicon may miss (paraphrases)
    intent = accounts[["intent_reasoning", "intent_grading"]].fillna(0).max(axis=1)
    worded = accounts.index[intent >= config.intent_seed_share]
    seeds = seeds.union(accounts.index[behaving]).union(worded)
    params = GraphParams(
        max_group=config.max_group, min_edge=config.min_edge, sync_bucket_s=config.sync_bucket_s
    )
    all_edges = coordination_edges(con, templates, seeds, params)
    stages.done("graph")
    edges = all_edges[all_edges["weight"] >= config.min_edge]
    alike = all_edges[_alike(all_edges, accounts, BEHAVIOUR_COLUMNS, params.weak_edge)]
    accounts["behaviour_community"] = communities(accounts.index, alike)
    accounts["infra_group"] = infra_groups(accounts.index, all_edges, config.infra_edge)
    accounts["community"] = communities(accounts.index, edges)
    accounts = accounts.join(_sync_stats(edges))
    detector.fit(accounts)
    carriers = detector.assign(accounts)["content_score"] >= CARRIER_SCORE
    accounts["evidence_link"] = _evidence_link(accounts.index[carriers], accounts.index, edges)
    assigned = merge_linked_groups(attach_linked(detector.assign(accounts), all_edges), all_edges)
    campaigns, campaign_of, timeline = build_campaigns(con, accounts, assigned, detector)
    shared = (
        shared_with(con, campaign_of)
        if len(campaign_of)
        else pd.DataFrame(columns=["account_id", "kind", "values", "peers"])
    )
    add_shared_evidence(campaigns, shared, campaign_of)
    stages.done("campaigns")
    report = {
        "accounts": account_entries(accounts, assigned, campaigns, campaign_of, shared),
        "campaigns": campaigns,
        "summary": _summary(stats, accounts, assigned, campaigns, detector, config, started),
        "graph": graph_section(edges, assigned, campaign_of, config.max_graph_edges),
        "timeline": timeline,
        "features": features_section(accounts, assigned["flagged"]),
    }
    stages.done("report")
    report["summary"]["stage_seconds"] = stages.seconds
    return ScanResult(report=report, accounts=accounts.join(assigned))


def attach_linked(assigned: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """Flag accounts whose own content is significant and who have any tie to a flagged
    campaign (coordination corroborates them); they join that campaign."""
    flagged = assigned["flagged"]
    candidates = assigned.index[~flagged & (assigned["content_score"] >= 0.5)]
    if edges.empty or not len(candidates):
        return assigned
    group = assigned["group"]
    links = pd.concat(
        [
            edges[["source", "target", "weight"]],
            edges[["target", "source", "weight"]].set_axis(["source", "target", "weight"], axis=1),
        ]
    )
    links = links[links["source"].isin(candidates) & links["target"].map(flagged).fillna(False)]
    if links.empty:
        return assigned
    best = links.sort_values("weight").groupby("source").tail(1).set_index("source")["target"]
    out = assigned.copy()
    out.loc[best.index, "flagged"] = True
    out.loc[best.index, "score"] = out.loc[best.index, "content_score"]
    out.loc[best.index, "group"] = group.reindex(best.to_numpy()).to_numpy()
    return out


BEHAVIOUR_COLUMNS = ("b_pacing", "b_output_heavy", "b_logprob_harvest")


def _alike(edges: pd.DataFrame, accounts: pd.DataFrame, columns, min_weight: float) -> pd.Series:
    """Edges, weak ones included, whose two accounts show the same behaviour (a dispatcher's
    accounts act alike), by purity-weighted weight: a crowd's NAT IP does not join them."""
    if edges.empty:
        return pd.Series(False, index=edges.index)
    same = pd.Series(False, index=edges.index)
    for col in columns:
        flag = accounts[col]
        same |= flag.reindex(edges["source"]).to_numpy() & flag.reindex(edges["target"]).to_numpy()
    return same & (edges["pure_weight"] >= min_weight)


def merge_linked_groups(assigned: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """One campaign per connected set of flagged groups: flagged groups joined by any kept
    edge (weak ones included) become one group, so a campaign is assigned once."""
    flagged = assigned.index[assigned["flagged"]]
    if edges.empty or not len(flagged):
        return assigned
    group = assigned["group"]
    inside = edges[edges["source"].isin(flagged) & edges["target"].isin(flagged)]
    inside = inside[
        group.reindex(inside["source"]).to_numpy() != group.reindex(inside["target"]).to_numpy()
    ]
    if inside.empty:
        return assigned
    groups = pd.Index(sorted(group[flagged].unique()))
    links = pd.DataFrame(
        {
            "source": group.reindex(inside["source"]).to_numpy(),
            "target": group.reindex(inside["target"]).to_numpy(),
        }
    )
    merged = communities(groups, links)
    first = pd.Series(groups, index=groups).groupby(merged.to_numpy()).transform("min")
    out = assigned.copy()
    out.loc[flagged, "group"] = first.reindex(group[flagged].to_numpy()).to_numpy()
    return out


def _evidence_link(carriers: pd.Index, index: pd.Index, edges: pd.DataFrame) -> pd.Series:
    """Summed edge weight from each account to neighbours whose own content is evidence."""
    carriers = set(carriers)
    if edges.empty or not carriers:
        return pd.Series(0.0, index=index)
    to_target = edges[edges["target"].isin(carriers)].groupby("source")["weight"].sum()
    to_source = edges[edges["source"].isin(carriers)].groupby("target")["weight"].sum()
    total = to_target.add(to_source, fill_value=0.0)
    return total.reindex(index).fillna(0.0)


def _sync_stats(edges: pd.DataFrame) -> pd.DataFrame:
    if edges.empty:
        return pd.DataFrame(columns=["sync_peers", "sync_jaccard"])
    sync = edges[edges["kinds"].map(lambda kinds: "sync" in kinds)]
    both = pd.concat(
        [
            sync[["source", "jaccard"]].rename(columns={"source": "account_id"}),
            sync[["target", "jaccard"]].rename(columns={"target": "account_id"}),
        ]
    )
    out = both.groupby("account_id").agg(
        sync_peers=("jaccard", "size"), sync_jaccard=("jaccard", "max")
    )
    return out


def _summary(stats, accounts, assigned, campaigns, detector, config, started) -> dict:
    flagged = assigned["flagged"]
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
        "thresholds": {
            "community_log10_p": detector.community_threshold_,
            "account_log10_p": detector.account_threshold_,
        },
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "schema": "v1",
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
