"""Turn a parsed policy TOML table into a :class:`Policy`, or say exactly what is wrong.

Every error names the file and the field (``covers[1].models``,
``conditions.name_prefix``), and unknown keys are errors too, so a typo never
silently drops a condition.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

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
from stillroom.policies.errors import PolicyFileError

_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
_TOP = {
    "id",
    "name",
    "verdict",
    "summary",
    "terms",
    "covers",
    "conditions",
    "clauses",
    "limits",
    "prices",
}
_TERMS = {"url", "title", "version", "read"}
_COVER = {"hosts", "models", "exclude_models"}
_CLAUSE = {"section", "text", "url"}
_LIMITS = {"rpm", "tpm", "rpd", "max_spend_usd", "headers_profile"}
_PRICE = {
    "models",
    "usd_per_mtok_in",
    "usd_per_mtok_out",
    "usd_per_mtok_cached_in",
    "usd_per_mtok_batch_in",
    "usd_per_mtok_batch_out",
    "url",
    "read",
}
_BOOL_CONDITIONS = (
    "non_compete",
    "non_commercial",
    "research_only",
    "license_propagates",
    "ship_license",
)
_STR_CONDITIONS = ("name_prefix", "attribution", "notice", "use_policy")
_CONDITIONS = {*_BOOL_CONDITIONS, *_STR_CONDITIONS, "mau_limit", "other"}


class _Reader:
    """Typed access to one TOML table, raising errors that name file and field."""

    def __init__(self, path: Path, table: Any, prefix: str, allowed: set[str]) -> None:
        self.path, self.prefix = path, prefix
        if not isinstance(table, dict):
            raise PolicyFileError(path, prefix or None, f"must be a table, got {_kind(table)}")
        self.table = table
        for key in table:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise PolicyFileError(path, self.name(key), f"unknown field (known: {known})")

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, problem: str) -> PolicyFileError:
        return PolicyFileError(self.path, self.name(key), problem)

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {_kind(value)}")
        return value.strip()

    def flag(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {_kind(value)}")
        return value

    def integer(self, key: str) -> int | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a positive integer, got {_kind(value)}")
        return value

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(key, f"must be a non-negative number, got {_kind(value)}")
        return float(value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a list of non-empty strings, got {_kind(value)}")
        return tuple(value)

    def tables(self, key: str) -> list[Any]:
        value = self.table.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array of tables ([[{key}]]), got {_kind(value)}")
        return value


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) < 40 else "a long string"
    if isinstance(value, bool | int | float):
        return repr(value)
    return type(value).__name__


def parse_policy(data: dict, path: Path, *, file_hash: str = "", shipped: bool = False) -> Policy:
    """Validate the TOML table of one policy file and build its :class:`Policy`."""
    top = _Reader(path, data, "", _TOP)
    policy_id = top.text("id", required=True)
    if not _ID.match(policy_id):
        raise top.fail("id", f"{policy_id!r} must be lower-case letters, digits, '.' and '-'")
    if path.suffix == ".toml" and path.stem != policy_id:
        raise top.fail("id", f"{policy_id!r} must equal the file name ({path.stem!r})")
    verdict = top.text("verdict", required=True)
    if verdict not in VERDICTS:
        raise top.fail("verdict", f"must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    conditions = _conditions(path, data.get("conditions", {}))
    if verdict == "conditional" and not conditions.as_dict():
        raise PolicyFileError(
            path, "conditions", "a conditional verdict needs at least one condition"
        )
    return Policy(
        id=policy_id,
        name=top.text("name", required=True),
        verdict=verdict,
        summary=top.text("summary") or "",
        terms=_terms(path, data.get("terms")),
        clauses=_clauses(path, top),
        covers=_covers(path, top),
        conditions=conditions,
        limits=_limits(path, data.get("limits", {})),
        prices=_prices(path, top),
        file_hash=file_hash,
        source=path,
        shipped=shipped,
    )


def _terms(path: Path, table: Any) -> Terms:
    if table is None:
        raise PolicyFileError(path, "terms", "is required ([terms] with title, read, url)")
    r = _Reader(path, table, "terms", _TERMS)
    url = r.text("url")
    if url is not None and not url.startswith(("https://", "http://")):
        raise r.fail("url", f"must be an http(s) URL, got {url!r}")
    read = table.get("read")
    if isinstance(read, date):
        read = read.isoformat()
    elif not isinstance(read, str) or not _is_iso_date(read):
        raise r.fail(
            "read", f"must be the date the terms were read (YYYY-MM-DD), got {_kind(read)}"
        )
    return Terms(
        url=url, title=r.text("title", required=True), read=read, version=r.text("version")
    )


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _clauses(path: Path, top: _Reader) -> tuple[Clause, ...]:
    tables = top.tables("clauses")
    if not tables:
        raise top.fail("clauses", "at least one [[clauses]] with section and text is required")
    out = []
    for i, table in enumerate(tables):
        r = _Reader(path, table, f"clauses[{i}]", _CLAUSE)
        out.append(
            Clause(
                section=r.text("section", required=True),
                text=r.text("text", required=True),
                url=r.text("url"),
            )
        )
    return tuple(out)


def _covers(path: Path, top: _Reader) -> tuple[CoverRule, ...]:
    out = []
    for i, table in enumerate(top.tables("covers")):
        r = _Reader(path, table, f"covers[{i}]", _COVER)
        rule = CoverRule(
            hosts=r.texts("hosts"),
            models=r.texts("models"),
            exclude_models=r.texts("exclude_models"),
        )
        if not rule.hosts and not rule.models:
            raise PolicyFileError(
                path, f"covers[{i}]", "name hosts or models (an empty rule would cover everything)"
            )
        out.append(rule)
    return tuple(out)


def _conditions(path: Path, table: Any) -> Conditions:
    r = _Reader(path, table, "conditions", _CONDITIONS)
    kwargs: dict[str, Any] = {name: r.flag(name) for name in _BOOL_CONDITIONS}
    kwargs.update({name: r.text(name) for name in _STR_CONDITIONS})
    kwargs["mau_limit"] = r.integer("mau_limit")
    kwargs["other"] = r.texts("other")
    return Conditions(**kwargs)


def _limits(path: Path, table: Any) -> Limits:
    r = _Reader(path, table, "limits", _LIMITS)
    return Limits(
        rpm=r.integer("rpm"),
        tpm=r.integer("tpm"),
        rpd=r.integer("rpd"),
        max_spend_usd=r.number("max_spend_usd"),
        headers_profile=r.text("headers_profile"),
    )


def _prices(path: Path, top: _Reader) -> tuple[Price, ...]:
    out = []
    for i, table in enumerate(top.tables("prices")):
        r = _Reader(path, table, f"prices[{i}]", _PRICE)
        models = r.texts("models")
        if not models:
            raise r.fail("models", "name at least one model glob")
        url = r.text("url")
        if url is not None and not url.startswith(("https://", "http://")):
            raise r.fail("url", f"must be an http(s) URL, got {url!r}")
        read = table.get("read")
        if isinstance(read, date):
            read = read.isoformat()
        elif read is not None and (not isinstance(read, str) or not _is_iso_date(read)):
            raise r.fail("read", f"must be the date the price was read, got {_kind(read)}")
        out.append(
            Price(
                models=models,
                usd_per_mtok_in=r.number("usd_per_mtok_in", required=True),
                usd_per_mtok_out=r.number("usd_per_mtok_out", required=True),
                usd_per_mtok_cached_in=r.number("usd_per_mtok_cached_in"),
                usd_per_mtok_batch_in=r.number("usd_per_mtok_batch_in"),
                usd_per_mtok_batch_out=r.number("usd_per_mtok_batch_out"),
                url=url,
                read=read,
            )
        )
    return tuple(out)
