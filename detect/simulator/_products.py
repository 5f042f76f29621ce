"""Benign products whose answers derive from text their users supply.

Summarisers, translators, field extractors, document Q&A and code review backends serve
their own end users: machine-paced, around the clock, from a few servers, every request
carrying a document the answer is made from (translation and review answers are as long as
the input or longer).  No kind has a system prompt of its own: each account composes one from
its family, or sends none.  ``code_review_backend`` is a held-out kind.
"""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator import _documents as docs
from stillroom.detect.simulator._kind_families import (
    _LANGS,
    CONTRACT_QUESTIONS,
    PRODUCT_KINDS,
    PRODUCT_PACING,
    PRODUCT_SYSTEM,
    PRODUCT_WORDING,
    choose,
)
from stillroom.detect.simulator._timing import DAY, HOUR, bursts, diurnal_stream
from stillroom.detect.simulator._world import BENIGN_UAS, CLOUD_OCTETS, MODELS, World

_WITH_BODIES = {"email": docs.email_threads, "report": docs.reports, "ticket": docs.tickets}
_GENERATED = {
    "invoice": docs.invoices,
    "contract": docs.contracts,
    "diff": docs.diffs,
    "notes": docs.notes,
}


def _documents(w: World, kinds: tuple[str, ...], n: int) -> np.ndarray:
    rng, bodies = w.rng, [t for t in w.bank.chat if len(t) >= 150] or w.bank.chat
    which = rng.integers(0, len(kinds), n)
    out = np.empty(n, dtype=object)
    for j, kind in enumerate(kinds):
        m = int((which == j).sum())
        if kind in _WITH_BODIES:
            out[which == j] = _WITH_BODIES[kind](rng, m, bodies)
        else:
            out[which == j] = _GENERATED[kind](rng, m)
    return out


def _system_prompt(w: World, split: str) -> tuple[str, str | None]:
    rng = w.rng
    name, parts = choose(rng, PRODUCT_SYSTEM, split)
    if parts is None:
        return name, None
    if parts == "config":
        keys = rng.permutation(["tone", "max_len", "locale", "tenant", "mode", "version"])[:4]
        values = {k: str(int(rng.integers(1, 900))) for k in keys}
        return name, "{" + ", ".join(f'"{k}": "{v}"' for k, v in values.items()) + "}"
    if isinstance(parts[0][0], tuple):  # one language per account
        parts = parts[int(rng.integers(0, len(parts)))]
    openers, roles, rules = parts
    company = docs._COMPANIES[int(rng.integers(0, len(docs._COMPANIES)))]
    chosen = rng.choice(len(rules), size=int(rng.integers(1, 4)), replace=False)
    return name, (
        f"{openers[int(rng.integers(0, len(openers)))]} {roles[int(rng.integers(0, len(roles)))]}"
        f" ({company}). " + " ".join(rules[i] for i in sorted(chosen))
    )


def _times(w: World, n: int, pacing: str) -> np.ndarray:
    rng = w.rng
    if pacing == "flat":  # queue workers draining what end users submitted, 24/7
        return w.start + rng.random(n) * w.days * DAY
    if pacing == "diurnal":  # end users all over the world: a high floor at night
        return diurnal_stream(rng, n, w.start, w.days, float(rng.uniform(-8, 9)), floor=0.6)
    if pacing == "backlog":  # half drained evenly, half in backlog flushes after outages
        flat = w.start + rng.random(n // 2) * w.days * DAY
        sizes = rng.multinomial(n - n // 2, np.full(12, 1 / 12))
        at = w.start + rng.random(12) * w.days * DAY
        return np.concatenate([flat, bursts(rng, sizes, at, gap_s=float(rng.uniform(0.2, 1.0)))])
    hours = w.days * 24  # hourly sync: a burst at a fixed minute of every hour
    sizes = rng.multinomial(n, np.full(hours, 1 / hours))
    at = w.start + np.arange(hours) * HOUR + float(rng.uniform(0, 3000))
    return bursts(rng, sizes, at, gap_s=float(rng.uniform(0.3, 2.0)))


def _prompts(w: World, kind: str, templates: tuple[str, ...], n: int) -> np.ndarray:
    rng = w.rng
    mine = [templates[i] for i in rng.choice(len(templates), size=2, replace=True)]
    documents = _documents(w, PRODUCT_KINDS[kind][1], n)
    if PRODUCT_KINDS[kind][2] >= 1.0 and kind != "expansion_backend":  # whole documents
        more = rng.random(n) < 0.5
        extra = _documents(w, PRODUCT_KINDS[kind][1], int(more.sum()))
        documents[more] = [f"{a}\n\n{b}" for a, b in zip(documents[more], extra, strict=True)]
    tmpl = [mine[i] for i in rng.integers(0, len(mine), n).tolist()]
    ks = rng.integers(2, 6, n).tolist()
    lang = _LANGS[int(rng.integers(0, len(_LANGS)))]
    qs = [CONTRACT_QUESTIONS[i] for i in rng.integers(0, len(CONTRACT_QUESTIONS), n).tolist()]
    out = [
        t.format(doc=d, k=k, lang=lang, q=q)
        for t, d, k, q in zip(tmpl, documents.tolist(), ks, qs, strict=True)
    ]
    return np.asarray(out, dtype=object)


def content_product(w: World, kind: str, split: str) -> None:
    """Vendors of one content product kind, families drawn from ``split``.

    A vendor runs one to five accounts (tenants, regions, environments) from the same cloud
    servers, on one org and one card, with the vendor's pacing and request wording; each
    account carries its tenant's own system prompt (or none).
    """
    rng = w.rng
    ratio = PRODUCT_KINDS[kind][2]
    for _ in range(w.count(3, 1)):
        ids = w.accounts(int(rng.integers(1, 6)), "hard_negative", kind)
        pacing_name, pacing = choose(rng, PRODUCT_PACING, split)
        wording_name, templates = choose(rng, PRODUCT_WORDING[kind], split)
        servers = w.hosts(w.subnets(1, CLOUD_OCTETS).repeat(int(rng.integers(2, 6))))
        org, card = w.ids("org", 1)[0], w.ids("pm", 1)[0]
        ua, model = w.pick(BENIGN_UAS[:8], 1)[0], w.pick(MODELS[:2], 1)[0]
        top = (4096, 8192) if ratio >= 1 else (1024, 2048, 4096)
        max_tok = float(w.pick(top, 1)[0])
        for a in ids:
            n = int(rng.integers(200, 1500))
            system_name, system = _system_prompt(w, split)
            w.kind_family[a] = f"{wording_name}/{system_name}/{pacing_name}"
            ts = _times(w, n, pacing)
            n = len(ts)
            prompts = _prompts(w, kind, templates, n)
            tokens = np.fromiter((len(p) for p in prompts), float, n) / 4
            completion = np.fmin(np.round(ratio * tokens * rng.lognormal(0, 0.3, n)) + 8, max_tok)
            w.add(
                np.full(n, a, object),
                ts,
                prompts,
                ip=servers[rng.integers(0, len(servers), n)],
                user_agent=ua,
                model=model,
                system_prompt=system,
                max_tokens=max_tok,
                temperature=float(w.pick((0.0, 0.2, 0.3), 1)[0]),
                top_logprobs=0.0,
                completion_tokens=completion,
                org_id=org,
                payment_id=card,
            )


def content_products(w: World, split: str) -> None:
    """Every content product kind whose own split allows it in a ``split`` simulation."""
    for kind, (kind_split, _, _) in PRODUCT_KINDS.items():
        if kind_split == "training" or split == "held_out":
            content_product(w, kind, split)
