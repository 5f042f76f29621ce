"""Groupings of accounts read off the coordination graph, and campaign assignment.

* content communities: connected components of the strong links;
* behaviour groups: components of links (weak ones included, purity-weighted) between accounts
  that show the same behaviour;
* infrastructure components: links by IPs, payment or org ids or sync (see
  :func:`stillroom.detect._graph.infra_groups`).

After scoring, accounts with significant content tied to a flagged campaign join it, and
the flagged accounts are cut into one card per operator (shared artifacts join; a shared
source joins only accounts that belong to no operator), so each is assigned once.
"""

from __future__ import annotations

import numpy as np
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


def merge_linked_groups(
    assigned: pd.DataFrame, edges: pd.DataFrame, min_artifact: float = 0.1, min_accounts: int = 3
) -> pd.DataFrame:
    """One campaign card per operator, so each flagged account is assigned once.

    Flagged accounts joined by shared artifacts (purity-weighted weight of IPs, cards, user
    agents, system prompts, templates or synchronised activity of at least ``min_artifact``)
    are one operator.  Links by what accounts ask (shared rare prompts, a shared source) join
    accounts that belong to no such operator of ``min_accounts`` or more: independent
    operators distil the same public sets, so drawing from one source does not make two
    operators one campaign, while accounts that share nothing but their source are one.  An
    account left alone joins the operator it is most strongly linked to, else the largest
    card of its scoring group."""
    flagged = assigned.index[assigned["flagged"]]
    if edges.empty or not len(flagged):
        return assigned
    inside = edges[edges["source"].isin(flagged) & edges["target"].isin(flagged)]
    artifact = _artifact_weight(inside)
    ops = communities(flagged, inside[artifact >= min_artifact])
    affiliated = ops.map(ops.value_counts()) >= min_accounts
    free = (
        ~affiliated.reindex(inside["source"]).to_numpy()
        & ~affiliated.reindex(inside["target"]).to_numpy()
    )
    content = inside.get("content_weight", pd.Series(0.0, index=inside.index)) > 0
    cards = communities(flagged, inside[(artifact >= min_artifact) | (content & free)])
    cards = _attach_alone(cards, inside, assigned.loc[flagged, "group"])
    first = pd.Series(flagged, index=flagged).groupby(cards.to_numpy()).transform("min")
    group = assigned["group"]
    ids = group.reindex(first.to_numpy()).to_numpy()
    out = assigned.assign(group=group.astype("int64"))
    out.loc[flagged, "group"] = ids
    # a card takes its first member's group id; distinct cards that would share one get new ids
    taken = pd.Series(ids, index=flagged).groupby(cards.to_numpy()).first()
    clash = taken.duplicated(keep="first")
    if clash.any():
        fresh = int(group.max()) + 1 + np.arange(int(clash.sum()))
        remap = pd.Series(fresh, index=taken.index[clash.to_numpy()])
        moved = cards.isin(remap.index)
        out.loc[flagged[moved.to_numpy()], "group"] = remap.reindex(cards[moved]).to_numpy()
    return out


def _attach_alone(cards: pd.Series, inside: pd.DataFrame, group: pd.Series) -> pd.Series:
    """Accounts alone on their card join their most strongly linked neighbour's card, or the
    largest card of their scoring group."""
    size = cards.map(cards.value_counts())
    alone = cards.index[size.to_numpy() == 1]
    if not len(alone):
        return cards
    links = pd.concat(
        [
            inside[["source", "target", "weight"]],
            inside[["target", "source", "weight"]].set_axis(["source", "target", "weight"], axis=1),
        ]
    )
    links = links[links["source"].isin(alone)]
    best = links.sort_values("weight").groupby("source").tail(1).set_index("source")["target"]
    out = cards.copy()
    out.loc[best.index] = cards.reindex(best.to_numpy()).to_numpy()
    rest = alone.difference(best.index)
    if len(rest):
        frame = pd.DataFrame({"card": cards, "group": group.reindex(cards.index)})
        largest = frame.groupby(["group", "card"]).size().reset_index(name="n")
        largest = largest.sort_values("n").groupby("group").tail(1).set_index("group")["card"]
        out.loc[rest] = largest.reindex(group.reindex(rest)).fillna(cards.reindex(rest)).to_numpy()
    return out


def _artifact_weight(edges: pd.DataFrame) -> pd.Series:
    """Purity-weighted weight of an edge's shared artifacts, its content links left out."""
    if "artifact_weight" in edges:
        return edges["artifact_weight"]
    return edges["pure_weight"] - edges.get("content_weight", 0.0)


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
