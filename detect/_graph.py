"""The coordination graph: accounts linked by what they share, then grouped into communities.

Links come from shared artifacts (exact IPs, /24 subnets, payment and org ids, rare user
agents, system prompts, near-duplicate prompt templates) and from SynchroTrap-style
synchronized activity (Jaccard similarity of the accounts' sets of time-bucketed actions,
estimated with MinHash signatures computed in SQL so no all-pairs join is needed;
an action being a one-minute bucket in which the account sent a prompt whose opening or ending
another account also sent that day: ``part_sync`` in :mod:`stillroom.detect._partials`).  An artifact shared by more than
``max_group`` accounts (a popular user agent, a big carrier NAT) links nobody.  Each shared
artifact adds ``kind weight / log2(1 + accounts sharing it)`` to a pair; pairs at or above
``min_edge`` are edges, and connected components of the edges are the candidate campaigns.
Pairs are only built around seed accounts whose own content or behaviour leans suspicious.
Weaker pairs (``weak_edge`` and up) are kept too: a tie to a flagged campaign corroborates an
account whose own content is significant.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

KIND_WEIGHTS = {
    "payment": 1.25,  # a card or org shared by four accounts is already beyond households
    "org": 1.25,
    "ip": 0.5,
    "subnet": 0.35,
    "user_agent": 0.25,
    "system_prompt": 0.25,
    "template": 0.35,
    "prompt": 0.35,  # the same rare prompt sent by a few accounts: linked by what they ask
}
# Shared infrastructure, not wording.  A /24 is left out: residential proxies exit through
# real homes, so a subnet shared with a campaign says little about one account.
INFRA_KINDS = ("payment", "org", "ip", "sync")
KIND_NAMES = {
    "payment": "payment ids",
    "org": "org ids",
    "ip": "IP addresses",
    "subnet": "/24 subnets",
    "user_agent": "rare user agents",
    "system_prompt": "system prompts",
    "template": "prompt templates",
    "sync": "synchronized activity",
    "prompt": "rare prompts",
    "source": "a task source (prompts drawn from one place)",
}
# Coordination by content: what accounts ask, with no infrastructure in common.
CONTENT_KINDS = ("prompt", "source")

_ARTIFACTS_SQL = """
SELECT DISTINCT account_id, kind, value FROM (
  SELECT account_id, kind, value FROM part_artifacts WHERE kind <> 'subnet' OR value <> ''
  UNION ALL SELECT account_id, 'system_prompt', CAST(value AS VARCHAR) FROM part_keys
            WHERE kind = 'system_prompt'
  UNION ALL SELECT account_id, kind, value FROM template_members
)
"""

_PAIRS_SQL = """
WITH weights AS (SELECT * FROM (VALUES {weights}) AS w(kind, kind_weight)),
sizes AS (
  SELECT kind, value, count(*) AS n, any_value(kind_weight) / log2(1 + count(*)) AS w
  FROM artifacts JOIN weights USING (kind) GROUP BY ALL
  HAVING count(*) BETWEEN 2 AND {max_group}
     AND any_value(kind_weight) / log2(1 + count(*)) >= {min_contrib}
),
flagged AS (
  SELECT a.account_id, a.kind, a.value, s.w, coalesce(sd.seed, false) AS seed
  FROM artifacts a JOIN sizes s USING (kind, value)
  LEFT JOIN (SELECT account_id, true AS seed FROM seeds) sd USING (account_id)
),
members AS (  -- purity: the share of an artifact's users that are seeds (a NAT's is low)
  SELECT *, avg(seed::INTEGER) OVER (PARTITION BY kind, value) AS purity FROM flagged
)
SELECT least(x.account_id, y.account_id) AS source, greatest(x.account_id, y.account_id) AS target,
       x.kind, count(*) AS shared, sum(x.w) AS weight, 0.0 AS jaccard,
       sum(x.w * x.purity) AS pure_weight
FROM members x JOIN members y
  ON x.kind = y.kind AND x.value = y.value AND x.account_id <> y.account_id
WHERE x.seed AND (NOT y.seed OR x.account_id < y.account_id)
GROUP BY ALL
"""

_LINKS_SQL = """
SELECT * FROM pair_links UNION ALL SELECT * FROM sync_links UNION ALL SELECT * FROM prompt_links
"""

_EDGES_SQL = """
SELECT source, target, sum(weight) AS weight, max(jaccard) AS jaccard,
       coalesce(sum(pure_weight) FILTER (WHERE kind IN ({infra})), 0.0) AS infra_weight,
       coalesce(sum(weight) FILTER (WHERE kind IN ({content})), 0.0) AS content_weight,
       coalesce(sum(pure_weight) FILTER (WHERE kind NOT IN ({content})), 0.0) AS artifact_weight,
       sum(pure_weight) AS pure_weight
FROM ({links})
GROUP BY source, target
HAVING sum(weight) >= {tie_edge} OR sum(pure_weight) >= {weak_edge}
"""

# the kinds linking each kept pair, one row each, in the pairs' order then by name
_EDGE_KINDS_SQL = """
SELECT l.source, l.target, l.kind, l.shared
FROM ({links}) l SEMI JOIN edge_pairs USING (source, target)
ORDER BY l.source, l.target, l.kind, l.shared
"""

_SYNC_SQL = """
WITH actions AS (
  SELECT DISTINCT account_id, bucket FROM part_sync
  WHERE account_id IN (SELECT account_id FROM seeds)
),
sizes AS (
  SELECT account_id, count(*) AS n FROM actions GROUP BY ALL HAVING count(*) >= {min_actions}
),
signed AS (SELECT * FROM actions SEMI JOIN sizes USING (account_id)),
bucket_hashes AS (  -- each bucket hashed once per permutation, however many accounts act in it
  SELECT b.bucket, p.i,
         stable_hash(concat_ws('|', CAST(b.bucket AS VARCHAR), CAST(p.i AS VARCHAR))) AS h
  FROM (SELECT DISTINCT bucket FROM signed) b CROSS JOIN perms p
),
signatures AS (
  SELECT a.account_id, b.i, min(b.h) AS h
  FROM signed a JOIN bucket_hashes b USING (bucket)
  GROUP BY ALL
),
small AS (
  SELECT i, h FROM signatures GROUP BY ALL HAVING count(*) BETWEEN 2 AND {max_group}
),
kept AS (SELECT s.* FROM signatures s SEMI JOIN small USING (i, h)),
matches AS (
  SELECT x.account_id AS source, y.account_id AS target
  FROM kept x JOIN kept y ON x.i = y.i AND x.h = y.h AND x.account_id < y.account_id
  GROUP BY ALL HAVING count(*) >= {min_equal}
),
exact AS (
  SELECT m.source, m.target, count(*) AS shared
  FROM matches m JOIN actions x ON x.account_id = m.source
  JOIN actions y ON y.account_id = m.target AND y.bucket = x.bucket
  GROUP BY ALL
)
SELECT * FROM (
  SELECT e.source, e.target, 'sync' AS kind, e.shared,
         least(1.0, e.shared / (sx.n + sy.n - e.shared) / 0.5) AS weight,
         e.shared / (sx.n + sy.n - e.shared) AS jaccard,
         least(1.0, e.shared / (sx.n + sy.n - e.shared) / 0.5) AS pure_weight
  FROM exact e JOIN sizes sx ON sx.account_id = e.source JOIN sizes sy ON sy.account_id = e.target
) WHERE jaccard >= {min_jaccard}
"""


@dataclass(frozen=True)
class GraphParams:
    """Knobs of the coordination graph (see the module docstring)."""

    max_group: int = 500
    min_edge: float = 0.5
    sync_bucket_s: int = 60
    sync_min_actions: int = 20
    sync_perms: int = 16
    sync_min_jaccard: float = 0.25
    min_contrib: float = 0.05
    weak_edge: float = 0.1  # purity-weighted: links between seeds that act alike
    tie_edge: float = 0.2  # plain weight: a tie that corroborates or joins campaigns


def coordination_edges(
    engine,
    templates: pd.DataFrame,
    seeds: pd.Index,
    params: GraphParams,
    prompt_links: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Weighted account pairs: ``source, target, weight, jaccard, kinds, counts`` (the artifact
    kinds linking the pair and how many values of each they share).

    Only pairs with at least one ``seeds`` account (one whose own content or behaviour
    already leans suspicious) are built: two accounts with nothing suspicious between them cannot form a
    campaign, and skipping them keeps the pair join small on big logs.
    """
    engine.put("seeds", pd.DataFrame({"account_id": pd.Series(list(seeds), dtype=str)}))
    members = pd.DataFrame(
        {
            "account_id": templates["account_id"].astype(str).to_numpy(),
            "value": templates["value"].astype(str).to_numpy(),
            "kind": (
                templates["kind"].astype(str).to_numpy() if "kind" in templates else "template"
            ),
        }
    )
    engine.put("template_members", members)
    engine.table("artifacts", _ARTIFACTS_SQL)
    weights = ", ".join(f"('{k}', {w})" for k, w in KIND_WEIGHTS.items())
    engine.table(
        "pair_links",
        _PAIRS_SQL.format(
            weights=weights, max_group=int(params.max_group), min_contrib=params.min_contrib
        ),
    )
    perms = int(params.sync_perms)
    engine.put("perms", pd.DataFrame({"i": np.arange(perms, dtype=np.int64)}))
    sync = _SYNC_SQL.format(
        min_actions=int(params.sync_min_actions),
        perms=perms,
        max_group=int(params.max_group),
        min_equal=max(1, int(np.floor(0.75 * params.sync_min_jaccard * perms))),
        min_jaccard=float(params.sync_min_jaccard),
    )
    engine.table("sync_links", sync)
    engine.put("prompt_links", _prompt_link_rows(prompt_links))
    infra = ", ".join(f"'{k}'" for k in INFRA_KINDS)
    content = ", ".join(f"'{k}'" for k in CONTENT_KINDS)
    sql = _EDGES_SQL.format(
        weak_edge=float(params.weak_edge),
        tie_edge=float(params.tie_edge),
        infra=infra,
        content=content,
        links=_LINKS_SQL,
    )
    engine.table("edge_pairs", sql)
    edges = engine.frame("SELECT * FROM edge_pairs ORDER BY source, target")
    return _with_kinds(edges, engine.frame(_EDGE_KINDS_SQL.format(links=_LINKS_SQL)))


def _prompt_link_rows(links: pd.DataFrame | None) -> pd.DataFrame:
    """Pairs sharing more rare prompts than chance (:func:`stillroom.detect._intent.shared_prompt_links`)
    as link rows: one strong link each (weight 1), the shared count beside it."""
    links = links if links is not None else pd.DataFrame(columns=["source", "target", "shared"])
    n = len(links)
    return pd.DataFrame(
        {
            "source": links["source"].astype(str).to_numpy(),
            "target": links["target"].astype(str).to_numpy(),
            "kind": (
                links["kind"].astype(str).to_numpy()
                if "kind" in links
                else np.full(n, "prompt", dtype=object)
            ),
            "shared": links["shared"].to_numpy(np.int64),
            "weight": np.ones(n),
            "jaccard": np.zeros(n),
            "pure_weight": np.ones(n),
        }
    )


def _with_kinds(edges: pd.DataFrame, kinds: pd.DataFrame) -> pd.DataFrame:
    """``edges`` (sorted by pair) with ``kinds``, the kinds linking each pair in name order,
    and ``counts``, how many values of each they share; ``kinds`` holds one row per pair and
    kind, sorted by pair then kind.  (Lists built by slicing, not collected by the engine:
    an engine's list columns cost a Python object per pair and arrive unordered.)"""
    source, target = kinds["source"].to_numpy(dtype=object), kinds["target"].to_numpy(dtype=object)
    new_pair = (source[1:] != source[:-1]) | (target[1:] != target[:-1])
    starts = np.flatnonzero(np.r_[len(source) > 0, new_pair])
    if len(starts) != len(edges) or not (
        (source[starts] == edges["source"].to_numpy(dtype=object)).all()
        and (target[starts] == edges["target"].to_numpy(dtype=object)).all()
    ):
        raise RuntimeError("the edges and the kinds linking them are not in the same order")
    names, counts = kinds["kind"].astype(str).tolist(), kinds["shared"].astype(np.int64).tolist()
    spans = list(pairwise([*starts.tolist(), len(source)]))
    edges.insert(4, "kinds", [names[a:b] for a, b in spans])
    edges.insert(5, "counts", [counts[a:b] for a, b in spans])
    return edges


def communities(accounts: pd.Index, edges: pd.DataFrame) -> pd.Series:
    """Connected component id (int) per account over ``edges`` (pass the strong ones)."""
    position = pd.Series(np.arange(len(accounts)), index=accounts)
    n = len(accounts)
    if edges.empty:
        return pd.Series(np.arange(n), index=accounts)
    rows = position.reindex(edges["source"]).to_numpy()
    cols = position.reindex(edges["target"]).to_numpy()
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(matrix, directed=False)
    return pd.Series(labels, index=accounts)


def shared_with(engine, campaign_of: pd.Series) -> pd.DataFrame:
    """Per account and artifact kind: values shared with other members of its community,
    and ``peers``, the most other members sharing any one of those values (a lower bound on
    how many it shares with; linear in the artifacts, no pair join).
    Columns: account_id, kind, values, peers."""
    frame = campaign_of.rename("community").rename_axis("account_id").reset_index()
    engine.put("community_df", frame)
    return engine.frame(
        """
        WITH a AS (
          SELECT artifacts.*, c.community FROM artifacts JOIN community_df c USING (account_id)
        ),
        s AS (
          SELECT kind, value, community, count(*) AS n FROM a GROUP BY ALL HAVING count(*) >= 2
        )
        SELECT a.account_id, a.kind, count(*) AS "values", max(s.n) - 1 AS peers
        FROM a JOIN s USING (kind, value, community)
        GROUP BY ALL
        """
    )


def infra_groups(
    index: pd.Index, edges: pd.DataFrame, min_weight: float, column: str = "infra_weight"
) -> pd.Series:
    """Per account: how many accounts its shared-infrastructure component holds (edges whose
    purity-weighted infrastructure weight reaches ``min_weight``; 1 when it has none).
    With ``column="content_weight"``: the same over links by shared rare prompts."""
    if edges.empty:
        return pd.Series(1, index=index)
    labels = communities(index, edges[edges[column] >= min_weight])
    return labels.map(labels.value_counts())
