"""Each estimator on small fixtures, including scikit-learn conventions (clone, Pipeline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from stillroom.detect import (
    CampaignDetector,
    MinHashSignatures,
    PromptIntentClassifier,
    TopicClusters,
)
from stillroom.detect._content import lsh_band_keys
from stillroom.detect._graph import communities


def test_intent_classifier_generalises_beyond_its_seed_phrases():
    clf = PromptIntentClassifier()
    assert clf.fit() is clf and hasattr(clf, "model_")
    preds = clf.predict(
        [
            "Solve 17 * 23. Before answering, write out your complete chain of thought.",
            "Score the response below from 1 to 10 against the rubric and justify it.",
            "write me a limerick about a cat",
        ]
    )
    assert list(preds) == ["reasoning", "grading", "none"]
    assert clone(clf).get_params() == clf.get_params()


def test_minhash_puts_templated_prompts_in_the_same_lsh_bucket():
    texts = [
        "Translate the following customer review into French: the battery died fast",
        "Translate the following customer review into French: the screen is great",
        "What is the tallest mountain in Africa and how high is it?",
    ]
    sig = MinHashSignatures(n_perm=32).fit().transform(texts)
    assert sig.shape == (3, 32)
    keys = lsh_band_keys(sig, bands=16)
    shared = lambda i, j: len(set(keys[i]) & set(keys[j]))  # noqa: E731
    assert shared(0, 1) > 0
    assert shared(0, 2) == 0


def test_topic_clusters_separate_capabilities_in_a_pipeline():
    math = [f"{n} apples plus {n + 3} apples, how many apples in total?" for n in range(30)]
    code = [f"write a python function that sorts list number {n} in reverse" for n in range(30)]
    model = Pipeline([("topics", TopicClusters(n_topics=2, random_state=0))]).fit(math + code)
    labels = model.named_steps["topics"].predict(math + code)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1
    assert labels[0] != labels[30]


def _accounts(community, requests, reasoning, days=5, quiet=0.0):
    n = len(community)
    return pd.DataFrame(
        {
            "requests": requests,
            "reasoning_requests": reasoning,
            "grading_requests": np.zeros(n),
            "logprob_requests": np.zeros(n),
            "reasoning_days": np.full(n, days),
            "grading_days": np.zeros(n),
            "logprob_days": np.zeros(n),
            "quiet_share": np.full(n, quiet),
            "community": community,
        },
        index=[f"a{i}" for i in range(n)],
    )


def test_campaign_detector_pools_a_community_that_no_member_reveals_alone():
    rng = np.random.default_rng(0)
    benign = 400
    # 12 coordinated accounts, each with 3 reasoning demands in 20 requests: weak alone.
    community = np.r_[np.arange(benign), np.full(12, benign)]
    requests = np.r_[rng.integers(5, 60, benign), np.full(12, 20)]
    reasoning = np.r_[rng.binomial(requests[:benign], 0.01), np.full(12, 3)]
    X = _accounts(community, requests, reasoning, days=2)
    det = CampaignDetector()
    assert det.fit(X) is det
    out = det.assign(X)
    assert out["flagged"].iloc[benign:].all()
    assert not out["flagged"].iloc[:benign].any()
    assert (out["content_score"].iloc[benign:] < 0.5).all()  # none would be flagged alone
    # Each member scored alone (its own community): nobody is flagged.
    alone = X.assign(community=np.arange(len(X)))
    assert not clone(det).fit(alone).predict(alone).any()


def test_campaign_detector_needs_corroboration_beyond_content():
    # A lone account, a burst of judge prompts on 2 days, no round-the-clock pacing: an eval run.
    X = _accounts(np.arange(200), np.r_[np.full(199, 30), 600], np.r_[np.zeros(199), 0])
    X.loc["a199", "grading_requests"] = 600
    X.loc["a199", "grading_days"] = 2
    assert not CampaignDetector().fit(X).predict(X)[-1]
    # kept up for 9 days is still not enough: a tutoring or eval app is persistent too
    X.loc["a199", "grading_days"] = 9
    assert not CampaignDetector().fit(X).predict(X)[-1]
    X.loc["a199", "quiet_share"] = 0.25  # round the clock: a harvest
    assert CampaignDetector().fit(X).predict(X)[-1]


def test_campaign_detector_flags_a_coordinated_machine_group_only_with_evidence_of_intent():
    n, group = 400, 12
    X = _accounts(
        np.r_[np.arange(n), np.full(group, n)], np.full(n + group, 80), np.zeros(n + group)
    )
    for col in ("b_pacing", "b_output_heavy", "b_logprob_harvest"):
        X[col] = False
    X.iloc[:8, X.columns.get_loc("b_pacing")] = True  # a few benign queue workers
    X.iloc[8:30, X.columns.get_loc("b_output_heavy")] = True  # and writing apps
    X.iloc[n:, X.columns.get_loc("b_pacing")] = True
    X.iloc[n:, X.columns.get_loc("b_output_heavy")] = True
    X["infra_group"] = np.r_[np.ones(n), np.full(group, group)]  # they share IPs or cards
    # behaviour alone decides nothing: with no evidence of what is asked, nobody is flagged
    assert not CampaignDetector().fit(X).predict(X).any()
    # fresh self-contained tasks alone are what people ask too: still nothing
    X["fresh_share"], X["supplied_share"] = 0.9, 0.0
    assert not CampaignDetector().fit(X).predict(X).any()
    # tasks drawn from one source the group shares (linked by what they ask): a campaign
    X["shared_requests"] = np.r_[np.zeros(n), np.full(group, 60)]
    X["content_group"] = np.r_[np.ones(n), np.full(group, group)]
    out = CampaignDetector().fit(X).assign(X)
    assert out["flagged"].iloc[n:].all() and not out["flagged"].iloc[:n].any()
    assert out["families"].iloc[n] == "pacing, output_heavy, coordination, content"
    # the same machines answering text their users supply: a product's backend
    product = X.assign(supplied_share=0.8)
    assert not CampaignDetector().fit(product).predict(product).any()
    # acting alike without sharing infrastructure or a source (a popular app's users) is not
    X = X.assign(infra_group=1, shared_requests=0, content_group=1)
    assert not CampaignDetector().fit(X).predict(X).any()


def test_communities_are_connected_components():
    idx = pd.Index(["a", "b", "c", "d"])
    edges = pd.DataFrame({"source": ["a", "b"], "target": ["b", "c"], "weight": [1.0, 1.0]})
    labels = communities(idx, edges)
    assert labels["a"] == labels["b"] == labels["c"] != labels["d"]


def _machine_group(n=400, group=12):
    """``n`` bulk accounts and a machine-paced group of ``group`` sharing infrastructure."""
    X = _accounts(
        np.r_[np.arange(n), np.full(group, n)], np.full(n + group, 80), np.zeros(n + group)
    )
    X["b_pacing"] = np.r_[np.zeros(n, bool), np.ones(group, bool)]
    X["b_output_heavy"] = X["b_logprob_harvest"] = False
    X["infra_group"] = np.r_[np.ones(n), np.full(group, group)]
    rng = np.random.default_rng(1)
    X["spread"] = np.r_[rng.uniform(0.9, 1.0, n), np.full(group, 0.7)]
    X["fresh_share"], X["supplied_share"] = 0.8, 0.1
    X["token_ratio"] = np.r_[np.full(n, 14.0), np.full(group, 3.0)]  # short answers: no "long"
    return X


def test_a_machine_group_drawing_fresh_tasks_from_a_shared_source_needs_no_ask():
    # a rubric farm whose grading asks no lexicon reads: no reasoning or grading counts, its
    # members not task askers (short answers), so no content component links them either
    X = _machine_group()
    assert not CampaignDetector().fit(X).predict(X).any()
    # what it does show: most members draw from a source other accounts draw from, and
    # its prompts cover a task space
    X["shared_requests"] = np.r_[np.zeros(400), np.full(12, 50)]
    out = CampaignDetector().fit(X).assign(X)
    assert out["flagged"].iloc[400:].all() and not out["flagged"].iloc[:400].any()
    assert "shared source" in out["families"].iloc[400]
    # one template's narrow topics (an expansion backend filling its users' notes): not
    narrow = X.assign(spread=np.r_[X["spread"].iloc[:400], np.full(12, 0.25)])
    assert not CampaignDetector().fit(narrow).predict(narrow).any()
    # mostly its users' supplied text: a product
    product = X.assign(supplied_share=0.8)
    assert not CampaignDetector().fit(product).predict(product).any()


def test_an_account_linked_by_what_it_asks_is_tested_in_its_content_component():
    # a slow account asking fresh tasks from a source three others share, placed by the
    # graph in a community of unrelated people: its own shared count decides
    n = 300
    X = _accounts(np.zeros(n + 1, int), np.full(n + 1, 40), np.zeros(n + 1))
    X["fresh_share"], X["supplied_share"], X["token_ratio"] = 0.8, 0.0, 14.0
    X["shared_requests"] = np.r_[np.zeros(n), 30]
    X["content_group"] = np.r_[np.ones(n), 4]
    out = CampaignDetector().fit(X).assign(X)
    assert out["flagged"].iloc[-1] and not out["flagged"].iloc[:n].any()
    # the same account with no content link, or asking for short answers, is not
    unlinked = X.assign(content_group=1)
    assert not CampaignDetector().fit(unlinked).predict(unlinked)[-1]
    short = X.assign(token_ratio=np.r_[np.full(n, 14.0), 1.0])
    assert not CampaignDetector().fit(short).predict(short)[-1]


def test_campaign_cards_merge_operators_on_shared_artifacts_not_on_a_shared_source():
    from stillroom.detect._groups import merge_linked_groups

    ids = [f"a{i}" for i in range(3)] + [f"b{i}" for i in range(3)] + [f"c{i}" for i in range(3)]
    assigned = pd.DataFrame(
        {"flagged": True, "group": [0, 0, 0, 1, 1, 1, 2, 3, 4], "score": 0.9}, index=ids
    )

    def edge(s, t, artifact, content):
        return {"source": s, "target": t, "weight": artifact + content, "pure_weight": artifact
                + content, "artifact_weight": artifact, "content_weight": content}  # fmt: skip

    edges = pd.DataFrame(
        [
            *[edge("a0", "a1", 1.0, 0), edge("a1", "a2", 1.0, 0)],  # operator a: shared IPs
            *[edge("b0", "b1", 0.6, 0), edge("b1", "b2", 0.6, 1)],  # operator b
            edge("a2", "b0", 0.0, 1.0),  # a and b distil the same public set
            *[edge("c0", "c1", 0.0, 1.0), edge("c1", "c2", 0.0, 1.0)],  # c: one source only
            edge("c2", "a0", 0.0, 1.0),
        ]
    )
    cards = merge_linked_groups(assigned, edges)["group"]
    assert cards[["a0", "a1", "a2"]].nunique() == 1 and cards[["b0", "b1", "b2"]].nunique() == 1
    assert cards["a0"] != cards["b0"]  # two operators stay two campaigns
    assert cards[["c0", "c1", "c2"]].nunique() == 1 and cards["c0"] not in {
        cards["a0"],
        cards["b0"],
    }
    # the old rule (any kept edge joins flagged groups) made one card of all nine
    assert cards.nunique() == 3
