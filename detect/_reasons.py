"""Sentences an analyst can act on, for each flagged account and each campaign."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import pandas as pd

from stillroom.detect._graph import KIND_NAMES

_SIGNAL_TEXT = {
    "reasoning": "demand the model's full step-by-step reasoning",
    "grading": "ask to grade or judge a response against a rubric",
    "logprob": "ask for top_logprobs",
    "shared": "are rare prompts other accounts of the campaign also send, beyond chance",
    "wrapped": "wrap one recurring instruction around different fresh tasks (an ask read "
    "from structure, in any language; estimated from the sampled prompts)",
}


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def significance_text(log10_p: float) -> str:
    """``p < 1e-12`` style text from a ``-log10 p`` value."""
    if log10_p >= 300:
        return "p < 1e-300"
    return f"p < 1e-{max(1, math.floor(log10_p))}"


def signal_sentence(row: pd.Series, signal: str) -> str:
    n = int(row["requests"])
    k = int(row[f"{signal}_requests"])
    text = f"{_pct(k / max(n, 1))} of prompts {_SIGNAL_TEXT[signal]} ({k:,} of {n:,})"
    if signal == "logprob":
        text = f"{_pct(k / max(n, 1))} of requests {_SIGNAL_TEXT[signal]} ({k:,} of {n:,})"
        text += f", paced round the clock ({_pct(row['quiet_share'])} in the 6 quietest hours)"
    return text


def intent_sentences(row: pd.Series) -> list[str]:
    """What the account asks: coverage, provenance and coordination by content."""
    out = []
    fresh, supplied = row.get("fresh_share"), row.get("supplied_share")
    example = row.get("example_prompt")
    quoted = f', e.g. "{example}"' if isinstance(example, str) and example else ""
    if fresh == fresh and fresh is not None and fresh >= 0.5:
        spread = row.get("spread")
        spread_text = f", topic spread {spread:.2f} over 8 prompts" if spread == spread else ""
        out.append(
            f"coverage: {_pct(fresh)} of sampled prompts are fresh self-contained tasks"
            f"{spread_text}{quoted}"
        )
    if supplied == supplied and supplied is not None and supplied >= 0.5:
        out.append(f"{_pct(supplied)} of sampled prompts carry the text the answer is made from")
    provenance = row.get("provenance")
    if provenance == provenance and provenance is not None and provenance > 0:
        out.append(
            f"provenance: {_pct(provenance)} of sampled prompts sit close to the public index"
        )
    if row.get("content_group", 1) >= 2 and row.get("shared_requests", 0) > 0:
        out.append(
            f"coordination by content: linked by what it asks (shared rare prompts or one task "
            f"source) to {int(row['content_group']) - 1:,} other accounts, with no need of shared "
            "infrastructure"
        )
    return out


def behaviour_sentences(row: pd.Series) -> list[str]:
    """What the account does, named as behaviours with the figures behind them."""
    out = []
    if row.get("b_pacing", False):
        cv, quiet = row.get("gap_cv"), row.get("quiet_share", 0) or 0
        cv_text = f"gaps between requests as regular as a dispatcher's (CV {cv:.2f}; people: 2+)"
        out.append(
            f"machine-paced: {cv_text if cv == cv and cv is not None else 'regular gaps'}, "
            f"{_pct(quiet)} of requests in the 6 quietest hours of the day"
        )
    if row.get("b_output_heavy", False):
        mt, ratio = row.get("max_tokens_mean"), row.get("token_ratio")
        parts = []
        if mt == mt and mt is not None:
            parts.append(f"asks for {mt:,.0f} max_tokens on average")
        if ratio == ratio and ratio is not None:
            parts.append(f"{ratio:.0f} completion tokens per prompt token")
        out.append("output-heavy: " + ", ".join(parts or ["long completions"]))
    if row.get("b_logprob_harvest", False):
        out.append(
            f"harvests logprobs: {_pct(row.get('logprob_rate', 0) or 0)} of requests ask for "
            "top_logprobs, machine-paced"
        )
    return out


def account_reasons(
    row: Mapping, signal: str, campaign: dict | None, shared: Iterable[tuple[str, int, int]] = ()
) -> list[str]:
    """Reasons for one flagged account: its behaviours, its own signal, what it shares, its
    campaign.  ``row``: the account's columns (a Series or a dict); ``shared``: its
    ``(kind, values, peers)`` artifacts shared within its campaign."""
    reasons = intent_sentences(row) + behaviour_sentences(row)  # what is asked, then how
    if signal != "behaviour":
        reasons.insert(0, signal_sentence(row, signal))
    for other in ("reasoning", "grading", "logprob"):
        if other != signal and row[f"{other}_requests"] >= 5 and row[f"{other}_rate"] >= 0.2:
            reasons.append(signal_sentence(row, other))
    for kind, values, peers in sorted(shared, key=lambda item: -item[1]):
        if kind == "user_agent" and peers < 3:
            continue
        reasons.append(
            f"shares {values:,} {_kind_name(kind, values)} with at least "
            f"{peers:,} other account{'s' if peers != 1 else ''} of its campaign"
        )
    if row.get("sync_peers", 0) > 0:
        reasons.append(
            f"acts in sync with {int(row['sync_peers']):,} other accounts (SynchroTrap "
            f"Jaccard up to {row['sync_jaccard']:.2f} on one-minute template actions)"
        )
    if (
        not row.get("b_pacing", False)
        and row.get("quiet_share", 0) >= 0.15
        and row["requests"] >= 100
        and signal != "logprob"
    ):
        reasons.append(
            f"active round the clock: {_pct(row['quiet_share'])} of requests in the 6 "
            "quietest hours of the day"
        )
    for cls, text in (("reasoning", "demands for full reasoning"), ("grading", "grading asks")):
        share = row.get(f"intent_{cls}", 0) or 0
        if share >= 0.25 and row[f"{cls}_rate"] < 0.2:
            reasons.append(
                f"{_pct(share)} of sampled prompts read as {text} to the intent classifier "
                "(wording the lexicon does not match)"
            )
    if row.get("topic_top_share", 0) >= 0.6 and row["requests"] >= 20:
        reasons.append(
            f"{_pct(row['topic_top_share'])} of sampled prompts fall in one capability topic"
        )
    if campaign is not None and len(campaign["accounts"]) > 1:
        ev = campaign["evidence"]
        if ev.get("decided_by") == "behaviour":
            shares = [
                f"{_pct(v['share'])} {_BEHAVIOUR_NAMES[b]} (vs {_pct(v['background'])} of "
                "ungrouped accounts)"
                for b, v in (ev.get("behaviours") or {}).items()
                if b in ev.get("families", []) and v["share"] > 0
            ]
            evidence = "; its accounts: " + ", ".join(shares) if shares else ""
        else:
            evidence = f", pooled evidence {significance_text(ev['log10_p'])}"
        reasons.append(
            f"part of campaign {campaign['id']}: {len(campaign['accounts']):,} accounts sharing "
            f"infrastructure, {campaign['requests']:,} requests{evidence}"
        )
    return reasons


_BEHAVIOUR_NAMES = {
    "pacing": "machine-paced",
    "output_heavy": "output-heavy",
    "logprob_harvest": "harvesting logprobs",
}


def _kind_name(kind: str, count: int) -> str:
    name = KIND_NAMES.get(kind, kind)
    if count == 1:
        name = {
            "payment ids": "payment id",
            "org ids": "org id",
            "IP addresses": "IP address",
            "/24 subnets": "/24 subnet",
            "rare user agents": "rare user agent",
            "system prompts": "system prompt",
            "prompt templates": "prompt template",
        }.get(name, name)
    return name


def campaign_summary(campaign: dict) -> str:
    """One line per campaign for the console and the HTML list."""
    ev = campaign["evidence"]
    families = ", ".join(ev.get("families") or []) or ev["signal"]
    head = (
        f"{campaign['id']}: {len(campaign['accounts'])} accounts, {campaign['requests']:,} requests"
    )
    if ev.get("decided_by") == "behaviour":  # judged on the whole log, not replayed hourly
        return f"{head}, evidence: {families} (decided by behaviour)"
    return (
        f"{head}, evidence: {families}; {ev['signal']} {_pct(ev['signal_rate'])}, flagged "
        f"after {ev['requests_before_flag']:,} requests"
    )
