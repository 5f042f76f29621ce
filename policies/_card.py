"""The markdown section that lists each teacher, its policy, conditions and notices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stillroom.policies._model import Policy

if TYPE_CHECKING:
    from stillroom.policies._obligations import Obligations


def card_markdown(ob: Obligations, disclaimer: str) -> str:
    lines = ["## Teachers and obligations", "", disclaimer, ""]
    if not ob.policies:
        return "\n".join([*lines, "No teacher policies recorded.", ""])
    lines += ["| Policy | Teacher terms | Verdict on training | Conditions |", "|---|---|---|---|"]
    for p in ob.policies:
        conditions = "; ".join(p.conditions.labels()) or "none"
        lines.append(f"| `{p.id}` | {_cell(p.terms.link())} | {p.verdict} | {_cell(conditions)} |")
    lines.append("")
    lines += _summary(ob)
    for p in ob.policies:
        lines += _policy_section(p, ob)
    return "\n".join(lines).rstrip() + "\n"


def _summary(ob: Obligations) -> list[str]:
    lines = ["### What a model trained on this data must do", ""]
    items = []
    if ob.training_forbidden:
        items.append(
            f"**Do not train on rows from {', '.join(sorted(ob.training_forbidden))}**: "
            "their terms forbid it (stillroom's train drops those rows)."
        )
    if ob.name_prefix:
        items.append(f"Name a distributed model starting with **{ob.name_prefix}**.")
    items += [f"Display **{a}** prominently." for a in ob.attributions]
    if ob.notices:
        items.append("Ship a NOTICE file with: " + " / ".join(f"“{n}”" for n in ob.notices))
    if ob.non_commercial:
        items.append("Use it for non-commercial research only.")
    if ob.non_compete:
        items.append(f"It may not compete with the providers of {', '.join(ob.non_compete)}.")
        declared = [f"“{a.purpose}”" for pid in ob.non_compete for a in ob.acceptances_of(pid)]
        if declared:
            items.append(f"Keep to the declared purpose: {', '.join(_unique(declared))}.")
    if ob.propagating:
        items.append(
            f"License it under terms that carry those of {', '.join(ob.propagating)} "
            "(the model is a derivative under them)."
        )
    shipped_terms = [p.terms.link() for p in ob.policies if p.conditions.ship_license]
    if shipped_terms:
        items.append("Give recipients a copy of: " + ", ".join(shipped_terms) + ".")
    for p in ob.policies:
        c = p.conditions
        if c.mau_limit:
            items.append(
                f"{p.id}: above {c.mau_limit:,} monthly active users a separate license is needed."
            )
        if c.use_policy:
            items.append(f"{p.id}: follow the use policy at {c.use_policy}.")
    lines += [f"- {item}" for item in items] or ["- Nothing beyond the terms listed above."]
    lines.append("")
    if ob.conflicts:
        lines += ["### Conflicts", ""]
        lines += [f"- ⚠ {c}" for c in ob.conflicts]
        lines.append("")
    if ob.changed_since_harvest:
        lines += ["### Policy files changed since harvest", ""]
        lines += [f"- {c}" for c in ob.changed_since_harvest]
        lines.append("")
    return lines


def _policy_section(p: Policy, ob: Obligations) -> list[str]:
    version = f", {p.terms.version}" if p.terms.version else ""
    lines = [
        f"### `{p.id}`: {p.name}",
        "",
        f"- Terms: {p.terms.link()}{version} (read {p.terms.read})",
        f"- Verdict on training a model with the outputs: **{p.verdict}**",
        f"- Policy file sha256: `{p.file_hash}`",
    ]
    if p.summary:
        lines.append(f"- Reading: {p.summary}")
    for c in p.clauses:
        lines.append(f"- Clause {c.section}: “{c.text}”")
    for a in ob.acceptances_of(p.id):
        lines.append(f"- {a.sentence()}")
    conditions = p.conditions.sentences()
    if conditions:
        lines.append("- Conditions:")
        lines += [f"  - {s}" for s in conditions]
    if p.conditions.notice:
        lines.append(f"- Notice: “{p.conditions.notice}”")
    lines.append("")
    return lines


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
