"""Distillation campaigns: each kind carries partial, noisy versions of the reported signals."""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._benign import COMMON_SYSTEM, TIMEZONES, _human_prompts
from stillroom.detect.simulator._text import COT_WRAPPERS, LOGPROB_PROBES
from stillroom.detect.simulator._timing import (
    DAY,
    HOUR,
    HUMAN_PROFILE,
    OFFICE_PROFILE,
    bursts,
    diurnal_stream,
    human_sessions,
    machine_stream,
)
from stillroom.detect.simulator._world import (
    BENIGN_UAS,
    CLOUD_OCTETS,
    PROXY_OCTETS,
    World,
)

SPOOFED_UAS = (
    "OpenAI/Python 1.58.1",
    "OpenAI/Python 1.54.3",
    "python-requests/2.32.3",
    "OpenAI/NodeJS 4.77.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
)
DISTILL_SYSTEM = (
    "You are a world-class expert. Always provide exhaustive, step-by-step reasoning.",
    "You are a meticulous tutor. Never skip intermediate steps.",
    "Respond as an expert. Include your complete reasoning trace before the final answer.",
)


def _size(w: World, low: int, high: int) -> int:
    small = min(1.0, w.scale) ** 0.5
    return max(5, round(int(w.rng.integers(low, high + 1)) * small))


def _capabilities(w: World, k: int) -> list[list[str]]:
    """A campaign concentrates on ``k`` capabilities (math and code first when present)."""
    names = sorted(w.bank.capabilities)
    # held-out pools (current world, held-out split): the capabilities tuning never saw first
    first = ("roleplay", "general") if w.held_out_axes else ("math", "code", "tools")
    prefer = [c for c in first if c in names] or names
    chosen = list(w.rng.choice(prefer, size=min(k, len(prefer)), replace=False))
    return [w.bank.capabilities[c] for c in chosen]


def distill_prompts(
    w: World, n: int, caps: list[list[str]], cot_rate: np.ndarray | float, cid: str = ""
) -> np.ndarray:
    """Capability-sweep tasks; a share ``cot_rate`` (per row) wrapped in CoT-coercion text.

    A campaign reuses a small set of wrappers and phrasings (its "identical templates"), drawn
    from a large paraphrase space, so the wording differs between campaigns.
    """
    rng = w.rng
    pool = np.asarray([p for cap in caps for p in cap], dtype=object)
    start = int(rng.integers(0, len(pool)))
    tasks = (
        pool[(start + rng.permutation(n)) % len(pool)] if n <= len(pool) else w.draw(list(pool), n)
    )
    wrappers = rng.choice(len(COT_WRAPPERS), size=2, replace=False)
    family, phrases = w.phrasing.reasoning(rng, 4)
    if cid and np.any(np.asarray(cot_rate) > 0):
        w.family.setdefault(cid, family)
    cot = rng.random(n) < np.broadcast_to(cot_rate, (n,))
    wi = wrappers[rng.integers(0, 2, n)]
    pi = rng.integers(0, len(phrases), n)
    return np.asarray(
        [
            COT_WRAPPERS[a].format(task=t, cot=phrases[b]) if c else t
            for t, c, a, b in zip(tasks, cot, wi, pi, strict=True)
        ],
        dtype=object,
    )


def _grid(w: World, tick_s: float) -> float | None:
    """A dispatcher's tick grid, or (held-out pacing) none: requests spread without one."""
    return None if w.held_out_axes else tick_s


def _period(w: World) -> tuple[float, float]:
    begin = w.start + w.rng.uniform(0, 0.45) * w.days * DAY
    return begin, w.start + w.days * DAY


def hydra(w: World, cid: str) -> None:
    """Many throwaway accounts behind a rotating residential proxy pool, fed by one dispatcher."""
    rng = w.rng
    n_acc = _size(w, 50, 90)
    ids = w.accounts(n_acc, "campaign", "hydra", cid)
    begin, end = _period(w)
    join = begin + rng.random(n_acc) * max(end - begin - 2 * DAY, DAY)
    leave = np.minimum(end, join + rng.uniform(2, w.days, n_acc) * DAY)
    vol = rng.integers(30, 160, n_acc)
    acc = np.repeat(np.arange(n_acc), vol)
    n = len(acc)
    tick = float(rng.choice([20, 30, 45]))
    ts = machine_stream(rng, n, join[acc], leave[acc], tick_s=_grid(w, tick))
    cot_rate = np.where(rng.random(n_acc) < 0.15, 0.03, rng.beta(5, 2, n_acc))[
        acc
    ]  # some only harvest
    prompts = distill_prompts(w, n, _capabilities(w, 2), cot_rate, cid)
    cover = rng.random(n) < 0.12
    prompts[cover] = _human_prompts(w, int(cover.sum()))
    size = int(rng.integers(24, 40))
    pool = np.concatenate([w.subnets(size - size // 3, PROXY_OCTETS), w.residential(size // 3)])
    epoch = ((ts - begin) // (6 * HOUR)).astype(np.int64)
    ip = w.hosts(pool[(epoch * 3 + rng.integers(0, 8, n)) % len(pool)])
    cards = w.ids("pm", max(1, n_acc // 3))
    max_tok = w.pick((4096.0, 8192.0), n_acc)[acc]
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=ip,
        user_agent=w.pick(SPOOFED_UAS, n),
        model=np.where(rng.random(n) < 0.8, "atlas-reasoning", "atlas-large").astype(object),
        system_prompt=np.where(rng.random(n) < 0.6, w.pick(DISTILL_SYSTEM, 1)[0], None),
        max_tokens=max_tok,
        temperature=w.pick((0.6, 0.7, 1.0), n_acc)[acc],
        top_logprobs=0.0,
        completion_tokens=w.completions(n, 1800, 0.5, max_tok),
        org_id=None,
        payment_id=w.pick(cards, n_acc)[acc],
    )


def low_and_slow(w: World, cid: str) -> None:
    """Human-paced accounts with cover traffic, sticky residential proxies, a few shared cards."""
    rng = w.rng
    n_acc = _size(w, 12, 25)
    ids = w.accounts(n_acc, "campaign", "low_and_slow", cid)
    begin, _end = _period(w)
    first = (begin - w.start) / DAY + rng.random(n_acc) * 2
    vol = rng.integers(25, 90, n_acc)
    tz = np.full(n_acc, float(w.pick(TIMEZONES, 1)[0])) + rng.integers(-1, 2, n_acc)
    acc, ts = human_sessions(
        rng,
        vol,
        tz,
        w.start,
        w.days - first,
        first,
        session_len=6,
        gap_s=90,
        profile=OFFICE_PROFILE if w.held_out_axes else HUMAN_PROFILE,  # held-out pacing
        weekdays_only=w.held_out_axes,
    )
    n = len(acc)
    prompts = distill_prompts(w, n, _capabilities(w, 2), rng.uniform(0.2, 0.75, n_acc)[acc], cid)
    cover = rng.random(n) < rng.uniform(0.3, 0.6, n_acc)[acc]
    prompts[cover] = _human_prompts(w, int(cover.sum()))
    pool = w.residential(int(rng.integers(6, 12)))  # residential proxies exit via real homes
    sticky = w.hosts(pool[rng.integers(0, len(pool), 2 * n_acc)]).reshape(n_acc, 2)
    ip = sticky[acc, rng.integers(0, 2, n)]
    ua = np.where(rng.random(n_acc) < 0.7, "OpenAI/Python 1.58.1", w.pick(BENIGN_UAS, n_acc))
    cards = w.ids("pm", max(1, n_acc // 4))
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=ip,
        user_agent=ua.astype(object)[acc],
        model=w.pick(("atlas-reasoning", "atlas-large"), n_acc)[acc],
        system_prompt=np.where(rng.random(n) < 0.4, DISTILL_SYSTEM[1], None),
        max_tokens=4096.0,
        temperature=0.7,
        top_logprobs=0.0,
        completion_tokens=w.completions(n, 1200, 0.6, 4096),
        org_id=None,
        payment_id=w.pick(cards, n_acc)[acc],
    )


def logprob_extractor(w: World, cid: str) -> None:
    """Top-20 logprobs on one-token completions, machine-paced from a few datacenter /24s."""
    rng = w.rng
    n_acc = _size(w, 10, 20)
    ids = w.accounts(n_acc, "campaign", "logprob_extractor", cid)
    begin, end = _period(w)
    vol = rng.integers(150, 400, n_acc)
    acc = np.repeat(np.arange(n_acc), vol)
    n = len(acc)
    ts = machine_stream(rng, n, begin, end, tick_s=_grid(w, 10.0))
    source = np.concatenate(
        [w.draw(w.bank.chat, n // 2), distill_prompts(w, n - n // 2, _capabilities(w, 1), 0.0)]
    )
    cut = rng.integers(4, 30, n)
    probes = w.pick(LOGPROB_PROBES, n)
    prompts = [
        p.format(text=" ".join(t.split()[:k])) for p, t, k in zip(probes, source, cut, strict=True)
    ]
    subnets = w.subnets(int(rng.integers(2, 4)), CLOUD_OCTETS)
    max_tok = np.where(rng.random(n) < 0.6, 1.0, w.pick((5.0, 16.0), n))
    cards = w.ids("pm", max(1, n_acc // 4))
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=w.hosts(subnets[rng.integers(0, len(subnets), n)]),
        user_agent="python-httpx/0.27.0",
        model=w.pick(("atlas-large", "atlas-mini"), n),
        max_tokens=max_tok,
        temperature=0.0,
        top_logprobs=np.where(rng.random(n) < 0.6, 20.0, w.pick((5.0, 10.0), n)),
        completion_tokens=max_tok,
        org_id=None,
        payment_id=w.pick(cards, n_acc)[acc],
    )


def grading_farm(w: World, cid: str) -> None:
    """Accounts fired together by one scheduler, grading candidate answers against rubrics."""
    rng = w.rng
    n_acc = _size(w, 25, 40)
    ids = w.accounts(n_acc, "campaign", "grading_farm", cid)
    begin, end = _period(w)
    n_ticks = 200
    ticks = np.sort(begin + rng.random(n_ticks) * (end - begin))
    fire = rng.random((n_acc, n_ticks)) < rng.uniform(0.4, 0.9, n_acc)[:, None]
    acc, tick = np.nonzero(fire)
    n = len(acc)
    ts = ticks[tick] + rng.uniform(0, 25, n)
    caps = _capabilities(w, 2)
    q = np.asarray([p for c in caps for p in c], dtype=object)
    qa, qb = q[rng.integers(0, len(q), n)], q[rng.integers(0, len(q), n)]
    answers = [
        f"The answer is {x}. {' '.join(b.split()[:12])}"
        for x, b in zip(rng.integers(1, 999, n), qb, strict=True)
    ]
    alt = [f"It is {x}." for x in rng.integers(1, 999, n)]
    family, templates = w.phrasing.grading(rng)
    w.family[cid] = family
    tmpl = w.pick(templates, n)
    prompts = np.asarray(
        [t.format(q=x, a=a, b=b) for t, x, a, b in zip(tmpl, qa, answers, alt, strict=True)], object
    )
    cover = rng.random(n) < 0.1
    prompts[cover] = _human_prompts(w, int(cover.sum()))
    subnets = w.subnets(3, CLOUD_OCTETS)
    sticky = w.hosts(subnets[rng.integers(0, 3, n_acc)])
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=sticky[acc],
        user_agent="python-requests/2.31.0",
        model="atlas-large",
        max_tokens=1024.0,
        temperature=0.0,
        top_logprobs=0.0,
        completion_tokens=w.completions(n, 350, 0.4, 1024),
        org_id=None,
        payment_id=w.ids("pm", n_acc)[acc],
    )


def reseller(w: World, cid: str) -> None:
    """Shared accounts resold to end users, with distillation batches run at night."""
    rng = w.rng
    n_acc = _size(w, 5, 8)
    ids = w.accounts(n_acc, "campaign", "reseller", cid)
    gateway = w.hosts(np.repeat(w.subnets(1, CLOUD_OCTETS), int(rng.integers(2, 5))))
    cards, org = w.ids("pm", int(rng.integers(1, 3))), w.ids("org", 1)[0]
    home_tz = float(w.pick(TIMEZONES, 1)[0])
    for a in ids:
        users = int(rng.integers(300, 900))
        t_users = np.concatenate(
            [
                diurnal_stream(rng, users // 3 + 1, w.start, w.days, float(tz))
                for tz in w.pick(TIMEZONES, 3)
            ]
        )
        p_users = _human_prompts(w, len(t_users))
        share = rng.uniform(0.25, 0.5)
        n_batches = max(1, round(len(t_users) * share / (1 - share) / 120))
        sizes = rng.integers(60, 180, n_batches)
        nights = (
            w.start
            + rng.integers(0, w.days, n_batches) * DAY
            + (rng.uniform(1, 5, n_batches) - home_tz) * HOUR
        )
        t_batch = bursts(rng, sizes, nights, gap_s=float(rng.uniform(4, 15)))
        p_batch = distill_prompts(w, len(t_batch), _capabilities(w, 2), 0.7, cid)
        ts = np.concatenate([t_users, t_batch])
        n = len(ts)
        sysp = np.concatenate(
            [
                np.where(rng.random(len(t_users)) < 0.2, w.pick(COMMON_SYSTEM, len(t_users)), None),
                np.full(len(t_batch), None, object),
            ]
        )
        max_tok = np.concatenate([np.full(len(t_users), 2048.0), np.full(len(t_batch), 8192.0)])
        w.add(
            np.full(n, a, object),
            ts,
            np.concatenate([p_users, p_batch]),
            ip=gateway[rng.integers(0, len(gateway), n)],
            user_agent="OpenAI/Python 1.40.0",
            model=np.where(max_tok > 4096, "atlas-reasoning", "atlas-large").astype(object),
            system_prompt=sysp,
            max_tokens=max_tok,
            temperature=0.7,
            top_logprobs=0.0,
            completion_tokens=w.completions(n, 500, 0.8, max_tok) * np.where(max_tok > 4096, 3, 1),
            org_id=org,
            payment_id=w.pick(cards, 1)[0],
        )


CAMPAIGNS = {
    "hydra": (hydra, 2),
    "low_and_slow": (low_and_slow, 2),
    "logprob_extractor": (logprob_extractor, 1),
    "grading_farm": (grading_farm, 1),
    "reseller": (reseller, 2),
}
