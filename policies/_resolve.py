"""Match a request to a policy and decide whether a harvest may start.

:func:`resolve_for_harvest` is what harvest calls before it creates any client:
it either returns the :class:`RunPolicy` to record with the run, or raises, so
a refused run sends zero requests.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from stillroom.policies._loader import get_policy, how_to_add_hint, load_policies
from stillroom.policies._model import Limits, Policy
from stillroom.policies.errors import (
    PoliciesError,
    PolicyAmbiguous,
    PolicyMismatch,
    PolicyNeedsAcceptance,
    PolicyNotFound,
    PolicyRefused,
)


def host_of(base_url: str) -> str:
    """The host of a base URL (``https://api.openai.com/v1`` -> ``api.openai.com``)."""
    text = base_url.strip()
    if "://" not in text:
        text = "http://" + text
    host = urlsplit(text).hostname
    if not host:
        raise PoliciesError(f"cannot read a host from base URL {base_url!r}")
    return host.lower()


def match_policies(
    base_url: str, model: str, policies: dict[str, Policy] | None = None
) -> list[Policy]:
    """Every policy that covers this base URL's host and this model id, sorted by id."""
    policies = load_policies() if policies is None else policies
    host = host_of(base_url)
    return sorted(
        (p for p in policies.values() if p.covers_request(host, model)), key=lambda p: p.id
    )


@dataclass(frozen=True)
class RunPolicy:
    """The policy a harvest run resolved to, and what the user accepted."""

    policy: Policy
    accepted: bool = False
    accepted_at: datetime | None = None
    purpose: str | None = None
    user: str | None = None
    model: str | None = None
    base_url: str | None = None
    how: str = "explicit"  # "explicit" (--policy) or "matched" (host and model)

    @property
    def id(self) -> str:
        return self.policy.id

    @property
    def file_hash(self) -> str:
        return self.policy.file_hash

    @property
    def limits(self) -> Limits:
        """The policy's limits with the model's per-token prices (``None`` = unknown)."""
        return self.policy.limits_for(self.model)

    def record(self) -> dict:
        """JSON-able record stored with the run (never any secret)."""
        p = self.policy
        return {
            "policy_id": p.id,
            "policy_name": p.name,
            "policy_hash": p.file_hash,
            "policy_source": str(p.source) if p.source else None,
            "shipped": p.shipped,
            "resolved_by": self.how,
            "verdict": p.verdict,
            "terms": p.terms_dict(),
            "clause": p.clause,
            "conditions": p.conditions.as_dict(),
            "accepted": self.accepted,
            "accepted_conditions": p.conditions.sentences() if self.accepted else [],
            "accepted_at": self.accepted_at.isoformat() if self.accepted_at else None,
            "purpose": self.purpose,
            "user": self.user,
            "model": self.model,
            "host": host_of(self.base_url) if self.base_url else None,
            "limits": self.limits.as_dict(),
        }


def resolve_for_harvest(
    *,
    policy_id: str | None,
    base_url: str,
    model: str,
    accept: Sequence[str] = (),
    purpose: str | None = None,
    now: datetime | None = None,
    user: str | None = None,
) -> RunPolicy:
    """Pick the run's policy and check it allows harvesting for training, or raise.

    Args:
        policy_id: the ``--policy`` the user named, or ``None`` to match the policy
            covering ``base_url``'s host and ``model``.
        accept: policy ids whose conditions the user acknowledges (``--accept``).
        purpose: the user-declared purpose, recorded; required by policies that
            limit use to research, non-commercial or non-competing purposes
            (:attr:`Conditions.needs_purpose`).
        now, user: when and by whom the conditions were accepted (defaults: the
            clock, the login name); both are recorded.

    Raises:
        PolicyNotFound: unknown id, or no policy covers the host and model.
        PolicyAmbiguous: several policies cover them; name one with ``--policy``.
        PolicyMismatch: the named policy does not cover an endpoint another one covers.
        PolicyRefused: the verdict is ``forbidden`` (the message quotes the clause).
        PolicyNeedsAcceptance: the verdict is ``conditional`` and the id is not in
            ``accept`` (or a required purpose is missing).
    """
    policies = load_policies()
    if policy_id is not None:
        policy, how = get_policy(policy_id, policies), "explicit"
        _check_explicit_fits(policy, base_url, model, policies)
    else:
        policy, how = single_match(base_url, model, policies), "matched"
    if policy.verdict == "forbidden":
        raise PolicyRefused(_refusal(policy))
    if policy.verdict == "conditional":
        _check_accepted(policy, accept, purpose)
    accepted = policy.id in accept
    return RunPolicy(
        policy=policy,
        accepted=accepted,
        accepted_at=(now or datetime.now(UTC)) if accepted else None,
        purpose=purpose,
        user=user or _login_name(),
        model=model,
        base_url=base_url,
        how=how,
    )


def single_match(base_url: str, model: str, policies: dict[str, Policy] | None = None) -> Policy:
    """The one policy covering this host and model; else refuse, listing the candidates."""
    policies = load_policies() if policies is None else policies
    matches = match_policies(base_url, model, policies)
    if len(matches) == 1:
        return matches[0]
    where = f"model {model!r} at {host_of(base_url)}"
    if not matches:
        candidates = "; ".join(
            f"{p.id} ({p.name})" for p in sorted(policies.values(), key=lambda p: p.id)
        )
        raise PolicyNotFound(
            f"no policy covers {where}. Name one with --policy ID if it applies "
            f"(self-hosted: a model you own). Known policies: {candidates}. {how_to_add_hint()}"
        )
    listed = "; ".join(f"{p.id} ({p.name}, {p.verdict})" for p in matches)
    raise PolicyAmbiguous(
        f"several policies cover {where}: {listed}. Name the one whose terms apply "
        f"with --policy ID. {how_to_add_hint()}"
    )


def _check_explicit_fits(
    policy: Policy, base_url: str, model: str, policies: dict[str, Policy]
) -> None:
    """A named policy must cover the request, unless no policy at all covers it."""
    host = host_of(base_url)
    if policy.covers_request(host, model):
        return
    others = [p.id for p in match_policies(base_url, model, policies) if p.id != policy.id]
    if others:
        raise PolicyMismatch(
            f"policy {policy.id!r} does not cover model {model!r} at {host}, which "
            f"{', '.join(others)} cover{'s' if len(others) == 1 else ''}; pass --policy "
            f"{others[0]} (or write a policy file whose covers include it). {how_to_add_hint()}"
        )


def _refusal(policy: Policy) -> str:
    quotes = " ".join(c.quote() for c in policy.clauses[:2])
    return (
        f"policy {policy.id!r} ({policy.name}) forbids training a model on these outputs. "
        f"{policy.terms.title} ({policy.terms.url or 'no URL'}), {quotes} "
        "If your reading differs (for example, you hold written authorization), record it in "
        f"your own policy file and name it with --policy. {how_to_add_hint()}"
    )


def _check_accepted(policy: Policy, accept: Sequence[str], purpose: str | None) -> None:
    conditions = " ".join(policy.conditions.sentences())
    if policy.id not in accept:
        raise PolicyNeedsAcceptance(
            f"policy {policy.id!r} ({policy.name}) allows training only on conditions: "
            f"{conditions} Clause {policy.clause}. To accept them, pass --accept {policy.id} "
            f"(recorded with the time, your user name and --purpose)."
        )
    if policy.conditions.needs_purpose and not (purpose and purpose.strip()):
        raise PolicyNeedsAcceptance(
            f"policy {policy.id!r} ({policy.name}) allows training only for some uses: "
            f"{conditions} Clause {policy.clause}. Declare the run's purpose with "
            f"--purpose TEXT, a use these terms leave open (for example a narrow, non-competing "
            f"single-task model); it is recorded with the run and written into the dataset "
            f"and model cards."
        )


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return os.environ.get("USER") or None
