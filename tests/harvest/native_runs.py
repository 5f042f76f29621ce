"""Whole harvest runs against the native-API fakes (``FakeAnthropic``, ``FakeGemini``):
a config, and a run killed with SIGKILL in a child process then resumed here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from stillroom.harvest import HarvestConfig, read_completions, run_harvest
from tests.harvest.conftest import write_jsonl


def native_cfg(tmp_path, fake, prompts, *, api, purpose, **overrides) -> HarvestConfig:
    """A run of ``prompts`` against ``fake`` with ``--api api``, its policy accepted."""
    cfg = {
        "prompts": write_jsonl(tmp_path / "p.jsonl", [{"prompt": p} for p in prompts]),
        "db": tmp_path / "h.duckdb", "base_url": fake.base_url, "api": api,
        "accept": [api], "purpose": purpose, "concurrency": 2, **overrides,
    }  # fmt: skip
    return HarvestConfig(**cfg)


CHILD = """
import sys
from stillroom.harvest import HarvestConfig, run_harvest
run_harvest(HarvestConfig(prompts=sys.argv[1], db=sys.argv[2], base_url=sys.argv[3],
    model=sys.argv[4], api=sys.argv[5], accept=[sys.argv[5]], purpose="a classifier",
    max_tokens=2048, thinking_budget=1024, concurrency=int(sys.argv[6])), progress=False)
"""


def sigkill_then_resume(tmp_path, fake, model: str, api: str, n: int = 16, concurrency: int = 3):
    """Kill a run in a child process mid-way, run it again here; returns (stored rows,
    requests per prompt, requests sent before the kill, rows stored before it)."""
    cfg = native_cfg(tmp_path, fake, [f"kill test {i}" for i in range(n)], model=model, api=api,
                     purpose="a classifier", max_tokens=2048, thinking_budget=1024,
                     concurrency=concurrency)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(cfg.prompts), str(cfg.db),
                             fake.base_url, model, api, str(concurrency)], env={**os.environ})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while fake.stats()["total"] < n // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    sent_before = fake.stats()["total"]
    stored_before = len(read_completions(cfg.db))
    result = run_harvest(cfg, progress=False)
    assert result.already_done == stored_before and result.completed == n - stored_before
    return read_completions(cfg.db), fake.stats()["per_prompt"], sent_before, stored_before
