"""Helpers of the batch-mode tests (OpenAI's Batch API and Anthropic's Message Batches):
reading the database, the one-answer-per-prompt check, and a CLI run killed at a hang."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from stillroom.harvest import harvest_status

ROOT = Path(__file__).resolve().parents[2]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def assert_every_prompt_once(db: Path, n: int) -> None:
    total, distinct, prompts = rows(
        db,
        "SELECT count(*), count(DISTINCT idempotency_key), count(DISTINCT prompt_id) FROM answers",
    )[0]
    assert total == distinct == prompts == n
    assert rows(db, "SELECT count(*) FROM failures") == [(0,)]
    assert harvest_status(db).pending == 0


def start_cli_run(args: list[str]) -> subprocess.Popen:
    """``stillroom harvest run ARGS --no-progress`` in a child process (output piped)."""
    cmd = [sys.executable, "-m", "stillroom.harvest.cli", "run", *args, "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def sigkill_cli_at(fake, point: str, args: list[str]) -> None:
    """Run ``stillroom harvest run ARGS`` in a child process until ``fake`` hangs at
    ``point``, SIGKILL it there, and release the hang."""
    hung = fake.hang_at(point)
    proc = start_cli_run(args)
    try:
        assert hung.wait(60), f"the run never reached {point}: {proc.stdout.read()!r}"
    finally:
        proc.kill()  # SIGKILL
        proc.wait(10)
    fake.hang_at(None)
