"""Progress of a batch run: one line per file of work, its batch, state and counts."""

from __future__ import annotations

from typing import Any


class NoBatchProgress:
    def __enter__(self) -> NoBatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(
        self, file_key: str, state: str, total: int, counts: dict | None = None, batch_id=None
    ) -> None:
        return None


class RichBatchProgress(NoBatchProgress):
    """A rich bar per file: ``batch_abc in_progress  1200/5000 (3 failed)``."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]:<12} failed {task.fields[failed]}"),
            console=Console(stderr=True),
            refresh_per_second=2,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichBatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(
        self, file_key: str, state: str, total: int, counts: dict | None = None, batch_id=None
    ) -> None:
        counts = counts or {}
        done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
        if file_key not in self.tasks:
            self.tasks[file_key] = self.progress.add_task(
                f"file {file_key[:12]}", total=total, state=state, failed=0
            )
        self.progress.update(
            self.tasks[file_key], completed=done, state=state, failed=counts.get("failed") or 0,
            description=batch_id or f"file {file_key[:12]}",
        )  # fmt: skip
