"""Extraction at a person's pace: nothing about how it arrives gives it away.

* ``chat_cover_extraction``: one person (one or two accounts on the same home line) who
  chats as anyone does and, between ordinary asks, pulls worked reasoning on dataset
  questions, in sessions, minutes apart, by day.
* ``content_linked``: several slow accounts with no shared IP, card, user agent or rhythm,
  linked only by what they ask: one question source split among them (partitioned,
  overlapping, skewed, or, held out, a relay where each takes over from the last).
* ``slow_skill_sweep``: a person's-pace sweep of many task types, with no reasoning ask.

Every axis (pacing, pool, wording, construction, skill set) comes from a family of the
simulation's split (see :mod:`stillroom.detect.simulator._kind_families`).
"""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._benign import TIMEZONES, _human_prompts
from stillroom.detect.simulator._kind_families import (
    HUMAN_PACING,
    HUMAN_POOLS,
    HUMAN_WORDING,
    LINK_CONSTRUCTIONS,
    RELAY_FRAMES,
    choose,
)
from stillroom.detect.simulator._skills import skill_tasks
from stillroom.detect.simulator._timing import human_sessions
from stillroom.detect.simulator._world import BENIGN_UAS, MODELS, World


def _pool(w: World, split: str) -> tuple[str, list[str]]:
    name, caps = choose(w.rng, HUMAN_POOLS, split)
    have = [c for c in caps if w.bank.capabilities.get(c)]
    if not have:  # built-in bank: only math and code exist
        have = sorted(w.bank.capabilities)
    return name, [p for c in have for p in w.bank.capabilities[c]]


def _reasoning_asks(w: World, split: str, n: int) -> tuple[str, list[str]]:
    name, asks = choose(w.rng, HUMAN_WORDING, split)
    if asks is None or w.phrasing.asks is not None:  # the simulation's campaign phrasing
        family, rotation = w.phrasing.reasoning(w.rng, 4)
        return f"{name}:{family}", [rotation[i] for i in w.rng.integers(0, 4, n).tolist()]
    return name, [asks[i] for i in w.rng.integers(0, len(asks), n).tolist()]


def _sessions(w: World, vol, split: str, tz, first, days=None):
    name, (profile, weekdays, session_len, gap) = choose(w.rng, HUMAN_PACING, split)
    acc, ts = human_sessions(
        w.rng,
        vol,
        tz,
        w.start,
        w.days - first if days is None else days,
        first,
        profile=profile,
        session_len=session_len * w.rng.uniform(0.7, 1.4),
        gap_s=gap * w.rng.uniform(0.7, 1.4),
        weekdays_only=weekdays,
    )
    return name, acc, ts


def _ask(w: World, questions: np.ndarray, asks: list[str]) -> np.ndarray:
    """Each question with a reasoning ask before or after it, as a person would type it."""
    before = w.rng.random(len(questions)) < 0.4
    return np.asarray(
        [
            f"{a} {q}" if b else f"{q}\n\n{a}"
            for q, a, b in zip(questions, asks, before, strict=True)
        ],
        dtype=object,
    )


def _add_people(w: World, ids, acc, ts, prompts, long_rows, home, cards, uas) -> None:
    n = len(acc)
    n_acc = len(ids)
    mt = np.where(w.rng.random(n_acc) < 0.5, 4096.0, np.nan)
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=home[acc],
        user_agent=uas[acc],
        model=w.pick(MODELS[1:], n_acc)[acc],
        system_prompt=None,
        max_tokens=mt[acc],
        temperature=np.where(w.rng.random(n_acc) < 0.5, 0.7, np.nan)[acc],
        top_logprobs=np.nan,
        completion_tokens=np.where(
            long_rows, w.completions(n, 1300, 0.5, 4096), w.completions(n, 280, 0.8, 2048)
        ),
        org_id=None,
        payment_id=cards[acc],
    )


def _one_person(w: World, kind: str, cid: str, split: str, most: int, volume: tuple[int, int]):
    """Accounts of one person: ids, their pacing family, rows' account index and timestamps,
    one home line and one user agent for all of them."""
    rng = w.rng
    n_acc = int(rng.integers(1, most + 1))
    ids = w.accounts(n_acc, "campaign", kind, cid)
    vol = rng.integers(volume[0], volume[1], n_acc)
    tz = np.full(n_acc, float(w.pick(TIMEZONES, 1)[0]))
    pacing, acc, ts = _sessions(w, vol, split, tz, rng.uniform(0, 3, n_acc))
    home = w.hosts(w.residential(1).repeat(n_acc))
    uas = np.full(n_acc, w.pick(BENIGN_UAS, 1)[0], dtype=object)
    return ids, pacing, acc, ts, home, uas


def chat_cover_extraction(w: World, cid: str, split: str) -> None:
    rng = w.rng
    ids, pacing, acc, ts, home, uas = _one_person(
        w, "chat_cover_extraction", cid, split, 2, (60, 260)
    )
    n = len(acc)
    pool_name, pool = _pool(w, split)
    wording, asks = _reasoning_asks(w, split, n)
    w.kind_family.update(dict.fromkeys(ids, f"{wording}/{pacing}/{pool_name}"))
    prompts = _human_prompts(w, n)
    dataset = rng.random(n) < rng.uniform(0.3, 0.6)
    questions = w.draw(pool, int(dataset.sum()))
    coerced = rng.random(len(questions)) < rng.uniform(0.6, 1.0)
    questions[coerced] = _ask(w, questions[coerced], list(np.asarray(asks)[dataset][coerced]))
    prompts[dataset] = questions
    cards = np.full(len(ids), w.ids("pm", 1)[0], dtype=object)
    _add_people(w, ids, acc, ts, prompts, dataset, home, cards, uas)


def _shares(w: World, construction: str, n_acc: int) -> np.ndarray:
    alpha = 0.3 if construction == "skewed" else 3.0
    return w.rng.dirichlet(np.full(n_acc, alpha))


def content_linked(w: World, cid: str, split: str) -> None:
    rng = w.rng
    construction_name, construction = choose(rng, LINK_CONSTRUCTIONS, split)
    n_acc = int(rng.integers(3, len(BENIGN_UAS) + 1))  # each its own user agent
    ids = w.accounts(n_acc, "campaign", "content_linked", cid)
    pool_name, pool = _pool(w, split)
    overlapping = construction == "overlapping"  # a small pool asked again and again
    size = int(rng.integers(25, 80)) if overlapping else int(rng.integers(60, 500))
    begin = int(rng.integers(0, max(1, len(pool) - size)))
    source = np.asarray(pool[begin : begin + size], dtype=object)  # one source, a contiguous run
    total = rng.uniform(150, 600) if overlapping else size * rng.uniform(0.8, 1.5)
    vol = np.maximum(15, np.round(_shares(w, construction, n_acc) * total)).astype(np.int64)
    if construction == "relay":  # account k works in its own stretch of the fortnight
        first = np.linspace(0, w.days * 0.75, n_acc) + rng.uniform(0, 1, n_acc)
    else:
        first = rng.uniform(0, w.days * 0.4, n_acc)
    tz = w.pick(TIMEZONES, n_acc).astype(float)  # every account its own rhythm
    days = np.full(n_acc, w.days * 0.25) if construction == "relay" else w.days - first
    pacings, accs, stamps = [], [], []
    for i in range(n_acc):  # every account its own pacing family and parameters
        one = slice(i, i + 1)
        p, a, t = _sessions(w, vol[one], split, tz[one], first[one], days[one])
        pacings.append(p)
        accs.append(a + i)
        stamps.append(t)
    acc, ts = np.concatenate(accs), np.concatenate(stamps)
    n = len(acc)
    if construction == "overlapping":
        questions = w.draw(list(source), n)
    else:  # accounts take consecutive runs of one shuffled source: each asks its own share
        run = source[rng.permutation(len(source))[np.arange(n) % len(source)]]
        questions = np.empty(n, dtype=object)
        questions[np.argsort(acc, kind="stable")] = run
    rate = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.1, 0.4))
    wording, asks = _reasoning_asks(w, split, n)
    coerced = rng.random(n) < rate
    questions[coerced] = _ask(w, questions[coerced], list(np.asarray(asks)[coerced]))
    if construction == "relay":
        frames = w.pick(RELAY_FRAMES, n_acc)[acc]
        questions = np.asarray(
            [f.format(x=q, j=j) for f, q, j in zip(frames, questions, range(n), strict=True)],
            dtype=object,
        )
    cover = rng.random(n) < rng.uniform(0.0, 0.3, n_acc)[acc]
    questions[cover] = _human_prompts(w, int(cover.sum()))
    ask = wording if rate else "no_ask"
    w.kind_family.update(
        {a: f"{construction_name}/{pool_name}/{p}/{ask}" for a, p in zip(ids, pacings, strict=True)}
    )
    home = w.hosts(w.residential(n_acc))
    uas = np.asarray(BENIGN_UAS, dtype=object)[rng.permutation(len(BENIGN_UAS))[:n_acc]]
    _add_people(w, ids, acc, ts, questions, ~cover, home, w.ids("pm", n_acc), uas)


def slow_skill_sweep(w: World, cid: str, split: str) -> None:
    rng = w.rng
    ids, pacing, acc, ts, home, uas = _one_person(w, "slow_skill_sweep", cid, split, 3, (70, 240))
    n = len(acc)
    skills, tasks = skill_tasks(rng, n, split)
    pool_name, pool = _pool(w, split)
    from_pool = rng.random(n) < 0.3
    tasks[from_pool] = w.draw(pool, int(from_pool.sum()))
    cover = rng.random(n) < rng.uniform(0.1, 0.3)
    tasks[cover] = _human_prompts(w, int(cover.sum()))
    w.kind_family.update(dict.fromkeys(ids, f"{skills}/{pool_name}/{pacing}"))
    _add_people(w, ids, acc, ts, tasks, ~cover, home, w.ids("pm", len(ids)), uas)


HUMAN_CAMPAIGNS = {
    "chat_cover_extraction": (chat_cover_extraction, 6),
    "content_linked": (content_linked, 3),
    "slow_skill_sweep": (slow_skill_sweep, 3),
}
