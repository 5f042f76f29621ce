"""Lazy re-exports: a package names its public API without importing the modules behind it.

``import stillroom.harvest`` must not import the openai SDK, nor ``import stillroom.detect`` scikit-learn: the
CLI imports every package to list its commands, and has to start in well under a second.
A package's ``__init__`` keeps its light names (errors) as plain imports and hands the rest
to :func:`lazy_exports`, which imports a name's module on first attribute access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the
    module that defines it (``{"run_harvest": "stillroom.harvest._run"}``)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_of(package)[name] = value  # the next access is a plain lookup
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals_of(package)) | set(names))

    return __getattr__, __dir__


def globals_of(package: str) -> dict[str, Any]:
    import sys

    return vars(sys.modules[package])
