"""Groupings of accounts read off the coordination graph, and campaign assignment.

* content communities: connected components of the strong links;
* behaviour groups: components of links (weak ones included, purity-weighted) between accounts
  that show the same behaviour;
* infrastructure components: links by IPs, payment or org ids or sync (see
  :func:`stillroom.detect._graph.infra_groups`).

After scoring, accounts with significant content tied to a flagged campaign join it, and
flagged groups joined by any kept link become one campaign, so each is assigned once.
"""

from __future__ import annotations

import pandas as pd

from stillroom.detect._graph import communities, infra_groups

BEHAVIOUR_COLUMNS = ("b_pacing", "b_output_heavy", "b_logprob_harvest")


def add_groupings(
    accounts: pd.DataFrame,
    all_edges: pd.DataFrame,
    *,
    min_edge: float,
    weak_edge: float,
    infra_edge: float,
) -> pd.DataFrame:
    """``accounts`` with ``community``, ``behaviour_community``, ``infra_group`` and the
    sync columns; the strong edges are those at or above ``min_edge``."""
    edges = all_edges[all_edges["weight"] >= min_edge]
    alike = all_edges[alike_edges(all_edges, accounts, BEHAVIOUR_COLUMNS, weak_edge)]
    out = accounts.copy()
    out["behaviour_community"] = communities(out.index, alike)
    out["infra_group"] = infra_groups(out.index, all_edges, infra_edge)
    out["content_group"] = infra_groups(out.index, all_edges, min_edge, "content_weight")
    out["community"] = communities(out.index, edges)
    return out.join(sync_stats(edges))


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


def alike_edges(
    edges: pd.DataFrame, accounts: pd.DataFrame, columns, min_weight: float
) -> pd.Series:
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


def evidence_link(carriers: pd.Index, index: pd.Index, edges: pd.DataFrame) -> pd.Series:
    """Summed edge weight from each account to neighbours whose own content is evidence."""
    carriers = set(carriers)
    if edges.empty or not carriers:
        return pd.Series(0.0, index=index)
    to_target = edges[edges["target"].isin(carriers)].groupby("source")["weight"].sum()
    to_source = edges[edges["source"].isin(carriers)].groupby("target")["weight"].sum()
    total = to_target.add(to_source, fill_value=0.0)
    return total.reindex(index).fillna(0.0)


def sync_stats(edges: pd.DataFrame) -> pd.DataFrame:
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
