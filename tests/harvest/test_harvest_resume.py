"""Resumability: SIGKILL mid-run, a second process on the same file, daily and spend caps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import stillroom.harvest._budget
from stillroom.harvest import DatabaseBusyError, HarvestConfig, harvest_status, run_harvest
from stillroom.harvest._store import Store
from stillroom.harvest.testing import FakeProvider
from stillroom.policies import Limits
from tests.harvest.conftest import FakeTime, error, ok, scripted_client, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-DO-NOT-STORE-8f3e1c"


def harvest_cli(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "TEACHER_KEY": SECRET, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "stillroom.harvest.cli", *args],  # the root CLI imports every package
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_sigkill_then_rerun_requests_each_prompt_once_plus_in_flight(tmp_path):
    n, concurrency = 150, 4
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"kill test {i}"} for i in range(n)])
    db = tmp_path / "h.duckdb"
    with FakeProvider(latency=0.03, api_key=SECRET) as fake:
        args = ["run", "--prompts", str(prompts), "--db", str(db), "--base-url", fake.base_url,
                "--model", "m", "--policy", "self-hosted", "--api-key-env", "TEACHER_KEY",
                "--concurrency", str(concurrency), "--no-progress"]  # fmt: skip
        proc = harvest_cli(*args)
        try:
            wait_for(lambda: fake.stats()["total"] >= 40)
            # while it runs, a second process (this one) gets a clear error
            with pytest.raises(DatabaseBusyError, match=f"in use by process {proc.pid}"):
                run_harvest(HarvestConfig(prompts=prompts, db=db, base_url=fake.base_url, model="m",
                                          policy="self-hosted"), progress=False)  # fmt: skip
            with pytest.raises(DatabaseBusyError):
                harvest_status(db)
            wait_for(lambda: fake.stats()["total"] >= 60)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        sent_before = fake.stats()["total"]
        con = duckdb.connect(str(db))
        stored_before = con.execute("SELECT count(*) FROM completions").fetchone()[0]
        con.close()
        assert 0 < stored_before < n
        os.environ["TEACHER_KEY"] = SECRET
        try:
            cfg = HarvestConfig(prompts=prompts, db=db, base_url=fake.base_url, model="m",
                                policy="self-hosted", api_key_env="TEACHER_KEY", concurrency=concurrency)  # fmt: skip
            result = run_harvest(cfg, progress=False)
        finally:
            del os.environ["TEACHER_KEY"]
        per_prompt = fake.stats()["per_prompt"]
    # sent but never stored: at most what one run keeps in flight (concurrency)
    lost = sent_before - stored_before
    assert 0 <= lost <= concurrency
    assert result.already_done == stored_before and result.completed == n - stored_before
    repeated = [p for p, count in per_prompt.items() if count > 1]
    assert len(repeated) == lost and all(per_prompt[p] == 2 for p in repeated)
    con = duckdb.connect(str(db), read_only=True)
    counts = con.execute("SELECT prompt_id, count(*) FROM completions GROUP BY 1").fetchall()
    assert len(counts) == n and all(c == 1 for _, c in counts)
    interrupted = con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()
    assert interrupted == [("running",), ("finished",)]  # the killed run never finished
    con.close()
    assert SECRET.encode() not in db.read_bytes()


def test_sigint_exits_130_and_the_rerun_stores_every_key_once(tmp_path):
    n, concurrency = 120, 4
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"ctrl-c {i}"} for i in range(n)])
    db = tmp_path / "h.duckdb"
    with FakeProvider(latency=0.03, api_key=SECRET) as fake:
        args = ["run", "--prompts", str(prompts), "--db", str(db), "--base-url", fake.base_url,
                "--model", "m", "--policy", "self-hosted", "--api-key-env", "TEACHER_KEY",
                "--concurrency", str(concurrency), "--no-progress"]  # fmt: skip
        proc = harvest_cli(*args)
        try:
            wait_for(lambda: fake.stats()["total"] >= 30)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130
        assert err.strip().splitlines() == ["Interrupted; run the same command again to resume."]
        con = duckdb.connect(str(db), read_only=True)  # consistent: opens, run marked
        stored_before = con.execute("SELECT count(*) FROM answers").fetchone()[0]
        assert con.execute("SELECT status, stopped_reason FROM runs").fetchall() == [
            ("stopped", "interrupted")
        ]
        con.close()
        assert 0 < stored_before < n
        rerun = harvest_cli(*args)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert f"({stored_before} already done)" in out
    con = duckdb.connect(str(db), read_only=True)
    keys = con.execute("SELECT idempotency_key, count(*) FROM answers GROUP BY 1").fetchall()
    planned = con.execute("SELECT count(*) FROM tasks").fetchone()[0]
    con.close()
    assert len(keys) == planned == n and all(count == 1 for _, count in keys)


def test_daily_cap_stops_cleanly_and_resumes_next_utc_day(tmp_path):
    t = FakeTime()
    day1 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    cfg = HarvestConfig(prompts=[{"prompt": f"p{i}"} for i in range(5)], db=tmp_path / "h.duckdb",
                        base_url="http://t/v1", model="m", policy="self-hosted", rpd=3, concurrency=4)  # fmt: skip
    client = scripted_client([ok()])

    def go(now):
        return run_harvest(
            cfg, http_client=client, progress=False, clock=t.clock, sleep=t.sleep, now=lambda: now
        )

    first = go(day1)
    assert (first.completed, first.pending, first.stopped_reason) == (3, 2, "daily_cap")
    assert "00:00 UTC" in first.message
    same_day = go(day1 + timedelta(minutes=30))
    assert same_day.requests == 0 and same_day.stopped_reason == "daily_cap"
    assert len(client.seen) == 3
    next_day = go(day1 + timedelta(hours=2))
    assert (next_day.completed, next_day.pending, next_day.stopped_reason) == (2, 0, None)
    status = harvest_status(cfg.db)
    assert (status.done, status.pending, status.requests) == (5, 0, 5)


class _PricedPolicy:
    """A resolved policy with a spend cap and prices (the shape harvest reads)."""

    id, file_hash = "priced", "0" * 64
    limits = Limits(max_spend_usd=0.0009, usd_per_mtok_in=100.0, usd_per_mtok_out=100.0)

    def record(self) -> dict:
        return {"policy_id": self.id}


def test_spend_cap_stops_before_overspending(tmp_path, monkeypatch):
    monkeypatch.setattr(
        stillroom.harvest._budget.policies, "resolve_for_harvest", lambda **kw: _PricedPolicy()
    )
    # at $100/Mtok an answer (5 prompt + 2 completion tokens) costs $0.0007, and a request
    # reserves its worst case first: ~7 estimated prompt + 3 max tokens = ~$0.001
    cfg = HarvestConfig(prompts=[{"prompt": f"p{i}"} for i in range(4)], db=tmp_path / "h.duckdb",
                        base_url="http://t/v1", model="m", max_tokens=3, concurrency=1)  # fmt: skip
    client = scripted_client([ok()])
    result = run_harvest(cfg, http_client=client, progress=False)
    assert result.stopped_reason == "spend_cap" and result.completed == 0 and len(client.seen) == 0
    cfg.max_spend_usd = 0.003  # the tighter of user and policy applies: the policy's 0.0009
    assert run_harvest(cfg, http_client=client, progress=False).completed == 0
    monkeypatch.setattr(_PricedPolicy, "limits", Limits(max_spend_usd=0.003, usd_per_mtok_in=100.0,
                                                        usd_per_mtok_out=100.0))  # fmt: skip
    result = run_harvest(cfg, http_client=client, progress=False)
    assert result.completed == 3 and result.stopped_reason == "spend_cap" and len(client.seen) == 3
    spent = (result.prompt_tokens + result.completion_tokens) * 100.0 / 1e6
    assert spent <= 0.003


def test_counters_are_written_every_second_and_add_up(tmp_path, monkeypatch):
    """Counters go out with a batch once a second (and at the end); the day's count adds each
    write's new requests once, retries and 429s included."""
    t = FakeTime()
    script = []
    for i in range(12):
        if i % 4 == 1:  # every fourth prompt is rate limited once first
            script.append(error(429, {"retry-after-ms": "100"}))
        script.append(ok(f"answer {i}"))

    def slow(step):
        def answer(_request):
            t.now += 0.35  # each request takes 0.35 s of the injected clock
            return step

        return answer

    client = scripted_client([slow(step) for step in script])
    written = []
    original = Store.write_batch

    def spy(self, answers, failures, counters):
        written.append(counters)
        return original(self, answers, failures, counters)

    monkeypatch.setattr(Store, "write_batch", spy)
    cfg = HarvestConfig(prompts=[{"prompt": f"p{i}"} for i in range(12)], db=tmp_path / "h.duckdb",
                        base_url="http://t/v1", model="m", policy="self-hosted", concurrency=1)  # fmt: skip
    result = run_harvest(cfg, http_client=client, progress=False, clock=t.clock, sleep=t.sleep)
    assert (result.completed, result.rate_limited, result.requests) == (12, 3, 15)
    with_counters = [c for c in written if c is not None]
    assert 3 <= len(with_counters) < len(written)  # some batches, not every one
    assert sum(c.uncounted_requests for c in with_counters) == 15 == len(client.seen)
    con = duckdb.connect(str(cfg.db), read_only=True)
    assert con.execute("SELECT requests FROM daily_requests").fetchall() == [(15,)]
    assert con.execute("SELECT requests, completed, failed, rate_limited FROM runs").fetchall() == [
        (15, 12, 0, 3)
    ]
    con.close()


def test_sigkill_then_rerun_on_the_responses_api_stores_each_key_once(tmp_path):
    """The same guarantee on a second dialect: at most ``concurrency`` prompts asked twice."""
    n, concurrency = 40, 4
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": f"kill responses {i}"} for i in range(n)]
    )
    db = tmp_path / "h.duckdb"
    with FakeProvider(api="responses", latency=0.03, api_key=SECRET) as fake:
        args = ["run", "--prompts", str(prompts), "--db", str(db), "--base-url", fake.base_url,
                "--model", "o3", "--api", "responses", "--policy", "openai", "--accept", "openai",
                "--purpose", "resume test", "--api-key-env", "TEACHER_KEY",
                "--concurrency", str(concurrency), "--no-progress"]  # fmt: skip
        proc = harvest_cli(*args)
        try:
            wait_for(lambda: fake.stats()["total"] >= 12)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
        sent_before = fake.stats()["total"]
        con = duckdb.connect(str(db))
        stored_before = con.execute("SELECT count(*) FROM completions").fetchone()[0]
        con.close()
        assert 0 < stored_before < n
        os.environ["TEACHER_KEY"] = SECRET
        try:
            cfg = HarvestConfig(prompts=prompts, db=db, base_url=fake.base_url, model="o3",
                                api="responses", policy="openai", accept=["openai"],
                                purpose="resume test", api_key_env="TEACHER_KEY",
                                concurrency=concurrency)  # fmt: skip
            result = run_harvest(cfg, progress=False)
        finally:
            del os.environ["TEACHER_KEY"]
        per_prompt = fake.stats()["per_prompt"]
    lost = sent_before - stored_before
    assert 0 <= lost <= concurrency
    assert result.already_done == stored_before and result.completed == n - stored_before
    assert sorted(c for c in per_prompt.values() if c > 1) == [2] * lost
    con = duckdb.connect(str(db), read_only=True)
    counts = con.execute("SELECT prompt_id, count(*) FROM completions GROUP BY 1").fetchall()
    kinds = con.execute("SELECT DISTINCT reasoning_kind FROM completions").fetchall()
    con.close()
    assert len(counts) == n and all(c == 1 for _, c in counts) and kinds == [("summary",)]
