"""Benign look-alikes: each shows one behaviour that campaigns show, and is legitimate.

* ``carrier_nat``: phone users behind a carrier-grade NAT; a few exit IPs shared by many
  unrelated accounts (shared IPs).
* ``shared_template_app``: one popular integration used by many customers, each with their
  own key, all sending the same prompt skeleton (shared skeletons).
* ``batch_job``: nightly batch and 24/7 queue workers: machine pacing, round the clock or at
  fixed hours, short outputs.
* ``longform_app``: writing apps asking for the longest outputs (output-heavy), paced by
  their end users.
* ``tutoring_app``: education apps whose template asks for step-by-step working.
"""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._benign import TIMEZONES, _human_prompts
from stillroom.detect.simulator._timing import DAY, HOUR, bursts, diurnal_stream, human_sessions
from stillroom.detect.simulator._world import BENIGN_UAS, CLOUD_OCTETS, MODELS, World

_PLUGIN_SKELETONS = (
    "Rewrite the following paragraph so it reads more clearly. Keep the meaning.\n\n{x}",
    "You are the MailMate assistant. Draft a reply to this email in a friendly tone:\n{x}",
    'Fix grammar and spelling only, return the corrected text:\n"""{x}"""',
)
_BATCH_TASKS = (
    "Classify this ticket into billing, shipping, account or other. Ticket: {x}",
    "Extract the invoice number, date and total as JSON from: {x}",
    "Translate to English, output only the translation: {x}",
    "Summarise this log excerpt in one line: {x}",
)
_LONGFORM_ASKS = (
    "Write chapter {k} of my fantasy novel. Previous chapter summary: {x}",
    "Write a 3,000-word blog post about {x}, with headings.",
    "Expand these notes into a detailed report of several pages: {x}",
    "Write a long bedtime story for a seven-year-old about {x}.",
)
_TUTOR_TEMPLATES = (
    "You are a patient maths tutor. Solve the problem and show every step of your working "
    "so the student can follow it.\nProblem: {x}",
    "Explain how to solve this step by step, as a teacher would on the board, then give the "
    "answer.\n{x}",
    "Help a student with this homework question. Work through it one step at a time and "
    "explain why each step is done.\n{x}",
)


def carrier_nat(w: World) -> None:
    rng = w.rng
    n_acc = w.count(120, 10)
    ids = w.accounts(n_acc, "hard_negative", "carrier_nat")
    vol = np.clip(np.round(rng.lognormal(2.6, 1.0, n_acc)), 2, 600).astype(np.int64)
    acc, ts = human_sessions(rng, vol, w.pick(TIMEZONES[:6], n_acc).astype(float), w.start, w.days)
    n = len(acc)
    exits = w.hosts(w.subnets(2, (100,)).repeat(3))  # six exits for a whole city
    w.add(
        ids[acc],
        ts,
        _human_prompts(w, n),
        ip=exits[rng.integers(0, len(exits), n)],
        user_agent=w.pick(BENIGN_UAS[-1:] + BENIGN_UAS[:3], n_acc)[acc],
        model=w.pick(MODELS[:2], n_acc)[acc],
        max_tokens=np.where(rng.random(n_acc) < 0.5, 1024.0, np.nan)[acc],
        temperature=0.7,
        top_logprobs=np.nan,
        completion_tokens=w.completions(n, 260, 0.9, 1024),
        payment_id=w.ids("pm", n_acc)[acc],
    )


def shared_template_app(w: World) -> None:
    rng = w.rng
    n_acc = w.count(60, 6)
    ids = w.accounts(n_acc, "hard_negative", "shared_template_app")
    vol = np.clip(np.round(rng.lognormal(3.0, 0.9, n_acc)), 5, 800).astype(np.int64)
    acc, ts = human_sessions(rng, vol, w.pick(TIMEZONES, n_acc).astype(float), w.start, w.days)
    n = len(acc)
    skeleton = np.asarray(_PLUGIN_SKELETONS, dtype=object)[rng.integers(0, 3, n)]
    text = w.draw(w.bank.chat, n)
    prompts = np.asarray([s.format(x=x) for s, x in zip(skeleton, text, strict=True)], object)
    w.add(
        ids[acc],
        ts,
        prompts,
        ip=w.hosts(w.residential(n_acc))[acc],
        user_agent="MailMate/3.2 OpenAI/NodeJS 4.85.1",
        model="atlas-mini",
        max_tokens=512.0,
        temperature=0.3,
        top_logprobs=0.0,
        completion_tokens=w.completions(n, 150, 0.5, 512),
        payment_id=w.ids("pm", n_acc)[acc],
    )


def batch_jobs(w: World) -> None:
    rng = w.rng
    for i, a in enumerate(w.accounts(w.count(8, 2), "hard_negative", "batch_job")):
        if i % 2:  # a queue worker draining 24/7 at a steady pace
            n = int(rng.integers(600, 1500))
            ts = np.sort(w.start + rng.random(n) * w.days * DAY)
        else:  # a nightly job at a fixed hour, requests back to back
            sizes = np.full(w.days, int(rng.integers(40, 120)))
            at = w.start + np.arange(w.days) * DAY + float(rng.uniform(0, 5)) * HOUR
            ts = bursts(rng, sizes, at, gap_s=float(rng.uniform(1, 4)))
            n = len(ts)
        tasks = np.asarray(_BATCH_TASKS, dtype=object)[int(rng.integers(0, len(_BATCH_TASKS)))]
        prompts = [tasks.format(x=x) for x in w.draw(w.bank.chat, n)]
        w.add(
            np.full(n, a, object),
            ts,
            prompts,
            ip=np.full(n, w.hosts(w.subnets(1, CLOUD_OCTETS))[0]),
            user_agent="python-httpx/0.28.1",
            model="atlas-mini",
            max_tokens=float(w.pick((256, 512), 1)[0]),
            temperature=0.0,
            top_logprobs=0.0,
            completion_tokens=w.completions(n, 80, 0.5, 512),
            org_id=w.ids("org", 1)[0],
            payment_id=w.ids("pm", 1)[0],
        )


def longform_apps(w: World) -> None:
    rng = w.rng
    for a in w.accounts(w.count(6, 2), "hard_negative", "longform_app"):
        n = int(rng.integers(300, 1200))
        ts = diurnal_stream(rng, n, w.start, w.days, float(w.pick(TIMEZONES, 1)[0]), floor=0.1)
        asks = w.pick(_LONGFORM_ASKS, n)
        topics = _human_prompts(w, n)
        prompts = [
            q.format(k=int(k), x=t[:200])
            for q, k, t in zip(asks, rng.integers(2, 30, n), topics, strict=True)
        ]
        servers = w.hosts(w.subnets(1, CLOUD_OCTETS).repeat(2))
        w.add(
            np.full(n, a, object),
            ts,
            prompts,
            ip=servers[rng.integers(0, 2, n)],
            user_agent=w.pick(BENIGN_UAS[:5], 1)[0],
            model="atlas-large",
            system_prompt="You are a creative writing assistant. Write vivid, complete prose.",
            max_tokens=float(w.pick((4096, 8192), 1)[0]),
            temperature=0.9,
            top_logprobs=0.0,
            completion_tokens=w.completions(n, 2500, 0.5, 8192),
            org_id=w.ids("org", 1)[0],
            payment_id=w.ids("pm", 1)[0],
        )


def tutoring_apps(w: World) -> None:
    rng = w.rng
    problems = list(w.bank.eval_questions) + list(w.bank.capabilities.get("math", []))
    for a in w.accounts(w.count(5, 2), "hard_negative", "tutoring_app"):
        n = int(rng.integers(400, 1200))
        ts = diurnal_stream(rng, n, w.start, w.days, float(w.pick(TIMEZONES, 1)[0]), floor=0.05)
        tmpl = _TUTOR_TEMPLATES[int(rng.integers(0, len(_TUTOR_TEMPLATES)))]
        prompts = [tmpl.format(x=x) for x in w.draw(problems, n)]
        w.add(
            np.full(n, a, object),
            ts,
            prompts,
            ip=np.full(n, w.hosts(w.subnets(1, CLOUD_OCTETS))[0]),
            user_agent="OpenAI/Python 1.61.0",
            model="atlas-large",
            system_prompt="You are StudyBuddy, a friendly tutor for ages 11-16.",
            max_tokens=2048.0,
            temperature=0.3,
            top_logprobs=0.0,
            completion_tokens=w.completions(n, 450, 0.5, 2048),
            org_id=w.ids("org", 1)[0],
            payment_id=w.ids("pm", 1)[0],
        )


LOOKALIKES = (carrier_nat, shared_template_app, batch_jobs, longform_apps, tutoring_apps)
