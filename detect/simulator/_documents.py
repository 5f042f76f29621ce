"""Text that products' end users supply: email threads, invoices, contracts, tickets, diffs.

Content products (summarisers, translators, extractors, document Q&A, code review) answer
from the text their request carries.  These generators write that text from small word
lists, mixing in real prompts from the bank where a free-text body fits, so documents are
varied and self-consistent without any corpus.  Each takes a ``Generator``, a count and
(where a body is needed) a pool of free text, and returns ``list[str]``.
"""

from __future__ import annotations

import functools
import random

import numpy as np

_FIRST = ("Maria", "Tom", "Aiko", "Lukas", "Priya", "Omar", "Sofia", "Jin", "Grace", "Pavel")
_LAST = ("Novak", "Okafor", "Lindqvist", "Tanaka", "Moreau", "Silva", "Khan", "Brennan", "Weber")
_COMPANIES = (
    "Northwind Traders",
    "Bluefield Logistics",
    "Harbor & Finch LLP",
    "Quantis Labs",
    "Meadowbrook Dental",
    "Kestrel Energy",
    "Orbital Print Co.",
    "Larchmont Foods",
    "Vantage Ridge Realty",
    "Copperleaf Studios",
)
_SUBJECTS = (
    "the Q3 delivery schedule",
    "our renewal quote",
    "the onboarding checklist",
    "tomorrow's site visit",
    "the revised budget",
    "a missing shipment",
    "the vendor contract",
    "next week's offsite",
    "the customer escalation",
    "the audit findings",
)
_SENTENCES = (
    "I wanted to follow up on {s} before the end of the week.",
    "As discussed on the call, {c} will need a revised timeline for {s}.",
    "Could you confirm whether the figures for {s} are final?",
    "We have not received any update from {c} regarding {s}.",
    "Please find the latest numbers attached; they differ from last month's by {k}%.",
    "The team agreed to postpone {s} until the {d}th.",
    "{n} raised a concern that the cost could rise by about {k} percent.",
    "If there are no objections I will send the signed copy to {c} on Monday.",
    "Unfortunately the previous version had an error in line {k}.",
    "Let me know if {s} still works for you, otherwise we can move it.",
    "Legal asked for two changes to the wording before {c} signs.",
    "We expect the first batch of {k} units to ship on the {d}th.",
)
_ITEMS = (
    "Consulting hours",
    "Annual licence",
    "Replacement filter",
    "Freight",
    "Printer toner",
    "Catering (30 pax)",
    "Server rack rental",
    "Design revisions",
    "Safety training",
    "Cloud storage (1 TB)",
)
_CLAUSES = (
    "The Supplier shall deliver the Goods to the Customer's premises within {k} days of the "
    "purchase order.",
    "Either party may terminate this Agreement with {k} days' written notice to the other party.",
    "The Customer shall pay each invoice within {k} days of receipt; late amounts bear interest "
    "at {d}% per annum.",
    "Neither party shall be liable for any failure to perform caused by events beyond its "
    "reasonable control.",
    "All Confidential Information shall remain the property of the disclosing party and be "
    "returned within {k} days of termination.",
    "The Supplier warrants that the Services will be performed with reasonable skill and care "
    "for a period of {d} months.",
    "This Agreement is governed by the laws of {place} and the courts of {place} have exclusive "
    "jurisdiction.",
    "The total liability of either party shall not exceed {k} times the fees paid in the "
    "preceding twelve months.",
    "The Customer may not assign this Agreement without the prior written consent of the Supplier.",
)
_PLACES = ("England and Wales", "Delaware", "Ontario", "New South Wales", "Ireland", "Singapore")
_PRODUCTS = (
    "the mobile app",
    "my router",
    "the billing portal",
    "the smart thermostat",
    "my order",
)
_PROBLEMS = (
    "keeps logging me out every few minutes",
    "charged me twice for the same month",
    "stopped syncing after the last update",
    "arrived with a cracked screen",
    "shows an error code {k} when I try to pay",
    "has been stuck in processing for {d} days",
)
_FUNCS = ("load_config", "parse_row", "retry_request", "merge_items", "format_price", "send_batch")
_STMTS = (
    "value = data.get({q}key{q})",
    "if value is None:\n        return default",
    "items = [x for x in items if x]",
    "total += item.price * item.qty",
    "logger.info({q}processed %d rows{q}, count)",
    "result = client.post(url, json=payload, timeout={k})",
    "for attempt in range({d}):",
    "raise ValueError({q}bad input{q})",
    "rows.sort(key=lambda r: r.created_at)",
    "return round(amount, 2)",
)


def _py(rng: np.random.Generator) -> random.Random:
    """A fast per-call stream seeded from ``rng`` (per-item numpy draws are ~30x slower)."""
    return random.Random(int(rng.integers(0, 1 << 62)))


def _pick(r: random.Random, options, n: int) -> list:
    return r.choices(options, k=n)


_PEOPLE = tuple(f"{a} {b}" for a in _FIRST for b in _LAST)


def _person(r: random.Random) -> str:
    return r.choice(_PEOPLE)


@functools.cache
def _sentence_pool() -> tuple[str, ...]:
    """Filled sentences, made once per process (filling them per document is the slow part)."""
    r = random.Random(26)
    return tuple(
        s.format(
            s=r.choice(_SUBJECTS),
            c=r.choice(_COMPANIES),
            n=_person(r),
            k=r.randrange(2, 60),
            d=r.randrange(2, 28),
        )
        for s in r.choices(_SENTENCES, k=8000)
    )


def _paragraph(r: random.Random, k: int, body: str | None = None) -> str:
    parts = r.choices(_sentence_pool(), k=k)
    if body:
        parts.insert(r.randrange(0, len(parts) + 1), body[:600])
    return " ".join(parts)


def email_threads(rng: np.random.Generator, n: int, bodies: list[str]) -> list[str]:
    r = _py(rng)
    out = []
    for i in range(n):
        mails = []
        for _ in range(r.randrange(1, 5)):
            who = _person(r)
            body = r.choice(bodies) if r.random() < 0.4 else None
            subj = r.choice(_SUBJECTS)
            mails.append(
                f"From: {who} <{who.split()[0].lower()}@example.{'com' if i % 3 else 'org'}>\n"
                f"Subject: Re: {subj}\n\n{_paragraph(r, r.randrange(2, 6), body)}"
            )
        out.append("\n\n-----\n\n".join(mails))
    return out


def invoices(rng: np.random.Generator, n: int) -> list[str]:
    r = _py(rng)
    out = []
    for _ in range(n):
        lines, total = [], 0.0
        for item in _pick(r, _ITEMS, r.randrange(1, 7)):
            qty, price = r.randrange(1, 20), float(r.randrange(5, 2000)) + 0.99
            total += qty * price
            lines.append(f"{item:<24}{qty:>4} x {price:>9.2f} = {qty * price:>10.2f}")
        company = r.choice(_COMPANIES)
        out.append(
            f"{company}\nINVOICE {r.randrange(1000, 99999)}\n"
            f"Date: 2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}\n"
            f"Bill to: {_person(r)}, {r.choice(_COMPANIES)}\n\n"
            + "\n".join(lines)
            + f"\n\nSubtotal {total:.2f}\nVAT {total * 0.2:.2f}\nTOTAL DUE {total * 1.2:.2f}\n"
            f"Payment terms: {r.randrange(1, 9) * 15} days"
        )
    return out


def contracts(rng: np.random.Generator, n: int) -> list[str]:
    r = _py(rng)
    out = []
    for _ in range(n):
        a, b = r.sample(_COMPANIES, 2)
        place = r.choice(_PLACES)
        clauses = [
            f"{j + 1}. " + c.format(k=r.randrange(5, 90), d=r.randrange(2, 24), place=place)
            for j, c in enumerate(_pick(r, _CLAUSES, r.randrange(3, 9)))
        ]
        out.append(
            f"SERVICES AGREEMENT between {a} (the Supplier) and {b} (the Customer).\n\n"
            + "\n".join(clauses)
        )
    return out


def tickets(rng: np.random.Generator, n: int, bodies: list[str]) -> list[str]:
    r = _py(rng)
    out = []
    for _ in range(n):
        problem = r.choice(_PROBLEMS).format(k=r.randrange(100, 999), d=r.randrange(2, 14))
        extra = r.choice(bodies)[:300] if r.random() < 0.3 else ""
        out.append(
            f"Ticket #{r.randrange(10_000, 999_999)} from {_person(r)}\n"
            f"{r.choice(_PRODUCTS)} {problem}. "
            f"{_paragraph(r, r.randrange(1, 4))} {extra}".strip()
        )
    return out


def reports(rng: np.random.Generator, n: int, bodies: list[str]) -> list[str]:
    """Free-form documents: meeting notes and reports, some around real pasted text."""
    r = _py(rng)
    out = []
    for _ in range(n):
        paras = [
            _paragraph(
                r,
                r.randrange(2, 6),
                r.choice(bodies) if r.random() < 0.5 else None,
            )
            for _ in range(r.randrange(1, 5))
        ]
        title = r.choice(_SUBJECTS)
        out.append(f"Notes: {title}\n\n" + "\n\n".join(paras))
    return out


def diffs(rng: np.random.Generator, n: int) -> list[str]:
    r = _py(rng)
    out = []
    for _ in range(n):
        name = r.choice(_FUNCS)
        body = [
            s.format(q='"', k=r.randrange(1, 30), d=r.randrange(2, 6))
            for s in _pick(r, _STMTS, r.randrange(3, 9))
        ]
        changed = r.randrange(0, len(body))
        lines = [f" def {name}(data, default=None):"]
        for j, s in enumerate(body):
            if j == changed:
                lines.append(f"-    {s}")
                lines.append(f"+    {s.replace('=', '= safe(', 1) + ')' if '=' in s else s}")
            else:
                lines.append(f"     {s}")
        path = f"src/{name.split('_')[0]}/{name}.py"
        start = r.randrange(1, 400)
        out.append(
            f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{start},{len(body)} +{start},{len(body) + 1} @@\n" + "\n".join(lines)
        )
    return out


def notes(rng: np.random.Generator, n: int) -> list[str]:
    """Terse bullet notes a user wants turned into full text (a reply, a report, a post)."""
    r = _py(rng)
    out = []
    for _ in range(n):
        bullets = []
        for s in r.choices(_sentence_pool(), k=r.randrange(2, 7)):
            words = s.split()
            cut = r.randrange(3, min(len(words), 9) + 1)
            bullets.append("- " + " ".join(words[:cut]).rstrip(".,;").lower())
        out.append("\n".join(bullets))
    return out
