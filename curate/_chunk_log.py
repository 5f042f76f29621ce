"""The store's record of a chunked curation's finished chunks (``curation_chunks``, harvest's
migration 7), and where its work files live."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stillroom.curate._spill import ScaleConfig

# fault injection for the resume test: "STAGE:CHUNK" kills this process with SIGKILL after
# that chunk's rows are written and before it is recorded as done
HALT_ENV = "STILLROOM_CURATE_HALT_AT"

# called as each chunk is recorded: (stage, chunk, first row, rows)
Progress = Callable[[str, int, int, int], None]


class ChunkLog:
    """The store's record of one curation's finished chunks."""

    def __init__(self, con: Any, name: str, progress: Progress | None = None) -> None:
        self.con, self.name, self.progress = con, name, progress

    def done(self, stage: str) -> tuple[int, int]:
        """``(chunks, rows)`` recorded for ``stage``."""
        chunks, rows = self.con.execute(
            "SELECT count(*), coalesce(sum(rows), 0) FROM curation_chunks "
            "WHERE curation = ? AND stage = ?",
            [self.name, stage],
        ).fetchall()[0]
        return int(chunks), int(rows)

    def record(self, stage: str, chunk: int, first_row: int, rows: int) -> None:
        from stillroom.harvest._store import utcnow

        halt = os.environ.get(HALT_ENV)
        if halt == f"{stage}:{chunk}":
            os.kill(os.getpid(), signal.SIGKILL)
        self.con.execute(
            "INSERT INTO curation_chunks VALUES (?, ?, ?, ?, ?, ?)",
            [self.name, stage, chunk, first_row, rows, utcnow()],
        )
        if self.progress is not None:
            self.progress(stage, chunk, first_row, rows)

    def clear(self) -> None:
        self.con.execute("DELETE FROM curation_chunks WHERE curation = ?", [self.name])


def work_folder(db: Path, name: str, scale: ScaleConfig) -> Path:
    return Path(scale.spill_dir or db.parent) / f"{db.name}.curate-{name}"
