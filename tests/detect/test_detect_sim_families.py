"""The simulator's worlds: the frozen pre-issue-26 world, the kinds added for issue 26, their
training and held-out families, and the corpora split the public-sets index is built from."""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stillroom.detect.errors import DetectError
from stillroom.detect.simulator import (
    FROZEN_KINDS,
    HELD_OUT_KINDS,
    KINDS,
    public_index_prompts,
    reword_traffic,
    simulate,
    split_of,
)
from stillroom.detect.simulator._kinds import family_splits
from stillroom.detect.simulator._split import SAMPLED, split_bank
from stillroom.detect.simulator._text import PromptBank

NEW_KINDS = set(KINDS) - set(FROZEN_KINDS)
CORPORA = Path(
    os.environ.get("STILLROOM_CORPORA", Path(__file__).resolve().parents[3] / "shared" / "corpora")
)


def _truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("worlds")
    out = {}
    for split in ("training", "held_out"):
        res = simulate(
            root / f"{split}.parquet", seed=21, scale=0.1, phrasing=split, world="current"
        )
        out[split] = (_truth(res.truth_path), _rows(res.traffic_path))
    return out


def test_frozen_world_is_the_pre_issue_simulator_byte_for_byte(tmp_path):
    # digests of simulate(seed=3, scale=0.02) written before issue 26 changed the simulator
    res = simulate(tmp_path / "f.csv", seed=3, scale=0.02)  # the default world
    assert hashlib.sha256(res.traffic_path.read_bytes()).hexdigest() == (
        "91046ad512ff71939f9155933255d4ea52630469fc0e28a8e3b7c8058c86559d"
    )
    assert hashlib.sha256(res.truth_path.read_bytes()).hexdigest() == (
        "7e226dec6e83386b1e09cc04bf2652877d067c13c47e99a1ed8d56f1a44f8476"
    )
    assert {t["kind"] for t in _truth(res.truth_path)} == set(FROZEN_KINDS)
    with pytest.raises(DetectError, match="world"):
        simulate(tmp_path / "x.csv", scale=0.02, world="v0")


def test_new_kinds_appear_with_their_labels(worlds):
    truth, _ = worlds["training"]
    kinds = {t["kind"] for t in truth}
    assert kinds == set(KINDS) - set(HELD_OUT_KINDS)
    assert NEW_KINDS - set(HELD_OUT_KINDS) <= kinds
    for t in truth:
        assert t["label"] == KINDS[t["kind"]]
        assert bool(t["campaign_id"]) == (t["label"] == "campaign")
        if t["kind"] in NEW_KINDS:
            assert t["family"] and t["split"] == "training"
        else:
            assert not t["family"] and not t["split"]
    held_truth, _ = worlds["held_out"]
    assert {t["kind"] for t in held_truth} == set(KINDS)


def test_family_names_belong_to_one_split_only():
    assert {name: s for name, s in family_splits().items() if len(s) > 1} == {}


@pytest.mark.parametrize("split", ["training", "held_out"])
def test_generation_uses_only_its_own_split_of_families(worlds, split):
    truth, _ = worlds[split]
    splits = family_splits()
    seen = defaultdict(set)
    for t in truth:
        if not t["family"]:
            continue
        parts = [p for piece in t["family"].split("/") for p in piece.split(":")]
        for part in parts:
            if part != "no_ask":
                assert splits[part] == {split}, (t["kind"], t["family"], part)
        seen[t["kind"]].add(t["family"])
    assert set(seen) == (NEW_KINDS if split == "held_out" else NEW_KINDS - set(HELD_OUT_KINDS))
    other = "held_out" if split == "training" else "training"
    other_kinds = {t["kind"] for t in worlds[other][0]}
    if split == "training":
        assert not set(HELD_OUT_KINDS) & {t["kind"] for t in truth}
        assert set(HELD_OUT_KINDS) <= other_kinds


def _by_account(rows):
    out = defaultdict(list)
    for r in rows:
        out[r["account_id"]].append(r)
    return out


def test_content_linked_accounts_share_only_what_they_ask(worlds):
    truth, rows = worlds["training"]
    acc = _by_account(rows)
    campaigns = defaultdict(list)
    for t in truth:
        if t["kind"] == "content_linked":
            campaigns[t["campaign_id"]].append(t["account_id"])
    assert campaigns
    for ids in campaigns.values():
        assert len(ids) >= 3
        for col in ("ip", "payment_id", "user_agent"):
            values = [{r[col] for r in acc[a]} for a in ids]
            assert all(not (values[i] & values[j]) for i in range(len(ids)) for j in range(i))
        prompts = [{r["prompt"] for r in acc[a]} for a in ids]
        shared_source = sum(
            bool(prompts[i] & prompts[j]) for i in range(len(ids)) for j in range(i)
        )
        assert all(p for p in prompts)
        # linked by what they ask: one source; either repeats or an even partition of it
        assert shared_source > 0 or len(set().union(*prompts)) >= sum(map(len, prompts)) * 0.5


def test_products_are_machine_paced_around_the_clock_and_carry_their_text(worlds):
    truth, rows = worlds["training"]
    kind = {t["account_id"]: t["kind"] for t in truth}
    acc = _by_account(rows)
    products = [a for a, k in kind.items() if k.endswith("_backend")]
    assert products
    for a in products:
        hours = {r["timestamp"].hour for r in acc[a]}
        assert len(hours) >= 20, (kind[a], hours)
        assert sum(len(r["prompt"]) for r in acc[a]) / len(acc[a]) > 150
    translated = [r for a in products if kind[a] == "translation_backend" for r in acc[a]]
    ratio = sum(r["completion_tokens"] for r in translated) / sum(
        r["prompt_tokens"] for r in translated
    )
    assert ratio > 0.8  # output-heavy: as long as the text it is given
    # each account composes its own system prompt (or sends none): none is a kind's own
    systems = [acc[a][0]["system_prompt"] for a in products if acc[a][0]["system_prompt"]]
    assert systems and len(set(systems)) == len(systems)


def test_person_paced_extraction_rests_at_night_and_pauses_between_asks(worlds):
    truth, rows = worlds["training"]
    kind = {t["account_id"]: t["kind"] for t in truth}
    acc = _by_account(rows)
    for a, k in kind.items():
        if k not in ("chat_cover_extraction", "slow_skill_sweep"):
            continue
        stamps = sorted(r["timestamp"].timestamp() for r in acc[a])
        gaps = [y - x for x, y in pairwise(stamps)]
        assert sorted(gaps)[len(gaps) // 2] > 20, k  # a person: tens of seconds at least
        assert len({r["timestamp"].date() for r in acc[a]}) >= 3, k


def test_public_index_is_disjoint_from_what_the_simulator_samples(worlds):
    index = public_index_prompts()
    assert len(index) > 1000
    assert all(split_of(p) != SAMPLED for p in index[:500])
    sampled = split_bank(PromptBank.builtin())
    pools = [sampled.eval_questions, *sampled.capabilities.values()]
    assert not set(index) & {p for pool in pools for p in pool}
    for split in ("training", "held_out"):
        truth, rows = worlds[split]
        # logprob probes cut prompts short, and a cut built-in code task can equal a shorter one
        cut = {t["account_id"] for t in truth if t["kind"] == "logprob_extractor"}
        lines = {
            line for r in rows if r["account_id"] not in cut for line in r["prompt"].splitlines()
        }
        assert not lines & set(index), split
    frozen_bank = PromptBank.builtin()  # the frozen world samples both halves
    assert set(index) & set(frozen_bank.capabilities["math"])


@pytest.mark.skipif(not (CORPORA / "instructions.jsonl.gz").exists(), reason="no corpora")
def test_public_index_from_corpora_holds_the_other_half(tmp_path):
    index = set(public_index_prompts(CORPORA))
    res = simulate(tmp_path / "c.parquet", seed=5, scale=0.05, corpora=CORPORA, world="current")
    prompts = pq.read_table(res.traffic_path, columns=["prompt"])["prompt"].to_pylist()
    assert len(index) > 5000
    assert not index & set(prompts)
    assert not index & {line for p in prompts for line in p.split("\n\n")}


def test_reword_traffic_rewrites_every_system_prompt_and_user_agent(tmp_path):
    res = simulate(tmp_path / "t.parquet", seed=8, scale=0.05, world="current")
    out = reword_traffic(res.traffic_path, tmp_path / "reworded.parquet", seed=3)
    before, after = pq.read_table(res.traffic_path), pq.read_table(out)
    assert before.num_rows == after.num_rows
    for col in before.column_names:
        if col not in ("system_prompt", "user_agent"):
            assert before[col].equals(after[col]), col
    for col in ("system_prompt", "user_agent"):
        old, new = before[col].to_pylist(), after[col].to_pylist()
        assert [o is None for o in old] == [n is None for n in new]
        pairs = {(o, n) for o, n in zip(old, new, strict=True) if o is not None}
        olds, news = {o for o, _ in pairs}, {n for _, n in pairs}
        assert len(pairs) == len(olds) == len(news) > 5, col  # one to one, consistently
        assert not olds & news, col  # every value changed
    translated = [
        n
        for n in {*after["system_prompt"].to_pylist()} - {None}
        if " ist " in n or n.startswith(("Du ", "Tú ", "Tu "))
    ]
    assert translated  # some are translated, not only reworded
    with pytest.raises(DetectError, match="parquet"):
        reword_traffic(res.truth_path, tmp_path / "x.parquet")


def test_old_machine_campaigns_lose_their_dispatcher_grid_in_held_out_pacing(worlds):
    def on_grid(split: str) -> float:
        truth, rows = worlds[split]
        hydra = {t["account_id"] for t in truth if t["kind"] == "hydra"}
        stamps = [r["timestamp"].timestamp() for r in rows if r["account_id"] in hydra]
        return sum(t % 5 < 1.5 for t in stamps) / len(stamps)

    assert on_grid("training") > 0.99  # ticks of 20, 30 or 45 s plus 1.5 s of jitter
    assert on_grid("held_out") < 0.5


def test_what_person_paced_extraction_asks(worlds):
    from stillroom.detect.simulator._kind_families import HUMAN_WORDING
    from stillroom.detect.simulator._text import (
        _COT_FOREIGN,
        _COT_OBJECTS,
        _COT_VERBS,
        COT_COERCION,
    )

    truth, rows = worlds["training"]
    kind = {t["account_id"]: t["kind"] for t in truth}
    asks = [a for _, v in HUMAN_WORDING.values() if v for a in v]
    asks += [f"{v} {o}" for v in _COT_VERBS for o in _COT_OBJECTS] + list(
        COT_COERCION + _COT_FOREIGN
    )
    bank = split_bank(PromptBank.builtin())
    dataset = {p for pool in bank.capabilities.values() for p in pool}

    def share(k: str, test) -> float:
        mine = [r["prompt"] for r in rows if kind[r["account_id"]] == k]
        return sum(map(test, mine)) / len(mine)

    def asks_reasoning(p: str) -> bool:
        return any(a in p for a in asks)

    def has_dataset_question(p: str) -> bool:
        return any(line in dataset for line in p.split("\n\n")) or p.split("? ", 1)[-1] in dataset

    # behind ordinary chat: dataset questions with reasoning asks, and plenty of plain chat
    assert 0.15 < share("chat_cover_extraction", asks_reasoning) < 0.7
    assert share("chat_cover_extraction", has_dataset_question) > 0.1
    # a sweep of skills: many task types, no reasoning ask at all
    assert share("slow_skill_sweep", asks_reasoning) == 0
    assert share("benign", asks_reasoning) == 0
