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
        help=(
            "Small settings: about 7 min on 2 CPU cores instead of about 30 for the full demo "
            "(measured 2026-12-02; longer when the cores are shared)."
        ),
    ),
) -> None:
    """Teacher -> harvest -> LoRA student (context distillation) -> evaluation -> curation
    (verified vs unverified answers) -> detection."""
    from stillroom.demo import run_demo

    run_demo(workdir, quick=quick)
