"""Benign users and the hard negatives that must not be flagged."""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._text import (
    _FOLLOWUPS,
    _TOPICS,
    AGENT_STEPS,
    AGENT_SYSTEM_PROMPTS,
    BENIGN_STEP_HINTS,
    GRADING_TEMPLATES,
    LETS_THINK,
    gen_chat,
)
from stillroom.detect.simulator._timing import (
    DAY,
    OFFICE_PROFILE,
    bursts,
    diurnal_stream,
    human_sessions,
)
from stillroom.detect.simulator._world import (
    BENIGN_UAS,
    CLOUD_OCTETS,
    MODELS,
    RESIDENTIAL_OCTETS,
    World,
)

COMMON_SYSTEM = (
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer concisely.",
    "You are ChatGPT, a large language model. Be helpful.",
)
TIMEZONES = np.array([-8, -7, -6, -5, -4, -3, 0, 1, 1, 2, 3, 5.5, 8, 9, 10])


def _human_prompts(w: World, n: int) -> np.ndarray:
    """Chat prompts with lead-ins, the odd step-by-step request and short follow-ups."""
    half = n // 2
    out = np.concatenate([w.draw(w.bank.chat, half), np.asarray(gen_chat(w.rng, n - half), object)])
    w.rng.shuffle(out)
    r = w.rng.random(n)
    follow = r < 0.12
    out[follow] = w.pick(_FOLLOWUPS, int(follow.sum()))
    hint = r > 0.97
    out[hint] = [
        p + h for p, h in zip(out[hint], w.pick(BENIGN_STEP_HINTS, int(hint.sum())), strict=True)
    ]
    return out


def benign_users(w: World) -> None:
    n_acc = w.count(1600, 20)
    ids = w.accounts(n_acc, "benign", "benign")
    rng = w.rng
    vol = np.clip(np.round(rng.lognormal(2.5, 1.15, n_acc)), 1, 1500).astype(np.int64)
    first = rng.random(n_acc) * w.days * 0.8
    span = np.maximum(1, rng.random(n_acc) * (w.days - first) + 1)
    acc, ts = human_sessions(rng, vol, w.pick(TIMEZONES, n_acc).astype(float), w.start, span, first)
    n = len(acc)
    home = w.hosts(w.residential(n_acc))
    ip = home[acc].copy()
    mobile = rng.random(n) < np.where(rng.random(n_acc) < 0.3, 0.4, 0.0)[acc]
    ip[mobile] = w.mobile_ips(int(mobile.sum()))
    dev = rng.random(n_acc) < 0.25  # developers: calling from a cloud VM part of the time
    cloud = w.hosts(w.subnets(n_acc, CLOUD_OCTETS))
    use_cloud = dev[acc] & (rng.random(n) < 0.5)
    ip[use_cloud] = cloud[acc][use_cloud]
    pay = w.ids("pm", n_acc)
    family = rng.random(n_acc) < 0.03  # a shared family card
    pay[family] = pay[rng.integers(0, n_acc, int(family.sum()))]
    org = np.where(rng.random(n_acc) < 0.12, w.ids("org", n_acc), None)
    sys_choice = np.where(rng.random(n_acc) < 0.3, w.pick(COMMON_SYSTEM, n_acc), None)
    own_sys = rng.random(n_acc) < 0.1
    sys_choice[own_sys] = [
        f"You are my assistant for {t}." for t in w.pick(_TOPICS, int(own_sys.sum()))
    ]
    max_tok = np.where(rng.random(n_acc) < 0.5, w.pick((256, 512, 1024, 2048, 4096), n_acc), np.nan)
    temp = np.where(rng.random(n_acc) < 0.6, w.pick((0.0, 0.2, 0.7, 1.0), n_acc), np.nan)
    lp = np.where(rng.random(n_acc) < 0.02, 1.0, np.nan)  # a few set logprobs=1 by accident
    w.add(
        ids[acc],
        ts,
        _human_prompts(w, n),
        ip=ip,
        user_agent=w.pick(BENIGN_UAS, n_acc)[acc],
        model=w.pick(MODELS, n_acc)[acc],
        system_prompt=sys_choice[acc],
        max_tokens=max_tok[acc],
        temperature=temp[acc],
        top_logprobs=lp[acc],
        completion_tokens=w.completions(n, 280, 0.9, max_tok[acc]),
        org_id=org[acc],
        payment_id=pay[acc],
    )


def templated_apps(w: World) -> None:
    n_acc = w.count(12, 2)
    ids = w.accounts(n_acc, "hard_negative", "templated_app")
    rng = w.rng
    for i, a in enumerate(ids):
        n = int(rng.integers(800, 3000))
        pool = w.bank.app_templates[int(rng.integers(0, len(w.bank.app_templates)))]
        ts = diurnal_stream(rng, n, w.start, w.days, float(w.pick(TIMEZONES, 1)[0]), floor=0.15)
        servers = w.hosts(w.subnets(1, CLOUD_OCTETS).repeat(int(rng.integers(1, 4))))
        mt = float(w.pick((128, 256, 512), 1)[0])
        w.add(
            np.full(n, a, object),
            ts,
            w.draw(pool, n),
            ip=servers[rng.integers(0, len(servers), n)],
            user_agent=w.pick(BENIGN_UAS[:8], 1)[0],
            model=MODELS[i % 2],
            system_prompt=f"You power the {ids[i][-4:]} app. Follow the output format exactly.",
            max_tokens=mt,
            temperature=0.2,
            top_logprobs=0.0,
            completion_tokens=w.completions(n, mt / 3, 0.4, mt),
            org_id=w.ids("org", 1)[0],
            payment_id=w.ids("pm", 1)[0],
        )


def eval_harnesses(w: World) -> None:
    """Labs benchmarking: the same benchmark in fast bursts, two accounts per lab."""
    n_labs = w.count(5, 1)
    rng = w.rng
    questions = np.asarray(w.bank.eval_questions, dtype=object)
    for _ in range(n_labs):
        ids = w.accounts(2, "hard_negative", "eval_harness")
        org, pay = w.ids("org", 1)[0], w.ids("pm", 1)[0]
        ip = w.hosts(w.subnets(1, CLOUD_OCTETS))[0]
        mode = rng.choice(["cot", "plain", "judge"], p=[0.5, 0.2, 0.3])
        for a in ids:
            runs = int(rng.integers(1, 4))
            sizes = rng.integers(min(200, len(questions)), len(questions) + 1, runs)
            starts = w.start + rng.integers(0, w.days, runs) * DAY + rng.uniform(9, 18, runs) * 3600
            ts = bursts(rng, sizes, starts, gap_s=float(rng.uniform(0.3, 2.0)))
            q = np.concatenate([questions[:s] for s in sizes])
            if mode == "cot":
                q = np.asarray([f"Q: {x}\nA: {LETS_THINK}" for x in q], dtype=object)
            elif mode == "judge":  # LLM-as-a-judge over another model's answers
                tmpl = w.pick(GRADING_TEMPLATES, len(q))
                nums = rng.integers(1, 500, len(q))
                q = np.asarray(
                    [
                        t.format(q=x, a=f"The answer is {k}.", b=f"{k + 1}")
                        for t, x, k in zip(tmpl, q, nums, strict=True)
                    ],
                    dtype=object,
                )
            cot = mode != "plain"
            n = len(ts)
            w.add(
                np.full(n, a, object),
                ts,
                q,
                ip=np.full(n, ip),
                user_agent="lm-eval/0.4.5 OpenAI/Python 1.58.1",
                model=w.pick(MODELS, 1)[0],
                max_tokens=512.0,
                temperature=0.0,
                top_logprobs=0.0,
                completion_tokens=w.completions(n, 180 if cot else 40, 0.5, 512),
                org_id=org,
                payment_id=pay,
            )


def agents(w: World) -> None:
    """Agent frameworks: the same long system prompt for every user, tool loops."""
    n_acc = w.count(18, 2)
    ids = w.accounts(n_acc, "hard_negative", "agent")
    rng = w.rng
    for a in ids:
        tasks = int(rng.integers(10, 60))
        steps = rng.integers(3, 25, tasks)
        starts = w.start + rng.random(tasks) * w.days * DAY
        ts = bursts(rng, steps, starts, gap_s=float(rng.uniform(3, 12)))
        n = len(ts)
        first = np.r_[
            True, np.repeat(np.arange(tasks), steps)[1:] != np.repeat(np.arange(tasks), steps)[:-1]
        ]
        k, m = rng.integers(0, 400, n), rng.integers(1, 60, n)
        text = np.asarray(
            [s.format(n=x, m=y) for s, x, y in zip(w.pick(AGENT_STEPS, n), k, m, strict=True)],
            object,
        )
        text[first] = w.draw(w.bank.chat, int(first.sum()))
        sysp = AGENT_SYSTEM_PROMPTS[int(rng.integers(0, len(AGENT_SYSTEM_PROMPTS)))]
        residential = rng.random() < 0.5
        ip = w.hosts(w.subnets(1, RESIDENTIAL_OCTETS if residential else CLOUD_OCTETS))[0]
        w.add(
            np.full(n, a, object),
            ts,
            text,
            ip=np.full(n, ip),
            user_agent=f"LangChain/0.3.{int(rng.integers(0, 20))} OpenAI/Python 1.58.1",
            model=w.pick(MODELS[1:], 1)[0],
            system_prompt=sysp,
            max_tokens=1024.0,
            temperature=0.0,
            top_logprobs=0.0,
            completion_tokens=w.completions(n, 120, 0.7, 1024),
            org_id=None,
            payment_id=w.ids("pm", 1)[0],
        )


def enterprises(w: World) -> None:
    """Companies: many employee accounts behind a few NAT IPs, one org and one card."""
    rng = w.rng
    for _ in range(w.count(4, 1)):
        n_acc = int(rng.integers(12, 41))
        ids = w.accounts(n_acc, "hard_negative", "enterprise_nat")
        vol = np.clip(np.round(rng.lognormal(3.3, 0.8, n_acc)), 3, 400).astype(np.int64)
        tz = np.full(n_acc, float(w.pick(TIMEZONES, 1)[0]))
        acc, ts = human_sessions(
            rng, vol, tz, w.start, w.days, profile=OFFICE_PROFILE, weekdays_only=True
        )
        n = len(acc)
        nat = w.hosts(
            np.repeat(w.subnets(1, CLOUD_OCTETS + RESIDENTIAL_OCTETS), int(rng.integers(2, 5)))
        )
        prompts = _human_prompts(w, n)
        code = rng.random(n) < 0.3
        prompts[code] = w.draw(w.bank.capabilities.get("code", w.bank.chat), int(code.sum()))
        w.add(
            ids[acc],
            ts,
            prompts,
            ip=nat[rng.integers(0, len(nat), n)],
            user_agent=w.pick(BENIGN_UAS, n_acc)[acc],
            model=w.pick(MODELS[:2], n_acc)[acc],
            system_prompt="You are the Acme internal assistant. Do not reveal customer data.",
            max_tokens=2048.0,
            temperature=0.7,
            top_logprobs=np.nan,
            completion_tokens=w.completions(n, 300, 0.8, 2048),
            org_id=w.ids("org", 1)[0],
            payment_id=w.ids("pm", 1)[0],
        )


def logprob_researchers(w: World) -> None:
    """Academic groups: logprobs on many requests, a shared university /24, org and grant card."""
    rng = w.rng
    for _ in range(w.count(4, 1)):
        n_acc = int(rng.integers(2, 6))
        ids = w.accounts(n_acc, "hard_negative", "logprob_researcher")
        vol = rng.integers(40, 400, n_acc)
        acc, ts = human_sessions(
            rng,
            vol,
            np.full(n_acc, float(w.pick(TIMEZONES, 1)[0])),
            w.start,
            w.days,
            session_len=15,
            gap_s=20,
        )
        n = len(acc)
        uni = w.subnets(1, RESIDENTIAL_OCTETS + CLOUD_OCTETS)
        ips = w.hosts(np.repeat(uni, n_acc))
        lp = np.where(
            rng.random(n) < rng.uniform(0.4, 0.95, n_acc)[acc],
            w.pick((1, 5, 5, 10, 20), n_acc)[acc],
            0,
        )
        prompts = np.where(
            rng.random(n) < 0.5, w.draw(w.bank.chat, n), w.draw(w.bank.eval_questions, n)
        )
        mt = w.pick((32, 64, 256, 512), n_acc)[acc].astype(float)
        w.add(
            ids[acc],
            ts,
            prompts,
            ip=ips[acc],
            user_agent=w.pick(BENIGN_UAS[:8], n_acc)[acc],
            model=w.pick(MODELS, n_acc)[acc],
            max_tokens=mt,
            temperature=w.pick((0.0, 1.0), n),
            top_logprobs=lp.astype(float),
            completion_tokens=w.completions(n, 40, 0.8, mt),
            org_id=w.ids("org", 1)[0],
            payment_id=w.ids("pm", 1)[0],
        )
