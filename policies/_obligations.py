"""What a dataset or a student owes the teachers it came from.

:func:`obligations` takes the policy ids of the rows (from the ``completions``
view's ``policy_id`` column) and returns the union of their obligations, with
conflicts between them spelled out: harvest writes :meth:`Obligations.card_markdown`
into the dataset card, train writes it into the model card, writes
:meth:`Obligations.notice_text` as the ``NOTICE`` file, applies
:attr:`Obligations.name_prefix` and drops rows whose policy is in
:attr:`Obligations.training_forbidden`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stillroom.policies._acceptance import Acceptance
from stillroom.policies._loader import get_policy, load_policies
from stillroom.policies._model import Policy

_DISCLAIMER = (
    "These are stillroom's readings of each teacher's published terms, not legal advice; "
    "each row of the data names its policy and the hash of the policy file it was read from."
)


@dataclass(frozen=True)
class Obligations:
    """The union of the obligations of a set of policies.

    Attributes:
        policy_ids: the policies, sorted.
        name_prefix: the prefix a distributed student's name must begin with, if any
            (the first in id order when policies disagree; the disagreement is a conflict).
        notices: texts the student's ``NOTICE`` file must carry.
        attributions: texts to display prominently with a distributed student.
        training_forbidden: ids whose outputs may not train a model (drop those rows).
        conflicts: human sentences, one per conflict between the policies.
        policies: the :class:`Policy` objects themselves, in id order.
        changed_since_harvest: one sentence per policy whose file hash today differs from
            a hash recorded on the rows (the reading changed after the data was harvested).
        acceptances: what the user declared when accepting a conditional policy (who,
            when, the purpose), shown in the card beside that policy's clause.
    """

    policy_ids: tuple[str, ...]
    name_prefix: str | None = None
    notices: tuple[str, ...] = ()
    attributions: tuple[str, ...] = ()
    training_forbidden: frozenset[str] = frozenset()
    conflicts: tuple[str, ...] = ()
    policies: tuple[Policy, ...] = ()
    changed_since_harvest: tuple[str, ...] = ()
    acceptances: tuple[Acceptance, ...] = ()

    def acceptances_of(self, policy_id: str) -> tuple[Acceptance, ...]:
        return tuple(a for a in self.acceptances if a.policy_id == policy_id)

    @property
    def non_commercial(self) -> bool:
        """True when any policy limits use to non-commercial or research purposes."""
        return any(p.conditions.non_commercial or p.conditions.research_only for p in self.policies)

    @property
    def non_compete(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.policies if p.conditions.non_compete)

    @property
    def propagating(self) -> tuple[str, ...]:
        """Ids whose terms govern the student itself (e.g. a Gemma Model Derivative)."""
        return tuple(p.id for p in self.policies if p.conditions.license_propagates)

    def card_markdown(self) -> str:
        """A markdown section for a dataset or model card."""
        from stillroom.policies._card import card_markdown

        return card_markdown(self, _DISCLAIMER)

    def notice_text(self) -> str:
        """Text of the ``NOTICE`` file a student ships with ("" when no teacher requires one)."""
        if not self.notices and not self.attributions:
            return ""
        parts = ["This model was trained on outputs of other models, whose terms require:", ""]
        parts += list(self.attributions)
        parts += ["", *self.notices] if self.notices else []
        licenses = [
            f"{p.terms.title}: {p.terms.url or '(no URL)'}"
            for p in self.policies
            if p.conditions.ship_license or p.conditions.license_propagates
        ]
        if licenses:
            parts += ["", "Terms that travel with this model:", *licenses]
        return "\n".join(parts).strip() + "\n"


def obligations(
    policy_ids: Iterable[str],
    *,
    recorded_hashes: Mapping[str, Iterable[str]] | None = None,
    acceptances: Iterable[Acceptance] = (),
) -> Obligations:
    """The union of the obligations of these policies (conflicts flagged).

    ``recorded_hashes`` (policy id -> the ``policy_hash`` values stored on its rows) lets the
    card say when a policy file changed after the data was harvested. ``acceptances``
    (from :func:`~stillroom.policies.acceptances_from_records` over the runs' records) puts each
    accepted policy's user, time and declared purpose in the card; acceptances of
    policies not among ``policy_ids`` are left out.

    Raises :class:`~stillroom.policies.PolicyNotFound` for an id no loaded policy file has
    (set ``STILLROOM_POLICY_PATH`` to the directory of your own policy files).
    """
    loaded = load_policies()
    policies = tuple(get_policy(pid, loaded) for pid in sorted(set(policy_ids)))
    prefixes = _unique(p.conditions.name_prefix for p in policies)
    return Obligations(
        policy_ids=tuple(p.id for p in policies),
        name_prefix=prefixes[0] if prefixes else None,
        notices=tuple(_unique(p.conditions.notice for p in policies)),
        attributions=tuple(_unique(p.conditions.attribution for p in policies)),
        training_forbidden=frozenset(p.id for p in policies if p.verdict == "forbidden"),
        conflicts=tuple(_conflicts(policies, prefixes)),
        policies=policies,
        changed_since_harvest=tuple(_changed(policies, recorded_hashes or {})),
        acceptances=tuple(a for a in acceptances if a.policy_id in {p.id for p in policies}),
    )


def _changed(policies: tuple[Policy, ...], recorded: Mapping[str, Iterable[str]]) -> list[str]:
    out = []
    for p in policies:
        old = sorted({h for h in recorded.get(p.id, ()) if h and h != p.file_hash})
        if old:
            shown = ", ".join(h[:12] for h in old)
            out.append(
                f"{p.id}: rows were harvested under policy file sha256 {shown}…, which differs "
                f"from today's {p.file_hash[:12]}… ({p.source}); the obligations shown are today's reading."
            )
    return out


def _unique(values: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def _conflicts(policies: tuple[Policy, ...], prefixes: list[str]) -> list[str]:
    out = []
    if len(prefixes) > 1:
        owners = "; ".join(
            f"{p.id} requires “{p.conditions.name_prefix}”"
            for p in policies
            if p.conditions.name_prefix
        )
        out.append(
            f"Name prefixes disagree ({owners}): a student's name can begin with only one of them, "
            "so a student trained on all these rows cannot satisfy every policy."
        )
    propagating = [p for p in policies if p.conditions.license_propagates]
    restricted = [p for p in policies if p.conditions.non_commercial or p.conditions.research_only]
    for prop in propagating:
        for other in restricted:
            if other.id != prop.id:
                out.append(
                    f"{prop.id}: the student is governed by the {prop.terms.title}, which must go with it "
                    f"downstream, while {other.id} allows only research or non-commercial use of its "
                    "outputs; a student trained on both cannot be released under the propagating terms "
                    "alone. Drop one teacher's rows, or keep the student to non-commercial research use."
                )
    if len(propagating) > 1:
        ids = ", ".join(p.id for p in propagating)
        out.append(
            f"Several teachers' terms claim the student ({ids}); each requires its own terms to "
            "govern it, and they are different documents."
        )
    return out
