"""Campaigns built to dodge content filters: they must be found by what they do.

* ``residential_hydra``: hundreds of throwaway accounts, each with its own payment id, behind a
  rotating pool of residential exit IPs that every account of the pool uses; machine-paced
  round the clock, asking for the longest outputs the API allows.
* ``capability_sweep``: no reasoning coercion at all; a dispatcher sweeps every capability in
  the bank through one fixed prompt skeleton, machine-paced, long outputs, from a few
  datacenter /24s.
"""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._benign import _human_prompts
from stillroom.detect.simulator._campaigns import (
    SPOOFED_UAS,
    _grid,
    _period,
    _size,
    distill_prompts,
)
from stillroom.detect.simulator._timing import machine_stream
from stillroom.detect.simulator._world import CLOUD_OCTETS, World

# Skeletons a sweep dispatcher wraps each task in (one per campaign); not coercion, just
# the harness's own framing, in several languages.
SWEEP_SKELETONS = (
    "[job {j}] {task}\n-- respond completely and at length --",
    "#{j} | {task} | full answer required",
    "Tarea {j}: {task}\nResponde de forma completa.",
    "任务{j}：{task}\n请完整作答。",
    "Aufgabe {j}: {task}\nAusführliche Antwort.",
    "{task}\n\n(ref {j}; long-form answer)",
)


def residential_hydra(w: World, cid: str) -> None:
    rng = w.rng
    n_acc = _size(w, 90, 160)
    ids = w.accounts(n_acc, "campaign", "residential_hydra", cid)
    begin, end = _period(w)
    join = begin + rng.random(n_acc) * max(end - begin - 2 * 86400, 86400)
    leave = np.minimum(end, join + rng.uniform(3, w.days, n_acc) * 86400)
    vol = rng.integers(30, 110, n_acc)
    acc = np.repeat(np.arange(n_acc), vol)
    n = len(acc)
    tick = float(rng.choice([15, 30]))
    ts = machine_stream(rng, n, join[acc], leave[acc], tick_s=_grid(w, tick))
    cot_rate = np.where(rng.random(n_acc) < 0.3, 0.0, rng.beta(4, 2, n_acc))[acc]
    every = [p for cap in w.bank.capabilities.values() for p in cap]
    prompts = distill_prompts(w, n, [every], cot_rate, cid)
    cover = rng.random(n) < 0.1
    prompts[cover] = _human_prompts(w, int(cover.sum()))
    exits = w.hosts(w.residential(int(rng.integers(30, 60))))  # real homes, rented
    ip = exits[rng.integers(0, len(exits), n)]
    max_tok = w.pick((4096.0, 8192.0), n_acc)[acc]
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=ip,
        user_agent=w.pick(SPOOFED_UAS, n_acc)[acc],
        model="atlas-reasoning",
        system_prompt=None,
        max_tokens=max_tok,
        temperature=w.pick((0.6, 1.0), n_acc)[acc],
        top_logprobs=0.0,
        completion_tokens=w.completions(n, 2600, 0.5, max_tok),
        org_id=None,
        payment_id=w.ids("pm", n_acc)[acc],  # one card per account: nothing shared there
    )


def capability_sweep(w: World, cid: str) -> None:
    rng = w.rng
    n_acc = _size(w, 15, 30)
    ids = w.accounts(n_acc, "campaign", "capability_sweep", cid)
    begin, end = _period(w)
    vol = rng.integers(80, 240, n_acc)
    acc = np.repeat(np.arange(n_acc), vol)
    n = len(acc)
    ts = machine_stream(rng, n, begin, end, tick_s=_grid(w, 20.0))
    pool = [p for cap in w.bank.capabilities.values() for p in cap] + list(w.bank.chat)
    tasks = w.draw(pool, n)
    skeleton = SWEEP_SKELETONS[int(rng.integers(0, len(SWEEP_SKELETONS)))]
    jobs = rng.integers(10_000, 99_999, n)
    prompts = np.asarray(
        [skeleton.format(j=j, task=t) for j, t in zip(jobs, tasks, strict=True)], dtype=object
    )
    subnets = w.subnets(int(rng.integers(2, 5)), CLOUD_OCTETS)
    max_tok = w.pick((4096.0, 8192.0), 1)[0]
    cards = w.ids("pm", max(1, n_acc // 5))
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=w.hosts(subnets[rng.integers(0, len(subnets), n)]),
        user_agent="python-httpx/0.28.1",
        model=w.pick(("atlas-large", "atlas-reasoning"), n_acc)[acc],
        system_prompt=None,
        max_tokens=max_tok,
        temperature=0.7,
        top_logprobs=0.0,
        completion_tokens=w.completions(n, 2200, 0.5, max_tok),
        org_id=None,
        payment_id=w.pick(cards, n_acc)[acc],
    )
