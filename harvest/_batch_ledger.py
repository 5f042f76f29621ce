"""A database's own Message Batches, in a file beside it, for ``harvest cancel``.

OpenAI batches carry the database's tag in their metadata, so ``harvest cancel`` finds them
at the provider. Anthropic's Message Batches carry none, and a running ``harvest run``
holds the DuckDB file, which no other process can then open, even read-only. So each
Message Batch known to be this database's (created by it, or adopted and confirmed by
custom_id: never an unconfirmed look-alike) is also appended to ``<db>.message-batches``,
one id a line. ``harvest cancel`` reads the database when it can and this file when a run
holds the database. When a batch run ends, the file is rewritten to the batches that may
still run, so it stays short.

The file is derived: the database stays the record. A lost file costs only the
convenience (stop the run, then cancel).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def ledger_path(db: Path | str) -> Path:
    """Where a database's Message Batch ids are kept: ``<db>.message-batches``."""
    return Path(f"{db}.message-batches")


def note_batch(db: Path | str, batch_id: str) -> None:
    """Append ``batch_id`` (flushed to disk before returning)."""
    if "\n" in batch_id or not batch_id.strip():
        raise ValueError(f"not a batch id: {batch_id!r}")
    with open(ledger_path(db), "a", encoding="utf-8") as fh:
        fh.write(batch_id + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def ledger_ids(db: Path | str) -> list[str]:
    """The ids in the file, first occurrence first; ``[]`` when there is no file."""
    path = ledger_path(db)
    if not path.exists():
        return []
    ids = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return list(dict.fromkeys(i for i in ids if i))


def rewrite_ledger(db: Path | str, batch_ids: Iterable[str]) -> None:
    """Replace the file by ``batch_ids`` (atomically); no ids removes it."""
    path, ids = ledger_path(db), list(batch_ids)
    if not ids:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(i + "\n" for i in ids), encoding="utf-8")
    os.replace(tmp, path)
