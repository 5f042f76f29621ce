"""Assemble the report dict (the issue's JSON contract plus ``graph``/``timeline``/``features``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from stillroom.detect._behaviour import BEHAVIOURS
from stillroom.detect._reasons import account_reasons, campaign_summary
from stillroom.detect._scoring import SIGNALS, CampaignDetector, log_significance

HISTOGRAM_FEATURES = (
    "requests",
    "reasoning_rate",
    "grading_rate",
    "logprob_rate",
    "quiet_share",
    "gap_cv",
    "token_ratio",
    "shared_template_rate",
    "duplicate_rate",
    "distinct_subnets",
)
_HOURLY_SQL = """
SELECT m.campaign, h.hour AS bucket, sum(h.c) AS requests, sum(h.r) AS reasoning,
       sum(h.g) AS grading, sum(h.l) AS logprob
FROM account_hours h JOIN campaign_members m USING (account_id)
GROUP BY ALL ORDER BY 1, 2
"""


def iso(ts) -> str | None:
    """UTC ISO-8601 with a ``Z``; None stays None."""
    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_campaigns(
    engine, accounts: pd.DataFrame, assigned: pd.DataFrame, detector: CampaignDetector
) -> tuple[list[dict], pd.Series, list[dict]]:
    """Campaign dicts (sorted by score), campaign id per flagged account, and the timeline."""
    flagged = accounts.join(assigned)[assigned["flagged"]]
    if flagged.empty:
        return [], pd.Series(dtype=object), []
    order = flagged.groupby("group")["score"].max().sort_values(ascending=False)
    ids = {g: f"C{i + 1:03d}" for i, g in enumerate(order.index)}
    campaign_of = flagged["group"].map(ids)
    members = campaign_of.rename("campaign").rename_axis("account_id").reset_index()
    engine.put("campaign_members", members)
    hourly = engine.frame(_HOURLY_SQL)
    # one pass over the columns, then plain arrays per campaign: a DataFrame per campaign
    # costs more than the figures themselves
    columns = _Columns.of(flagged)
    span = flagged.groupby("group", sort=False).agg(
        first_seen=("first_seen", "min"), last_seen=("last_seen", "max")
    )
    span = dict(zip(span.index, span.to_dict("records"), strict=True))
    hour_columns = _Columns.of(hourly)
    hours_of = hourly.groupby("campaign", sort=False).indices
    buckets = hourly["bucket"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    rows_of = flagged.groupby("group", sort=False).indices
    requests = hourly["requests"].to_numpy()
    campaigns, timeline = [], []
    for group, cid in ids.items():
        at = hours_of.get(cid, np.arange(0))
        rows, hours = columns.take(rows_of[group]), hour_columns.take(at)
        campaigns.append(_campaign(cid, rows, hours, span[group], detector))
        timeline.extend(
            {"campaign": cid, "bucket": b, "requests": int(r)}
            for b, r in zip(buckets[at], requests[at], strict=True)
        )
    return campaigns, campaign_of, timeline


class _Columns:
    """A frame's index and columns as numpy arrays; ``take`` selects rows by position."""

    def __init__(self, index: np.ndarray, data: dict[str, np.ndarray]) -> None:
        self.index, self.data = index, data

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Columns:
        return cls(frame.index.to_numpy(), {c: frame[c].to_numpy() for c in frame.columns})

    def take(self, positions: np.ndarray) -> _Columns:
        return _Columns(self.index[positions], {c: v[positions] for c, v in self.data.items()})

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]


def _floats(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _sum(values: np.ndarray) -> float:
    """pandas' ``Series.sum`` (missing values count as 0), on an array."""
    if values.dtype.kind in "iub":
        return values.sum()
    values = _floats(values)
    return np.where(np.isnan(values), 0.0, values).sum()


def _mean(values: np.ndarray) -> float:
    """pandas' ``Series.mean`` (missing values skipped), on an array."""
    values = _floats(values)
    missing = np.isnan(values)
    return np.where(missing, 0.0, values).sum() / (len(values) - missing.sum())


def _campaign(cid: str, rows: _Columns, hours: _Columns, span, detector) -> dict:
    signals = rows["signal"]
    content = signals[signals != "behaviour"]
    by_behaviour = len(content) == 0
    values, counts = np.unique(signals if by_behaviour else content, return_counts=True)
    signal = values[np.argmax(counts)]  # the mode (the first in name order on ties)
    if by_behaviour:  # the strongest content signal, reported beside the behaviours
        signal = max(SIGNALS, key=lambda s: _sum(rows[f"{s}_requests"]))
    n, k = int(_sum(rows["requests"])), int(_sum(rows[f"{signal}_requests"]))
    threshold = detector.community_threshold_ if len(rows) > 1 else detector.account_threshold_
    p0 = detector.background_[signal]
    cum_n = np.cumsum(hours["requests"])
    # shared rare prompts have no hourly counts: spread evenly over the campaign's requests
    cum_k = np.cumsum(hours[signal]) if signal in hours else cum_n * k / max(n, 1)
    sig = log_significance(cum_k, cum_n, p0)
    ok = (sig >= threshold) & (cum_k >= detector.min_hits) & (cum_k >= detector.min_rate * cum_n)
    at = int(np.argmax(ok)) if ok.any() and not by_behaviour else len(hours) - 1
    bucket = pd.Timestamp(hours["bucket"][at]).to_pydatetime()
    flagged_at = min(bucket + timedelta(hours=1), _as_dt(span["last_seen"]))
    quiet = _floats(rows["quiet_share"])
    sync = rows["sync_peers"] if "sync_peers" in rows else np.zeros(len(rows))
    evidence = {
        "intent": intent_evidence(rows),
        "decided_by": "behaviour" if by_behaviour else "content",
        "families": [f for f in str(rows["families"][0]).split(", ") if f],
        "behaviours": behaviour_rates(rows, detector),
        "signal": signal,
        "signal_rate": k / max(n, 1),
        "background_rate": p0,
        "log10_p": float(log_significance(k, n, p0)),
        "threshold_log10_p": threshold,
        "requests_before_flag": int(cum_n[at]),
        "accounts": len(rows),
        "rates": {s: float(_sum(rows[f"{s}_requests"]) / max(n, 1)) for s in SIGNALS},
        "round_the_clock": float(
            (np.where(np.isnan(quiet), 0.0, quiet) * rows["requests"]).sum() / n
        ),
        "shared": {},
        "synchronized_accounts": int((sync > 0).sum()),
    }
    return {
        "id": cid,
        "accounts": sorted(rows.index.tolist()),
        "requests": n,
        "score": float(rows["score"].max()),
        "first_seen": iso(span["first_seen"]),
        "flagged_at": iso(flagged_at),
        "evidence": evidence,
    }


def intent_evidence(rows: _Columns) -> dict:
    """What the campaign asks, named before any pacing figure: coverage (fresh
    self-contained tasks, their rarefied topic spread, supplied content), provenance
    (closeness to the public index, when one was given) and coordination by content
    (members linked by shared rare prompts or a shared source, with example prompts)."""

    def mean(col):
        if col not in rows or np.isnan(_floats(rows[col])).all():
            return None
        return round(float(_mean(rows[col])), 3)

    if "content_group" in rows:
        group = _floats(rows["content_group"])
        linked = np.flatnonzero(np.where(np.isnan(group), 1.0, group) >= 2)
    else:
        linked = np.arange(0)
    examples = []
    if "example_prompt" in rows:
        prompts = rows["example_prompt"][linked] if len(linked) else rows["example_prompt"]
        examples = [str(x) for x in prompts if not pd.isna(x)][:3]
    shared = _sum(rows["shared_requests"]) if "shared_requests" in rows else 0
    return {
        "coverage": {
            "fresh_task_share": mean("fresh_share"),
            "topic_spread": mean("spread"),
            "supplied_content_share": mean("supplied_share"),
            "novelty": mean("novelty"),
        },
        "provenance": {"public_index_share": mean("provenance")},
        "coordination_by_content": {
            "accounts_linked_by_content": len(linked),
            "shared_source_requests": int(shared),
            "example_prompts": examples,
        },
    }


def behaviour_rates(rows: _Columns, detector) -> dict:
    """Per behaviour: share of the campaign's accounts showing it, and of all accounts."""
    out = {}
    for b in BEHAVIOURS:
        col = f"b_{b}"
        if col in rows:
            out[b] = {
                "share": float(rows[col].astype(bool).mean()),
                "background": float(detector.behaviour_background_[b]),
            }
    return out


def _as_dt(ts) -> datetime:
    return pd.Timestamp(ts).to_pydatetime()


def add_shared_evidence(campaigns: list[dict], shared: pd.DataFrame, campaign_of) -> None:
    """Fill ``evidence.shared``: per artifact kind, distinct shared values and accounts involved."""
    if shared.empty:
        return
    frame = shared.assign(campaign=shared["account_id"].map(campaign_of))
    by_id = {c["id"]: c for c in campaigns}
    per_kind = frame.groupby(["campaign", "kind"]).agg(
        accounts=("account_id", "nunique"), most=("values", "max")
    )
    for (cid, kind), accounts, most in zip(
        per_kind.index, per_kind["accounts"], per_kind["most"], strict=True
    ):
        by_id[cid]["evidence"]["shared"][kind] = {
            "accounts": int(accounts),
            "max_values_per_account": int(most),
        }


def account_entries(
    accounts: pd.DataFrame,
    assigned: pd.DataFrame,
    campaigns: list[dict],
    campaign_of,
    shared: pd.DataFrame,
) -> list[dict]:
    """The ``accounts`` list: every account, flagged first then by score; reasons when flagged."""
    by_id = {c["id"]: c for c in campaigns}
    shared_by: dict[str, list[tuple[str, int, int]]] = {}
    for a, kind, values, peers in zip(
        shared["account_id"], shared["kind"], shared["values"], shared["peers"], strict=True
    ):
        shared_by.setdefault(a, []).append((kind, int(values), int(peers)))
    joined = accounts.join(assigned).sort_values(["flagged", "score"], ascending=False)
    campaign = campaign_of.reindex(joined.index).where(joined["flagged"], None)
    out = [
        {
            "account_id": str(a),
            "score": round(float(sc), 4),
            "flagged": bool(fl),
            "campaign": c if isinstance(c, str) else None,
            "reasons": [],
            "requests": int(n),
        }
        for a, sc, fl, c, n in zip(
            joined.index,
            joined["score"],
            joined["flagged"],
            campaign,
            joined["requests"],
            strict=True,
        )
    ]
    flagged = joined[joined["flagged"]]
    rows = flagged.to_dict("records")  # plain dicts: a Series per row costs more than the text
    for entry, account_id, row in zip(out, flagged.index, rows, strict=False):
        entry["reasons"] = account_reasons(
            row, row["signal"], by_id.get(entry["campaign"]), shared_by.get(account_id, ())
        )
    return out


def graph_section(edges: pd.DataFrame, assigned: pd.DataFrame, campaign_of, cap: int) -> dict:
    """Nodes and edges (touching a flagged account, strongest first, at most ``cap``)."""
    flagged = set(assigned.index[assigned["flagged"]])
    if edges.empty or not flagged:
        return {"nodes": [], "edges": []}
    touching = edges[edges["source"].isin(flagged) | edges["target"].isin(flagged)]
    touching = touching.sort_values("weight", ascending=False).head(cap)
    ids = sorted(set(touching["source"]) | set(touching["target"]) | flagged)
    campaign, score = campaign_of.to_dict(), assigned["score"].to_dict()
    nodes = [
        {
            "id": str(a),
            "campaign": campaign.get(a),
            "flagged": a in flagged,
            "score": round(float(score[a]), 4),
        }
        for a in ids
    ]
    edge_list = [
        {"source": str(s), "target": str(t), "weight": round(float(w), 3), "via": sorted(v)}
        for s, t, w, v in zip(
            touching["source"],
            touching["target"],
            touching["weight"],
            touching["kinds"],
            strict=True,
        )
    ]
    return {"nodes": nodes, "edges": edge_list}


def features_section(accounts: pd.DataFrame, flagged: pd.Series, bins: int = 20) -> dict:
    """Histograms of a few features, flagged vs unflagged accounts, on shared bins."""
    out = {}
    for name in HISTOGRAM_FEATURES:
        if name not in accounts:
            continue
        values = accounts[name].astype(float)
        if name == "requests":
            values = np.log10(values.clip(lower=1))
            name = "log10_requests"
        ok = values.notna()
        if not ok.any():
            continue
        lo, hi = float(values[ok].min()), float(values[ok].max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        out[name] = {
            "bins": [round(float(e), 6) for e in edges],
            "flagged": np.histogram(values[ok & flagged], edges)[0].tolist(),
            "unflagged": np.histogram(values[ok & ~flagged], edges)[0].tolist(),
        }
    return out


def console_lines(report: dict, limit: int = 10) -> list[str]:
    """Short summary lines for the CLI."""
    s = report["summary"]
    lines = [
        f"{s['rows']:,} rows ({s['rows_skipped']:,} skipped), {s['accounts']:,} accounts, "
        f"{s['flagged']:,} flagged in {s['campaigns']:,} campaigns"
    ]
    lines += [campaign_summary(c) for c in report["campaigns"][:limit]]
    return lines
