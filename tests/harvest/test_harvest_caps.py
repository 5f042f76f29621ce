"""Every cap binds in every mode: the daily cap (``--rpd`` or the policy's) and the spend cap
count what sync and batch runs sent and spent, from the DuckDB file, on an injected clock.

Against the fake Batch API over loopback (``FakeBatchProvider``), which serves synchronous
chat completions too; ``now=`` sets the UTC day, and nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stillroom.harvest import harvest_status, run_harvest
from stillroom.harvest.testing import FakeBatchProvider
from tests.harvest.test_harvest_batch_run import batch_cfg, no_wait, priced_policy, rows

DAY1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PROMPTS = [{"prompt": f"capped question {i}", "id": f"c{i}"} for i in range(300)]


def run_on(cfg, day: datetime):
    return run_harvest(cfg, progress=False, sleep=no_wait, now=lambda: day)


def submitted_keys(fake, since: int = 0) -> list[str]:
    return [
        line["custom_id"] for i in range(since, len(fake.creates)) for line in fake.input_lines(i)
    ]


def daily(db: Path) -> dict[str, int]:
    return {str(day): n for day, n in rows(db, "SELECT day, requests FROM daily_requests")}


def test_batch_submits_at_most_the_daily_cap_and_the_next_day_sends_the_next(tmp_path):
    with FakeBatchProvider() as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS, rpd=100, batch_max_requests=40)
        first = run_on(cfg, DAY1)
        day1_keys = submitted_keys(fake)
        assert len(day1_keys) == 100 and len(fake.creates) == 3  # files of 40, 40 and 20
        assert (first.completed, first.pending, first.stopped_reason) == (100, 200, "daily_cap")
        assert "daily cap of 100 requests" in first.message and "2026-03-01" in first.message
        assert "200 requests wait" in first.message

        again = run_on(cfg, DAY1 + timedelta(hours=14))  # 23:00, the same UTC day
        assert len(fake.creates) == 3 and again.completed == 0
        assert again.stopped_reason == "daily_cap" and "100 sent today" in again.message

        second = run_on(cfg, DAY1 + timedelta(days=1))
        day2_keys = submitted_keys(fake, since=3)
        assert len(day2_keys) == 100 and not set(day2_keys) & set(day1_keys)
        assert (second.completed, second.pending, second.stopped_reason) == (100, 100, "daily_cap")

        third = run_on(cfg, DAY1 + timedelta(days=2))  # the rest fits: a clean finish
        assert (third.completed, third.pending, third.stopped_reason) == (100, 0, None)
        assert len(submitted_keys(fake)) == 300
    assert daily(cfg.db) == {"2026-03-01": 100, "2026-03-02": 100, "2026-03-03": 100}
    assert harvest_status(cfg.db).done == 300


def test_sync_and_batch_runs_on_one_day_share_a_policys_daily_cap(tmp_path, monkeypatch):
    priced_policy(tmp_path, monkeypatch, limits="rpd = 100")
    with FakeBatchProvider() as fake:
        kw = dict(prompts=PROMPTS, policy="priced-batch", model="priced-1", batch_max_requests=50)
        sync = batch_cfg(fake, tmp_path, mode="sync", **{**kw, "prompts": PROMPTS[:30]})
        assert run_on(sync, DAY1).requests == 30

        batch = batch_cfg(fake, tmp_path, **kw)
        b = run_on(batch, DAY1 + timedelta(hours=1))
        assert len(submitted_keys(fake)) == 70  # 100 less the 30 the sync run sent
        assert (b.completed, b.stopped_reason) == (70, "daily_cap")

        sync.prompts = PROMPTS
        s = run_on(sync, DAY1 + timedelta(hours=2))
        assert (s.requests, s.stopped_reason) == (0, "daily_cap")
        assert "daily cap of 100 requests" in s.message

        s = run_on(sync, DAY1 + timedelta(days=1))  # the next day, sync first: 100 more
        assert (s.requests, s.completed, s.stopped_reason) == (100, 100, "daily_cap")
        b = run_on(batch, DAY1 + timedelta(days=1, hours=1))
        assert b.completed == 0 and len(submitted_keys(fake)) == 70
    assert daily(batch.db) == {"2026-03-01": 100, "2026-03-02": 100}
    assert harvest_status(batch.db).done == 200


def worst_case(prompts: list[dict]) -> float:
    """A batch file's worst case at the priced policy's batch prices ($10/$20 a Mtok)."""
    from stillroom.harvest._prompts import load_prompts
    from stillroom.harvest._work import plan_work, sampling_params

    params = sampling_params(model="priced-1", max_tokens=32, temperature=0.7, top_p=None,
                             top_logprobs=2)  # fmt: skip
    plan = plan_work(load_prompts(prompts), params, 1)
    return sum(i.est_prompt_tokens * 10 + 32 * 20 for i in plan) / 1e6


def test_a_file_prepared_on_an_earlier_day_goes_only_as_far_as_todays_cap(tmp_path, monkeypatch):
    """A spend cap leaves a file ``prepared``; the next day's run sends it first, but only
    within that day's cap: a file too big for it is abandoned and its keys re-planned."""
    priced_policy(tmp_path, monkeypatch)
    with FakeBatchProvider() as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:60], batch_max_requests=30,
                        policy="priced-batch", model="priced-1",
                        max_spend_usd=worst_case(PROMPTS[:30]) * 1.5)  # fmt: skip
        first = run_on(cfg, DAY1)
        assert (first.completed, first.stopped_reason, len(fake.creates)) == (30, "spend_cap", 1)
        cfg.max_spend_usd, cfg.rpd = None, 20
        second = run_on(cfg, DAY1 + timedelta(days=1))
        assert (second.completed, second.pending, second.stopped_reason) == (20, 10, "daily_cap")
        assert len(submitted_keys(fake, since=1)) == 20
        third = run_on(cfg, DAY1 + timedelta(days=2))
        assert (third.completed, third.pending, third.stopped_reason) == (10, 0, None)
    states = rows(cfg.db, "SELECT state, requests FROM batch_files ORDER BY rowid")
    assert states == [("ingested", 30), ("abandoned", 30), ("ingested", 20), ("ingested", 10)]
    assert daily(cfg.db) == {"2026-03-01": 30, "2026-03-02": 20, "2026-03-03": 10}


def test_spend_cap_counts_sync_answers_at_sync_prices_in_a_batch_run(tmp_path, monkeypatch):
    """Spend so far is every answer at its own run's prices: a batch run after a sync run
    must not value the sync answers at batch prices (half), or it would overspend."""
    priced_policy(tmp_path, monkeypatch)
    with FakeBatchProvider() as fake:
        kw = dict(policy="priced-batch", model="priced-1")
        sync = batch_cfg(fake, tmp_path, prompts=PROMPTS[:20], mode="sync", **kw)
        s = run_harvest(sync, progress=False)
        sync_usd = (s.prompt_tokens * 20 + s.completion_tokens * 40) / 1e6
        worst_file = worst_case(PROMPTS[20:30])
        # valued at batch prices, the sync answers would leave room for a second file
        assert sync_usd > worst_file * 1.1
        batch = batch_cfg(fake, tmp_path, prompts=PROMPTS[:40], max_spend_usd=sync_usd + worst_file * 1.5, **kw)  # fmt: skip
        b = run_harvest(batch, progress=False, sleep=no_wait)
        assert len(fake.creates) == 1
    assert (b.completed, b.stopped_reason) == (10, "spend_cap")
    assert harvest_status(batch.db).spend_usd == pytest.approx(sync_usd + b.spend_usd)
    assert harvest_status(batch.db).spend_usd <= batch.max_spend_usd
