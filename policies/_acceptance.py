"""What a user declared when they accepted a conditional policy, as carried to the cards.

A conditional run records its acceptance in the run record (:meth:`RunPolicy.record`,
stored in ``runs.policy``): who accepted, when, for which declared purpose, and the
conditions and clause they accepted. :func:`acceptances_from_records` turns those
records back into :class:`Acceptance` values, which :func:`~stillroom.policies.obligations`
writes into the dataset card and the model card beside the clause.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stillroom.policies.errors import PoliciesError


@dataclass(frozen=True)
class Acceptance:
    """One acceptance of a conditional policy's conditions, as the run recorded it."""

    policy_id: str
    accepted_at: str | None
    purpose: str | None
    user: str | None
    clause: str | None
    conditions: tuple[str, ...] = ()

    def sentence(self) -> str:
        """One line for a card: who accepted, when, and the purpose they declared."""
        who = f"`{self.user}`" if self.user else "an unknown user"
        when = self.accepted_at or "an unrecorded time"
        purpose = f"“{self.purpose}”" if self.purpose else "none declared"
        return f"Accepted by {who} at {when}; declared purpose: {purpose}."


def acceptances_from_records(records: Iterable[Mapping[str, Any] | str | None]) -> list[Acceptance]:
    """The accepted runs among these run records (dicts or their JSON), unique, in order.

    Records of runs that accepted nothing (an ``allowed`` policy) are skipped. A record
    that is not JSON, or not an object, raises :class:`PoliciesError` naming the problem.
    """
    out: list[Acceptance] = []
    for i, raw in enumerate(records):
        if raw is None:
            continue
        record = _as_dict(raw, i)
        if not record.get("accepted"):
            continue
        acceptance = Acceptance(
            policy_id=str(record.get("policy_id")),
            accepted_at=record.get("accepted_at"),
            purpose=record.get("purpose"),
            user=record.get("user"),
            clause=record.get("clause"),
            conditions=tuple(record.get("accepted_conditions") or ()),
        )
        if acceptance not in out:
            out.append(acceptance)
    return out


def _as_dict(raw: Mapping[str, Any] | str, index: int) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise PoliciesError(f"run record {index}: field 'policy' is not JSON ({exc})") from exc
    if not isinstance(raw, Mapping):
        raise PoliciesError(f"run record {index}: field 'policy' is not a JSON object")
    return raw
