"""What a policy file says, as typed, frozen values.

A :class:`Policy` is one teacher family's terms read as data: which endpoints and
models it covers, the verdict on training a model with the outputs, the
conditions that come with it, the clause that decides it (quoted, with its
section), and the limits and prices the provider publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

VERDICTS = ("allowed", "conditional", "forbidden")


@dataclass(frozen=True)
class Limits:
    """Provider limits a policy publishes; harvest applies the tighter of these and the user's.

    ``None`` means unknown (or unlimited): harvest then learns the limit from the
    provider's ``x-ratelimit-*`` headers.
    """

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_spend_usd: float | None = None
    usd_per_mtok_in: float | None = None
    usd_per_mtok_out: float | None = None
    # Batch API and cached-input prices of the model (None: not offered or not known).
    usd_per_mtok_cached_in: float | None = None
    usd_per_mtok_batch_in: float | None = None
    usd_per_mtok_batch_out: float | None = None
    # What the host's x-ratelimit-* headers mean (stillroom.harvest._header_profiles); None: by host.
    headers_profile: str | None = None

    def as_dict(self) -> dict:
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "rpd": self.rpd,
            "max_spend_usd": self.max_spend_usd,
            "usd_per_mtok_in": self.usd_per_mtok_in,
            "usd_per_mtok_out": self.usd_per_mtok_out,
            "usd_per_mtok_cached_in": self.usd_per_mtok_cached_in,
            "usd_per_mtok_batch_in": self.usd_per_mtok_batch_in,
            "usd_per_mtok_batch_out": self.usd_per_mtok_batch_out,
            "headers_profile": self.headers_profile,
        }


@dataclass(frozen=True)
class Price:
    """Per-million-token prices for the models matching ``models`` (globs): standard,
    cached input and Batch API, with the page they were read from and when."""

    models: tuple[str, ...]
    usd_per_mtok_in: float
    usd_per_mtok_out: float
    usd_per_mtok_cached_in: float | None = None
    usd_per_mtok_batch_in: float | None = None
    usd_per_mtok_batch_out: float | None = None
    url: str | None = None
    read: str | None = None

    def as_dict(self) -> dict:
        return {"models": list(self.models), **{k: getattr(self, k) for k in _PRICE_FIELDS}}


_PRICE_FIELDS = (
    "usd_per_mtok_in",
    "usd_per_mtok_out",
    "usd_per_mtok_cached_in",
    "usd_per_mtok_batch_in",
    "usd_per_mtok_batch_out",
    "url",
    "read",
)


@dataclass(frozen=True)
class Terms:
    """The document a policy reads: where it is, its title, its version, when it was read."""

    title: str
    read: str
    url: str | None = None
    version: str | None = None

    def link(self) -> str:
        """Markdown: the title, linked when there is a URL."""
        return f"[{self.title}]({self.url})" if self.url else self.title


@dataclass(frozen=True)
class Clause:
    """A short exact quote from the terms, with the section it comes from."""

    section: str
    text: str
    url: str | None = None

    def quote(self) -> str:
        return f"{self.section}: “{self.text}”"


@dataclass(frozen=True)
class CoverRule:
    """One way a policy covers a request: a host glob list AND a model glob list.

    An empty list matches anything, but a rule must name hosts or models. Globs are
    matched case-insensitively against the base-URL host and the model id.
    """

    hosts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    exclude_models: tuple[str, ...] = ()

    def matches(self, host: str, model: str) -> bool:
        host, model = host.lower(), model.lower()
        if self.hosts and not any(fnmatchcase(host, p.lower()) for p in self.hosts):
            return False
        if self.models and not any(fnmatchcase(model, p.lower()) for p in self.models):
            return False
        return not any(fnmatchcase(model, p.lower()) for p in self.exclude_models)

    def describe(self) -> str:
        hosts = ", ".join(self.hosts) if self.hosts else "any host"
        models = ", ".join(self.models) if self.models else "any model"
        text = f"{hosts} × {models}"
        if self.exclude_models:
            text += f" (except {', '.join(self.exclude_models)})"
        return text


@dataclass(frozen=True)
class Conditions:
    """The conditions that come with training on a teacher's outputs.

    Attributes:
        non_compete: the student may not compete with the provider's models or services.
        non_commercial: only non-commercial use of the outputs (and so the student).
        research_only: only research use of the outputs (and so the student).
        name_prefix: a distributed student's name must begin with this.
        attribution: text to display prominently with a distributed student.
        notice: text to ship in the student's ``NOTICE`` file.
        license_propagates: the student is governed by these terms too (e.g. a Gemma
            "Model Derivative"); its license must carry them downstream.
        ship_license: a copy of the terms must go to recipients of the student.
        mau_limit: above this many monthly active users a separate license is needed.
        use_policy: URL of an acceptable-use policy the student's use must follow.
        other: further conditions, one sentence each.
    """

    non_compete: bool = False
    non_commercial: bool = False
    research_only: bool = False
    name_prefix: str | None = None
    attribution: str | None = None
    notice: str | None = None
    license_propagates: bool = False
    ship_license: bool = False
    mau_limit: int | None = None
    use_policy: str | None = None
    other: tuple[str, ...] = ()

    @property
    def needs_purpose(self) -> bool:
        """Whether accepting these conditions also needs a declared purpose (``--purpose``).

        Conditions that limit the *use* of the outputs (research only, non-commercial, not
        a competing model) can only be met by a use, so the user declares it; the purpose
        is recorded with the run and written into the dataset and model cards.
        """
        return self.research_only or self.non_commercial or self.non_compete

    def as_dict(self) -> dict:
        """Only the conditions that are set, JSON-able."""
        out: dict = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, False, ()):
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def sentences(self) -> list[str]:
        """Each condition as a sentence a person can acknowledge."""
        out = [sentence(value) for _, value, _, sentence in self._set_conditions()]
        out.extend(self.other)
        return out

    def labels(self) -> list[str]:
        """Each condition as a short label for a table cell (``other`` left out)."""
        return [label(value) for _, value, label, _ in self._set_conditions()]

    def _set_conditions(self) -> list[tuple[str, Any, Callable, Callable]]:
        return [
            (name, getattr(self, name), label, sentence)
            for name, label, sentence in _CONDITION_WORDING
            if getattr(self, name)
        ]


# (field, short label, sentence): how each set condition is shown, in this order.
_CONDITION_WORDING: tuple[tuple[str, Callable[[Any], str], Callable[[Any], str]], ...] = (
    (
        "non_compete",
        lambda v: "non-compete",
        lambda v: "The student may not compete with the provider's models or services.",
    ),
    (
        "research_only",
        lambda v: "research only",
        lambda v: "Outputs and the student may be used for research only.",
    ),
    (
        "non_commercial",
        lambda v: "non-commercial",
        lambda v: "Outputs and the student may be used for non-commercial purposes only.",
    ),
    (
        "name_prefix",
        lambda v: f"name prefix “{v}”",
        lambda v: f"A distributed student's name must begin with “{v}”.",
    ),
    (
        "attribution",
        lambda v: f"“{v}”",
        lambda v: f"Display “{v}” prominently with a distributed student.",
    ),
    (
        "notice",
        lambda v: "NOTICE",
        lambda v: "Ship the required notice in the student's NOTICE file.",
    ),
    (
        "license_propagates",
        lambda v: "terms propagate to the student",
        lambda v: "The student is governed by these terms too; its license must carry them.",
    ),
    (
        "ship_license",
        lambda v: "ship the terms",
        lambda v: "Give recipients of the student a copy of the terms.",
    ),
    (
        "mau_limit",
        lambda v: f"{v:,} MAU cap",
        lambda v: f"Above {v:,} monthly active users a separate license is needed.",
    ),
    (
        "use_policy",
        lambda v: "use policy",
        lambda v: f"Use must follow the acceptable-use policy at {v}.",
    ),
)


@dataclass(frozen=True)
class Policy:
    """One teacher family's terms, read from a policy file."""

    id: str
    name: str
    verdict: str
    terms: Terms
    clauses: tuple[Clause, ...]
    summary: str = ""
    covers: tuple[CoverRule, ...] = ()
    conditions: Conditions = field(default_factory=Conditions)
    limits: Limits = field(default_factory=Limits)
    prices: tuple[Price, ...] = ()
    file_hash: str = ""
    source: Path | None = None
    shipped: bool = False

    @property
    def clause(self) -> str:
        """The deciding clause, quoted with its section (the first one in the file)."""
        return self.clauses[0].quote()

    def covers_request(self, host: str, model: str) -> bool:
        return any(rule.matches(host, model) for rule in self.covers)

    def limits_for(self, model: str | None) -> Limits:
        """The policy's limits, with the per-token prices of ``model`` filled in."""
        if model is None:
            return self.limits
        model_l = model.lower()
        for price in self.prices:
            if any(fnmatchcase(model_l, p.lower()) for p in price.models):
                return Limits(
                    rpm=self.limits.rpm,
                    tpm=self.limits.tpm,
                    rpd=self.limits.rpd,
                    max_spend_usd=self.limits.max_spend_usd,
                    usd_per_mtok_in=price.usd_per_mtok_in,
                    usd_per_mtok_out=price.usd_per_mtok_out,
                    usd_per_mtok_cached_in=price.usd_per_mtok_cached_in,
                    usd_per_mtok_batch_in=price.usd_per_mtok_batch_in,
                    usd_per_mtok_batch_out=price.usd_per_mtok_batch_out,
                    headers_profile=self.limits.headers_profile,
                )
        return self.limits

    def terms_dict(self) -> dict:
        return {
            "url": self.terms.url,
            "title": self.terms.title,
            "version": self.terms.version,
            "read": self.terms.read,
        }

    def to_dict(self) -> dict:
        """Everything the file says, JSON-able (for ``policies show --json``)."""
        return {
            "id": self.id,
            "name": self.name,
            "verdict": self.verdict,
            "summary": self.summary,
            "terms": self.terms_dict(),
            "covers": [
                {
                    "hosts": list(r.hosts),
                    "models": list(r.models),
                    "exclude_models": list(r.exclude_models),
                }
                for r in self.covers
            ],
            "conditions": self.conditions.as_dict(),
            "clauses": [{"section": c.section, "text": c.text, "url": c.url} for c in self.clauses],
            "limits": self.limits.as_dict(),
            "prices": [p.as_dict() for p in self.prices],
            "file_hash": self.file_hash,
            "source": str(self.source) if self.source else None,
            "shipped": self.shipped,
        }
