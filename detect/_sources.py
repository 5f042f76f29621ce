"""Shared sources: accounts that draw their tasks from one source, with nothing else in common.

A campaign that splits a dataset between accounts shares no exact prompt, IP, card or rhythm;
what its accounts share is *where their prompts come from*.  In the embedding space of
:mod:`stillroom.detect._embed` (common components of the log removed), the mean of an
account's fresh-task prompts is near zero for a person asking about everything, and points
somewhere for an account drawing from one source (a linear-kernel MMD against the bulk).

* ``source_z``: ``sqrt(n) * |mean|`` over the account's ``n`` sampled fresh prompts (about
  constant under the bulk; high: the account's prompts come from somewhere in particular);
* a link between two such accounts (``source_z`` beyond the log's robust line at
  ``target_fpr``) whose means point the same way (cosine beyond the log's own robust line
  for nearest-neighbour accounts, and at least ``min_cos``);
* membership of a found source: once a source is known, whether another account draws from
  it is a one-dimensional test, far stronger than the norm over every dimension (a matched
  filter).  Each account's mean is projected on the direction of its closest linked account,
  ``t = sqrt(n) * mean . u``; accounts beyond the log's robust line of ``t`` (the bulk of
  people projects near zero on any source) are linked to that account.  A slow account with
  a dozen sampled prompts from a split source rarely clears the norm line, and clears this.

Every line is calibrated on the log itself (:func:`stillroom.detect._intent.robust_threshold`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stillroom.detect._intent import robust_threshold


def source_links(
    accounts: np.ndarray,
    fresh: np.ndarray,
    vectors: np.ndarray,
    *,
    target_fpr: float,
    min_prompts: int = 6,
    min_cos: float = 0.5,
) -> tuple[pd.DataFrame, pd.Series]:
    """``(links, source_z)``: account pairs drawing from one source (``source, target,
    cos``) and each account's ``source_z`` (NaN below ``min_prompts`` fresh prompts)."""
    empty = pd.DataFrame({"source": [], "target": [], "cos": []})
    rows = np.flatnonzero(fresh)
    if len(rows) == 0:
        return empty, pd.Series(dtype=float)
    frame = pd.DataFrame({"account_id": accounts[rows], "row": rows})
    counts = frame.groupby("account_id").size()
    keep = counts.index[counts >= min_prompts]
    frame = frame[frame["account_id"].isin(keep)]
    if len(keep) < 3:
        return empty, pd.Series(np.nan, index=counts.index)
    order = pd.Index(sorted(keep))
    at = order.get_indexer(frame["account_id"].to_numpy())
    half = (frame.groupby("account_id").cumcount() % 2).to_numpy()
    parts = [_means(vectors, frame["row"].to_numpy(), at, half == h, len(order)) for h in (0, 1)]
    means, n = _means(vectors, frame["row"].to_numpy(), at, np.ones(len(at), bool), len(order))
    centre = np.median(means, axis=0)  # the bulk's own centre: people asking about anything
    means, parts = means - centre, [p[0] - centre for p in parts]
    norms = np.linalg.norm(means, axis=1)
    z = norms * np.sqrt(n)
    off = z > robust_threshold(z, None, target_fpr)
    units = _units(means)
    sims = units @ units.T
    # as alike as each account is to itself: the cosine between its two halves' means
    own = np.einsum("ij,ij->i", _units(parts[0]), _units(parts[1]))
    line = np.maximum(np.minimum(own[:, None], own[None, :]), min_cos)
    src, dst = np.nonzero(np.triu(sims >= line, 1) & off[:, None] & off[None, :])
    members = _members(means, n, np.union1d(src, dst), target_fpr)
    src, dst = np.concatenate([src, members[0]]), np.concatenate([dst, members[1]])
    cos = np.einsum("ij,ij->i", units[src], units[dst])
    links = pd.DataFrame({"source": order[src], "target": order[dst], "cos": cos.astype(float)})
    return links, pd.Series(z, index=order).reindex(counts.index)


def _members(means, n, linked, target_fpr) -> tuple[np.ndarray, np.ndarray]:
    """``(account, linked account)`` index pairs: accounts not yet linked whose mean projects
    on the direction of their closest linked account beyond the log's robust line of that
    statistic (computed over every account, linked ones projecting on others)."""
    if len(linked) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    directions = _units(means[linked])
    t = np.empty(len(means))
    best = np.empty(len(means), dtype=int)
    step = max(1, 2**22 // len(linked))  # at most 4M projections (32 MB) at a time
    for start in range(0, len(means), step):
        proj = means[start : start + step] @ directions.T
        mine = np.flatnonzero((linked >= start) & (linked < start + step))
        proj[linked[mine] - start, mine] = -np.inf  # never its own direction
        best[start : start + step] = proj.argmax(axis=1)
        t[start : start + step] = np.sqrt(n[start : start + step]) * proj.max(axis=1)
    joins = t > robust_threshold(t, None, target_fpr)
    joins[linked] = False
    at = np.flatnonzero(joins)
    return at, linked[best[at]]


def _means(vectors, rows, at, mask, m) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import csr_matrix

    picks = csr_matrix(
        (np.ones(int(mask.sum())), (at[mask], np.arange(int(mask.sum())))),
        shape=(m, int(mask.sum())),
    )
    sums = np.asarray(picks @ vectors[rows[mask]].astype(np.float64))
    n = np.bincount(at[mask], minlength=m).astype(float)
    return sums / np.maximum(n, 1)[:, None], n


def _units(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
