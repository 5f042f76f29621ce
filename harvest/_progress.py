"""The rich progress bar of a run: done/total, rate, tokens, 429s and ETA."""

from __future__ import annotations

from typing import Any


class NoProgress:
    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *, done: int, tokens: int, rate_limited: int, failed: int) -> None:
        return None


class RichProgress(NoProgress):
    """Updated by the writer after each committed batch (not per answer: it is cheap)."""

    def __init__(self, total: int, description: str = "harvest"):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>8.1f}/s"),
            TextColumn("tok {task.fields[tokens]:,}"),
            TextColumn("429s {task.fields[r429]}"),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            refresh_per_second=4,
        )
        self.task = self.progress.add_task(
            description, total=total, rate=0.0, tokens=0, r429=0, failed=0
        )

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(self, *, done: int, tokens: int, rate_limited: int, failed: int) -> None:
        task = self.progress.tasks[0]
        elapsed = task.elapsed or 0.0
        self.progress.update(
            self.task,
            completed=done + failed,
            rate=done / elapsed if elapsed > 0 else 0.0,
            tokens=tokens,
            r429=rate_limited,
            failed=failed,
        )
