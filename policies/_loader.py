"""Find and read policy files: the shipped ones, then the user's.

The shipped files are ``policies/*.toml`` (package data). Directories named in
``STILLROOM_POLICY_PATH`` (``os.pathsep``-separated) are read after them, in
order; a user file with the id of a shipped one replaces it (``policies list``
shows where each policy came from, and every run records the file's hash).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from importlib import resources
from pathlib import Path

from stillroom.policies._model import Policy
from stillroom.policies._validate import parse_policy
from stillroom.policies.errors import PoliciesError, PolicyFileError, PolicyNotFound

POLICY_PATH_ENV = "STILLROOM_POLICY_PATH"


def load_policy_file(path: Path | str, *, shipped: bool = False) -> Policy:
    """Read, hash and validate one policy file; a malformed file raises :class:`PolicyFileError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyFileError(path, None, f"cannot be read ({exc.strerror or exc})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyFileError(
            path, None, f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(path, None, f"is not valid TOML ({exc})") from exc
    return parse_policy(data, path, file_hash=hashlib.sha256(raw).hexdigest(), shipped=shipped)


def shipped_policy_files() -> list[Path]:
    """The policy files shipped inside the ``policies`` package, sorted by name."""
    root = resources.files("stillroom.policies")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml"))


def user_policy_dirs() -> list[Path]:
    """The directories named in ``STILLROOM_POLICY_PATH``, in order."""
    value = os.environ.get(POLICY_PATH_ENV, "")
    dirs = [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]
    for d in dirs:
        if not d.is_dir():
            raise PoliciesError(f"{POLICY_PATH_ENV} names {d}, which is not a directory")
    return dirs


def load_policies() -> dict[str, Policy]:
    """Every policy by id: the shipped files, then each ``STILLROOM_POLICY_PATH`` directory."""
    policies: dict[str, Policy] = {}
    for path in shipped_policy_files():
        policy = load_policy_file(path, shipped=True)
        policies[policy.id] = policy
    seen_user: dict[str, Path] = {}
    for directory in user_policy_dirs():
        for path in sorted(directory.glob("*.toml")):
            policy = load_policy_file(path)
            if policy.id in seen_user:
                raise PolicyFileError(
                    path, "id", f"{policy.id!r} is also defined by {seen_user[policy.id]}"
                )
            seen_user[policy.id] = path
            policies[policy.id] = policy
    return policies


def get_policy(policy_id: str, policies: dict[str, Policy] | None = None) -> Policy:
    """The policy with this id, or :class:`PolicyNotFound` listing the known ids."""
    policies = load_policies() if policies is None else policies
    try:
        return policies[policy_id]
    except KeyError:
        known = ", ".join(sorted(policies))
        raise PolicyNotFound(
            f"unknown policy {policy_id!r}; known: {known}. {how_to_add_hint()}"
        ) from None


def how_to_add_hint() -> str:
    return (
        "To add one, write <id>.toml (copy one from `stillroom policies show ID --toml`), "
        f"check it with `stillroom policies check FILE`, and put its directory in {POLICY_PATH_ENV}."
    )
