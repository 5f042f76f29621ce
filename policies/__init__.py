"""Teacher terms as data (STUB: only ``self-hosted``; the policies issue replaces it).

The contract other packages call, which the full implementation keeps:

- :func:`resolve_for_harvest` -> :class:`RunPolicy`, called by harvest before any
  request; raises a :class:`PolicyError` subclass to refuse.
- :func:`obligations` -> :class:`Obligations`, called by ``harvest export`` (dataset
  card) and ``train`` (model card, NOTICE, name prefix, rows to exclude).
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from policies.errors import PoliciesError


class PolicyNotFound(PoliciesError):
    """No policy with that id, or none matches the endpoint and model."""


class PolicyAmbiguous(PoliciesError):
    """Several policies match the endpoint and model; the user must pick one."""


class PolicyRefused(PoliciesError):
    """The terms forbid training on the outputs (the message quotes the clause)."""


class PolicyNeedsAcceptance(PoliciesError):
    """The terms allow training only on conditions the run has not accepted."""


@dataclass(frozen=True)
class Limits:
    """Provider limits a policy publishes; harvest applies the tighter of these and the user's."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_spend_usd: float | None = None
    usd_per_mtok_in: float | None = None
    usd_per_mtok_out: float | None = None


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    verdict: str  # "allowed" | "conditional" | "forbidden"
    clause: str
    limits: Limits = field(default_factory=Limits)
    conditions: dict = field(default_factory=dict)
    file_hash: str = ""


@dataclass(frozen=True)
class RunPolicy:
    """The policy a harvest run resolved to, and what the user accepted."""

    policy: Policy
    accepted: bool = False
    accepted_at: datetime | None = None
    purpose: str | None = None
    user: str | None = None

    @property
    def id(self) -> str:
        return self.policy.id

    @property
    def file_hash(self) -> str:
        return self.policy.file_hash

    @property
    def limits(self) -> Limits:
        return self.policy.limits

    def record(self) -> dict:
        """JSON-able record stored with the run (never any secret)."""
        return {
            "policy_id": self.policy.id,
            "policy_hash": self.policy.file_hash,
            "verdict": self.policy.verdict,
            "accepted": self.accepted,
            "accepted_at": self.accepted_at.isoformat() if self.accepted_at else None,
            "purpose": self.purpose,
            "user": self.user,
            "conditions": dict(self.policy.conditions),
        }


_SELF_HOSTED = Policy(
    id="self-hosted",
    name="A model you own",
    verdict="allowed",
    clause="You own the model; no third-party terms apply.",
    file_hash=hashlib.sha256(b"self-hosted").hexdigest(),
)


def resolve_for_harvest(
    *,
    policy_id: str | None,
    base_url: str,
    model: str,
    accept: Sequence[str] = (),
    purpose: str | None = None,
    now: datetime | None = None,
) -> RunPolicy:
    """Pick the run's policy and check it allows harvesting for training, or raise."""
    if policy_id != "self-hosted":
        raise PolicyNotFound(f"unknown policy {policy_id!r}; known: self-hosted")
    accepted = policy_id in accept
    return RunPolicy(
        policy=_SELF_HOSTED,
        accepted=accepted,
        accepted_at=(now or datetime.now(UTC)) if accepted else None,
        purpose=purpose,
        user=getpass.getuser(),
    )


@dataclass(frozen=True)
class Obligations:
    policy_ids: tuple[str, ...]
    name_prefix: str | None = None
    notices: tuple[str, ...] = ()
    attributions: tuple[str, ...] = ()
    training_forbidden: frozenset[str] = frozenset()
    conflicts: tuple[str, ...] = ()

    def card_markdown(self) -> str:
        """A markdown section for a dataset or model card."""
        lines = ["## Teachers and obligations", ""]
        lines += [f"- `{pid}`" for pid in self.policy_ids]
        return "\n".join(lines) + "\n"

    def notice_text(self) -> str:
        """Text of the NOTICE file a student model ships with."""
        return "\n\n".join(self.notices)


def obligations(policy_ids: Iterable[str]) -> Obligations:
    """The union of the obligations of these policies (conflicts flagged)."""
    ids = tuple(sorted(set(policy_ids)))
    return Obligations(policy_ids=ids)


__all__ = [
    "Limits",
    "Obligations",
    "PoliciesError",
    "Policy",
    "PolicyAmbiguous",
    "PolicyNeedsAcceptance",
    "PolicyNotFound",
    "PolicyRefused",
    "RunPolicy",
    "obligations",
    "resolve_for_harvest",
]
