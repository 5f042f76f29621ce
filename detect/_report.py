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
    campaigns, timeline = [], []
    for group, cid in ids.items():
        rows = flagged[flagged["group"] == group]
        hours = hourly[hourly["campaign"] == cid]
        campaigns.append(_campaign(cid, rows, hours, detector))
        timeline.extend(
            {"campaign": cid, "bucket": iso(b), "requests": int(r)}
            for b, r in zip(hours["bucket"], hours["requests"], strict=True)
        )
    return campaigns, campaign_of, timeline


def _campaign(cid: str, rows: pd.DataFrame, hours: pd.DataFrame, detector) -> dict:
    content = rows[rows["signal"] != "behaviour"]
    by_behaviour = content.empty
    signal = (rows if by_behaviour else content)["signal"].mode().iloc[0]
    if by_behaviour:  # the strongest content signal, reported beside the behaviours
        signal = max(SIGNALS, key=lambda s: rows[f"{s}_requests"].sum())
    n, k = int(rows["requests"].sum()), int(rows[f"{signal}_requests"].sum())
    threshold = detector.community_threshold_ if len(rows) > 1 else detector.account_threshold_
    p0 = detector.background_[signal]
    cum_n = hours["requests"].cumsum().to_numpy()
    # shared rare prompts have no hourly counts: spread evenly over the campaign's requests
    cum_k = hours[signal].cumsum().to_numpy() if signal in hours else cum_n * k / max(n, 1)
    sig = log_significance(cum_k, cum_n, p0)
    ok = (sig >= threshold) & (cum_k >= detector.min_hits) & (cum_k >= detector.min_rate * cum_n)
    at = int(np.argmax(ok)) if ok.any() and not by_behaviour else len(hours) - 1
    bucket = pd.Timestamp(hours["bucket"].iloc[at]).to_pydatetime()
    flagged_at = min(bucket + timedelta(hours=1), _as_dt(rows["last_seen"].max()))
    evidence = {
        "intent": intent_evidence(rows),
        "decided_by": "behaviour" if by_behaviour else "content",
        "families": [f for f in str(rows["families"].iloc[0]).split(", ") if f],
        "behaviours": behaviour_rates(rows, detector),
        "signal": signal,
        "signal_rate": k / max(n, 1),
        "background_rate": p0,
        "log10_p": float(log_significance(k, n, p0)),
        "threshold_log10_p": threshold,
        "requests_before_flag": int(cum_n[at]),
        "accounts": len(rows),
        "rates": {s: float(rows[f"{s}_requests"].sum() / max(n, 1)) for s in SIGNALS},
        "round_the_clock": float((rows["quiet_share"].fillna(0) * rows["requests"]).sum() / n),
        "shared": {},
        "synchronized_accounts": int((rows.get("sync_peers", 0) > 0).sum()),
    }
    return {
        "id": cid,
        "accounts": sorted(rows.index.tolist()),
        "requests": n,
        "score": float(rows["score"].max()),
        "first_seen": iso(rows["first_seen"].min()),
        "flagged_at": iso(flagged_at),
        "evidence": evidence,
    }


def intent_evidence(rows: pd.DataFrame) -> dict:
    """What the campaign asks, named before any pacing figure: coverage (fresh
    self-contained tasks, their rarefied topic spread, supplied content), provenance
    (closeness to the public index, when one was given) and coordination by content
    (members linked by shared rare prompts or a shared source, with example prompts)."""

    def mean(col):
        return (
            round(float(rows[col].mean()), 3) if col in rows and rows[col].notna().any() else None
        )

    linked = rows[rows.get("content_group", pd.Series(1, index=rows.index)).fillna(1) >= 2]
    examples = (linked if len(linked) else rows).get("example_prompt", pd.Series(dtype=object))
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
            "shared_source_requests": int(rows.get("shared_requests", pd.Series(0)).sum()),
            "example_prompts": [str(x) for x in examples.dropna().head(3)],
        },
    }


def behaviour_rates(rows: pd.DataFrame, detector) -> dict:
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
    for (cid, kind), part in frame.groupby(["campaign", "kind"]):
        by_id[cid]["evidence"]["shared"][kind] = {
            "accounts": int(part["account_id"].nunique()),
            "max_values_per_account": int(part["values"].max()),
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
    shared_by = {a: part for a, part in shared.groupby("account_id")} if len(shared) else {}
    empty = pd.DataFrame(columns=["kind", "values", "peers"])
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
    for entry, (account_id, row) in zip(out, joined[joined["flagged"]].iterrows(), strict=False):
        entry["reasons"] = account_reasons(
            row, row["signal"], by_id.get(entry["campaign"]), shared_by.get(account_id, empty)
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
    nodes = [
        {
            "id": str(a),
            "campaign": campaign_of.get(a),
            "flagged": a in flagged,
            "score": round(float(assigned.at[a, "score"]), 4),
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
