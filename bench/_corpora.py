"""The prompt corpora the benches draw from: ``--corpora DIR``, by default ``../shared/corpora``
beside the repository (gzip JSONL, one ``{"text": ...}`` a line; see its README). A bench
that uses them prints which prompts it used, and falls back to built-in prompts, saying so,
when the file is not there.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def add_corpora_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpora",
        type=Path,
        default=DEFAULT,
        help=f"directory of prompt corpora (default: {DEFAULT})",
    )


def corpus_texts(corpora: Path | None, name: str) -> tuple[list[str], str]:
    """``(texts, where)``: every prompt of ``corpora/name``, or ``[]`` when it is absent;
    ``where`` says which prompts these are, for the bench to print."""
    if corpora is None:
        return [], "built-in prompts (no --corpora)"
    path = corpora / name
    if not path.is_file():
        return [], f"built-in prompts ({path} not found)"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh if line.strip()]
    return texts, f"{path} ({len(texts):,} prompts in the file)"
