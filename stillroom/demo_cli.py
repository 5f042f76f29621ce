"""``stillroom demo``: the whole story on the embedded teacher (thin shell over :mod:`stillroom.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    workdir: Path = typer.Option(
        Path("stillroom-demo"), help="Where everything is written (created if missing)."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Small settings: a few minutes on 2 CPU cores instead of ~25.",
    ),
) -> None:
    """Teacher -> harvest -> LoRA student (context distillation) -> evaluation -> curation
    (verified vs unverified answers) -> detection."""
    from stillroom.demo import run_demo

    run_demo(workdir, quick=quick)
