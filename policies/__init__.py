"""Teacher terms as data, enforced before the first request and carried to the student.

Each teacher family's terms are one TOML file (``policies/*.toml``, plus any
directory in ``STILLROOM_POLICY_PATH``). Two functions are the contract other
packages call:

- :func:`resolve_for_harvest` -> :class:`RunPolicy`, called by harvest before any
  request; raises a :class:`PoliciesError` subclass to refuse.
- :func:`obligations` -> :class:`Obligations`, called by ``harvest export`` (dataset
  card) and ``train`` (model card, NOTICE, name prefix, rows to exclude).
"""

from __future__ import annotations

from stillroom.policies._acceptance import Acceptance, acceptances_from_records
from stillroom.policies._loader import (
    POLICY_PATH_ENV,
    get_policy,
    load_policies,
    load_policy_file,
    shipped_policy_files,
)
from stillroom.policies._model import (
    VERDICTS,
    Clause,
    Conditions,
    CoverRule,
    Limits,
    Policy,
    Price,
    Terms,
)
from stillroom.policies._obligations import Obligations, obligations
from stillroom.policies._resolve import RunPolicy, host_of, match_policies, resolve_for_harvest
from stillroom.policies.errors import (
    PoliciesError,
    PolicyAmbiguous,
    PolicyFileError,
    PolicyMismatch,
    PolicyNeedsAcceptance,
    PolicyNotFound,
    PolicyRefused,
)

__all__ = [
    "POLICY_PATH_ENV",
    "VERDICTS",
    "Acceptance",
    "Clause",
    "Conditions",
    "CoverRule",
    "Limits",
    "Obligations",
    "PoliciesError",
    "Policy",
    "PolicyAmbiguous",
    "PolicyFileError",
    "PolicyMismatch",
    "PolicyNeedsAcceptance",
    "PolicyNotFound",
    "PolicyRefused",
    "Price",
    "RunPolicy",
    "Terms",
    "acceptances_from_records",
    "get_policy",
    "host_of",
    "load_policies",
    "load_policy_file",
    "match_policies",
    "obligations",
    "resolve_for_harvest",
    "shipped_policy_files",
]
