"""The scan's stages, top to bottom; each passes its named outputs to the next.

1. ``ingest``: log files -> the ``traffic`` relation (a DuckDB table, one row per request
   with the derived per-row columns) and :class:`IngestStats`; an incremental scan reads
   only the files its state store has not folded, plus the store's rows of the days they touch.
2. ``partials``: ``traffic`` -> the per-(account, UTC day) partial tables
   (:mod:`stillroom.detect._partials`), the only thing later stages read; an incremental scan folds
   them into its state store and reads the window's back.  Then ``traffic`` is dropped and
   the window's partials are merged into the account-level tables.
3. ``features``: partials -> ``accounts`` (one row per account, SQL) plus the behaviours.
4. ``content``: the partials' capped prompt sample -> content columns on ``accounts`` and
   the shared ``templates`` (account_id, value).
5. ``graph``: partials + ``templates`` + seeds -> ``Graph`` (every kept edge, the strong
   ones) and the groupings on ``accounts``.
6. ``scoring``: ``accounts`` + ``Graph`` -> ``Scored`` (one row per account: score, flagged,
   campaign group), campaigns assigned once.
7. ``report``: everything above -> the report dict.

Row-level work (ingest, the partials) and the merges (features, the graph's pair building,
the sample, the timeline) are SQL over named temp tables, run by an engine (:mod:`stillroom.detect._engine`: DuckDB or Spark); only
per-account frames, edges and the capped sample reach pandas, in this one process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from stillroom.detect._askers import task_askers, wrap_askers
from stillroom.detect._behaviour import behaviour_flags
from stillroom.detect._content import PromptIntentClassifier
from stillroom.detect._embed import PromptEmbedder
from stillroom.detect._features import account_features
from stillroom.detect._graph import coordination_edges, shared_with
from stillroom.detect._groups import (
    BEHAVIOUR_COLUMNS,
    add_groupings,
    attach_linked,
    evidence_link,
    merge_linked_groups,
)
from stillroom.detect._ingest import IngestStats
from stillroom.detect._intent import (
    fresh_tasks,
    intent_features,
    load_public_index,
    shared_prompt_links,
    wrapped_asks,
    wrapped_requests,
)
from stillroom.detect._partials import build_partials, merge_window
from stillroom.detect._report import (
    account_entries,
    add_shared_evidence,
    build_campaigns,
    features_section,
    graph_section,
)
from stillroom.detect._scoring import SIGNALS, CampaignDetector
from stillroom.detect._signals import content_signals, sample_prompts
from stillroom.detect._sources import source_links
from stillroom.detect.errors import NoValidRowsError

# what the graph reads or builds and nothing after it reads
GRAPH_INPUTS = (
    "part_keys",
    "part_artifacts",
    "part_sync",
    "seeds",
    "template_members",
    "pair_links",
    "perms",
    "sync_links",
    "prompt_links",
    "edge_pairs",
)
CARRIER_SCORE = 0.3  # own content evidence (0.5 = significant alone) that makes a link count


@dataclass
class Graph:
    """The coordination graph: every kept edge (weak ones included) and the strong ones."""

    all_edges: pd.DataFrame
    edges: pd.DataFrame


@dataclass
class ContentLinks:
    """What links accounts by content: shared templates (``account_id, value``) and pairs
    sharing more rare prompts than chance (``source, target, shared, log10_p``)."""

    templates: pd.DataFrame
    prompts: pd.DataFrame


@dataclass
class Scored:
    """Per-account verdicts (``assigned``) and the fitted detector that gave them."""

    assigned: pd.DataFrame
    detector: CampaignDetector


def ingest(engine, paths, column_map, config=None, store=None) -> IngestStats:
    """``traffic`` from the logs; with a ``store``, from the files it has not folded, plus
    the rows it keeps of the days they touch."""
    if store is not None:
        stats = store.ingest(
            engine.con,
            paths,
            column_map,
            sample_cap=config.sample_per_account,
            bucket_s=config.sync_bucket_s,
        )
        if stats.rows or store.already_folded:
            return stats
    else:
        stats = engine.ingest(paths, column_map)
    if stats.rows == 0:
        examples = "; ".join(f"{e['file']}: {e['reason']}" for e in stats.skipped_examples[:3])
        raise NoValidRowsError(f"no valid rows in {len(stats.files)} file(s) ({examples})")
    return stats


def partials(engine, stats: IngestStats, config, store=None) -> tuple[IngestStats, list]:
    """The per-day partials of ``traffic``; with a ``store``, folded in and the window read
    back.  Returns the window's ingest stats and the days this scan folded."""
    build_partials(engine, sample_cap=config.sample_per_account, bucket_s=config.sync_bucket_s)
    folded: list = []
    if store is not None:
        folded = store.fold(engine.con, stats)
        stats = store.load_window(engine.con, stats)
    engine.drop("traffic")
    merge_window(engine)
    _release(engine, keep=("account_hours", "template_uses", "template_keys"), drop=("part_hours",))
    return stats, folded


def _release(engine, *, keep=(), drop=()) -> None:
    """Drop the engine tables ``drop`` that no later stage reads (their memory goes back to
    the account-level work), after computing ``keep``, the tables read later that were made
    from them (an engine with lazy tables would otherwise lose their sources)."""
    engine.materialize(keep)
    for name in drop:
        engine.drop(name)


def features(engine, stats: IngestStats, config) -> pd.DataFrame:
    accounts = account_features(engine, columns_present=stats.columns_present)
    _release(engine, drop=("part_gap_bins", "template_keys", "template_uses"))
    return accounts.join(behaviour_flags(accounts, config.behaviour))


def content(engine, accounts: pd.DataFrame, config) -> tuple[pd.DataFrame, ContentLinks]:
    """Content columns (intent classifier, topics, intent evidence) and the content links
    (shared templates and shared rare prompts) the graph uses."""
    sample = sample_prompts(engine, cap=config.sample_per_account, budget=config.sample_budget)
    _release(engine, drop=("part_sample", "part_totals"))
    signals, templates = content_signals(
        sample, intent=PromptIntentClassifier().fit(), n_topics=config.n_topics
    )
    accounts = accounts.join(signals)
    intent, sources = _intent(sample, config)
    accounts = accounts.join(intent)
    links = shared_prompt_links(engine, max_accounts=config.max_prompt_share, alpha=config.alpha)
    linked = pd.concat([links["source"], links["target"], sources["source"], sources["target"]])
    accounts["on_content_link"] = accounts.index.isin(linked)
    # what is asked links only task askers (the graph keeps the same links): an evaluation
    # harness shares a benchmark's items, a product its template, with whoever else runs it
    askers = accounts.index[task_askers(accounts)]
    asking, sourcing = (
        x[x["source"].isin(askers) & x["target"].isin(askers)] for x in (links, sources)
    )
    shared = (
        pd.concat(
            [
                asking[["source", "shared"]],
                asking[["target", "shared"]].set_axis(["source", "shared"], axis=1),
            ]
        )
        .groupby("source")["shared"]
        .sum()
    )
    accounts["shared_requests"] = shared.reindex(accounts.index).fillna(0).astype(int)
    # an account drawing its tasks from a source other accounts draw from: its fresh tasks
    on_source = accounts.index.isin(pd.concat([sourcing["source"], sourcing["target"]]))
    from_source = (accounts["requests"] * accounts["fresh_share"].fillna(0)).round()
    accounts["shared_requests"] = np.maximum(
        accounts["shared_requests"], np.where(on_source, from_source, 0)
    ).astype(int)
    links = pd.concat(
        [
            links.assign(kind="prompt"),
            sources.assign(kind="source", shared=1, log10_p=np.nan),
        ],
        ignore_index=True,
    )
    # a recurring instruction around different tasks: an ask in any wording or language
    accounts["wrapped_requests"] = wrapped_requests(
        accounts.reindex(
            columns=["wrapped_k", "wrapped_n", "template_rate", "duplicate_rate", "segment_rate"]
        ),
        accounts["requests"],
        wrap_askers(accounts),
        alpha=config.alpha,
    )
    for signal in SIGNALS:
        accounts[f"{signal}_rate"] = accounts[f"{signal}_requests"] / accounts["requests"]
    return accounts, ContentLinks(templates, links)


def _intent(sample: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Intent columns per account and the shared-source links (``source, target, cos``)."""
    embedder = PromptEmbedder(backend=config.embedder, budget=config.embed_budget)
    texts = sample["prompt"].astype(str).str.slice(0, config.prompt_chars).tolist()
    if not texts:
        return intent_features(sample, None), pd.DataFrame(columns=["source", "target", "cos"])
    vectors = embedder.fit_transform(texts)
    index = None
    if config.public_index is not None:
        index = embedder.transform(load_public_index(config.public_index))
    out = intent_features(sample, vectors, index_vectors=index, target_fpr=config.target_fpr)
    fresh_mask = fresh_tasks(sample)
    links, z = source_links(
        sample["account_id"].to_numpy(), fresh_mask, vectors, target_fpr=config.target_fpr
    )
    out["source_z"] = z
    out = out.join(wrapped_asks(sample))
    fresh = sample.assign(prompt=sample["prompt"].astype(str).str.slice(0, 160))[fresh_mask]
    out["example_prompt"] = fresh.groupby("account_id")["prompt"].first()
    return out, links


def graph(engine, accounts, links: ContentLinks, config) -> tuple[pd.DataFrame, Graph]:
    """Seeds (content, intent classifier or behaviour), the edges around them, groupings."""
    behaving = accounts[list(BEHAVIOUR_COLUMNS)].any(axis=1)
    seeds = clone(config.detector()).fit(accounts.assign(community=0)).seeds(accounts)
    # the intent classifier reads the sampled prompts the lexicon may miss (paraphrases)
    intent = accounts[["intent_reasoning", "intent_grading"]].fillna(0).max(axis=1)
    worded = accounts.index[intent >= config.intent_seed_share]
    seeds = seeds.union(accounts.index[behaving]).union(worded)
    params = config.graph_params()
    # shared prompts link only accounts that ask fresh tasks: an evaluation harness or a
    # probe set shares a benchmark's items with whoever else runs it
    askers = accounts.index[task_askers(accounts)]
    prompts = links.prompts
    prompts = prompts[prompts["source"].isin(askers) & prompts["target"].isin(askers)]
    all_edges = coordination_edges(engine, links.templates, seeds, params, prompt_links=prompts)
    # the report reads ``artifacts`` (shared evidence) and ``account_hours`` (timelines) only
    _release(engine, keep=("artifacts",), drop=GRAPH_INPUTS)
    accounts = add_groupings(
        accounts,
        all_edges,
        min_edge=config.min_edge,
        weak_edge=params.weak_edge,
        infra_edge=config.infra_edge,
    )
    return accounts, Graph(all_edges, all_edges[all_edges["weight"] >= config.min_edge])


def scoring(accounts: pd.DataFrame, g: Graph, config) -> tuple[pd.DataFrame, Scored]:
    detector = config.detector().fit(accounts)
    carriers = detector.assign(accounts)["content_score"] >= CARRIER_SCORE
    accounts = accounts.assign(
        evidence_link=evidence_link(accounts.index[carriers], accounts.index, g.edges)
    )
    assigned = attach_linked(detector.assign(accounts), g.all_edges)
    return accounts, Scored(merge_linked_groups(assigned, g.all_edges), detector)


def report(engine, accounts: pd.DataFrame, g: Graph, scored: Scored, config) -> dict:
    """The report dict, less ``summary`` (the caller adds it)."""
    assigned, detector = scored.assigned, scored.detector
    campaigns, campaign_of, timeline = build_campaigns(engine, accounts, assigned, detector)
    shared = (
        shared_with(engine, campaign_of)
        if len(campaign_of)
        else pd.DataFrame(columns=["account_id", "kind", "values", "peers"])
    )
    add_shared_evidence(campaigns, shared, campaign_of)
    return {
        "accounts": account_entries(accounts, assigned, campaigns, campaign_of, shared),
        "campaigns": campaigns,
        "graph": graph_section(g.edges, assigned, campaign_of, config.max_graph_edges),
        "timeline": timeline,
        "features": features_section(accounts, assigned["flagged"]),
    }
