"""``harvest run --mode batch`` end to end against the fake Batch API over loopback:
kills at each step, expiry, cancel, spend caps, identical rows to the sync path, batch-file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from stillroom.harvest import HarvestConfig, cancel_batches, harvest_status, run_harvest
from stillroom.harvest._completions import read_completions
from stillroom.harvest.testing import FakeBatchProvider
from tests.harvest.batch_runs import assert_every_prompt_once, no_wait, rows, sigkill_cli_at

PROMPTS = [{"prompt": f"question number {i}", "id": f"q{i}"} for i in range(30)]


def batch_cfg(fake, tmp_path: Path, prompts=PROMPTS, **kw) -> HarvestConfig:
    base = dict(prompts=prompts, db=tmp_path / "b.duckdb", base_url=fake.base_url, model="m",
                policy="self-hosted", mode="batch", poll_interval=0.01, batch_max_requests=10,
                max_tokens=32, top_logprobs=2)  # fmt: skip
    base.update(kw)
    return HarvestConfig(**base)


@pytest.mark.parametrize("point", ["upload", "create", "retrieve", "content"])
def test_sigkill_at_each_point_then_rerun_creates_one_batch_per_file(tmp_path, point):
    """SIGKILL while uploading, right after the create (the id never stored), while
    polling and while downloading; the same command again finishes the work."""
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    with FakeBatchProvider(polls_per_state=2) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=prompts_file)
        sigkill_cli_at(fake, point, [
            "--prompts", str(prompts_file), "--db", str(cfg.db), "--base-url", fake.base_url,
            "--model", "m", "--policy", "self-hosted", "--mode", "batch", "--poll-interval",
            "0.01", "--batch-max-requests", "10", "--max-tokens", "32", "--top-logprobs", "2",
        ])  # fmt: skip
        created_before = len(fake.creates)
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        creates = fake.creates
    assert created_before == (1 if point in ("create", "retrieve", "content") else 0) + (
        2 if point in ("retrieve", "content") else 0
    )
    # exactly one batch per file of work (30 prompts, 10 a file), however it was killed
    assert len(creates) == 3
    shas = [c["body"]["metadata"]["stillroom_sha256"] for c in creates]
    assert len(set(shas)) == 3
    assert result.stopped_reason is None
    assert_every_prompt_once(cfg.db, 30)
    states = rows(cfg.db, "SELECT state, batch_status FROM batch_files")
    assert sorted(states) == [("ingested", "completed")] * 3


def test_expired_batch_is_resubmitted_for_only_its_missing_rows(tmp_path):
    with FakeBatchProvider(expire={0: 4}) as fake:
        cfg = batch_cfg(fake, tmp_path)
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        first = {line["custom_id"] for line in fake.input_lines(0)}
        answered_first = [line["custom_id"] for line in fake.input_lines(0)][:4]
        resubmitted = [line["custom_id"] for line in fake.input_lines(3)]
        assert len(fake.creates) == 4
    assert sorted(resubmitted) == sorted(first - set(answered_first))  # the 6 it left, only
    assert result.completed == 30 and result.stopped_reason is None
    assert_every_prompt_once(cfg.db, 30)
    attempts = dict(rows(cfg.db, "SELECT idempotency_key, attempts FROM answers"))
    assert {attempts[k] for k in resubmitted} == {2} and attempts[answered_first[0]] == 1


def test_batch_and_sync_modes_store_identical_rows(tmp_path):
    # Left out: request_id (the batch's), latency_ms (NULL in batch), created_at, run_id.
    excluded = dict.fromkeys(("request_id", "latency_ms", "created_at", "run_id"))
    prompts = [*PROMPTS[:8], {"prompt": "a very long question " * 20, "id": "long"}]
    with FakeBatchProvider(reasoning="reasoning_content") as fake:
        sync = batch_cfg(fake, tmp_path, prompts=prompts, mode="sync", db=tmp_path / "s.duckdb")
        run_harvest(sync, progress=False)
        batch = batch_cfg(fake, tmp_path, prompts=prompts, db=tmp_path / "b.duckdb")
        run_harvest(batch, progress=False, sleep=no_wait)
    order = ("idempotency_key",)
    sync_rows, batch_rows = (
        read_completions(sync.db, order_by=order),
        read_completions(batch.db, order_by=order),
    )
    assert len(sync_rows) == 9
    assert [dataclasses.replace(r, **excluded) for r in sync_rows] == [
        dataclasses.replace(r, **excluded) for r in batch_rows
    ]
    assert all(r.reasoning.startswith("The user wrote") for r in batch_rows)
    assert all(json.loads(r.top_logprobs)[0]["top_logprobs"] for r in batch_rows)
    assert {r.finish_reason for r in batch_rows} == {"stop", "length"}
    assert all(r.latency_ms is None for r in batch_rows)
    assert all(r.latency_ms is not None for r in sync_rows)


def test_partial_errors_404_once_and_cancel(tmp_path):
    prompts = [*PROMPTS[:12], {"prompt": "refused [[status:400]]", "id": "bad"}]
    with FakeBatchProvider(polls_per_state=1000, flaky_files=True) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=prompts, batch_max_requests=20)

        async def cancel_soon() -> list:
            while not fake.creates:
                await asyncio.sleep(0.01)
            return await cancel_batches(cfg.db, fake.base_url)

        async def both():
            from stillroom.harvest import arun_harvest

            run = asyncio.create_task(arun_harvest(cfg, progress=False, sleep=no_wait))
            cancelled = await cancel_soon()
            return await run, cancelled

        first, cancelled = asyncio.run(both())
        assert [b["status"] for b in cancelled] == ["cancelling"]
        assert (first.stopped_reason, first.completed) == ("cancelled", 0)
        fake.batches.s.polls_per_state = 1
        second = run_harvest(cfg, progress=False, sleep=no_wait)
        assert len(fake.creates) == 2
    assert (second.completed, second.failed, second.stopped_reason) == (12, 1, None)
    (reason,) = rows(cfg.db, "SELECT reason FROM failures")[0]
    assert reason.startswith("batch: HTTP 400") and "injected 400" in reason


def priced_policy(tmp_path: Path, monkeypatch, limits: str = "") -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "priced-batch.toml").write_text(
        'id = "priced-batch"\nname = "Priced"\nverdict = "allowed"\n'
        '[terms]\ntitle = "Test terms"\nread = 2026-12-01\n'
        '[[clauses]]\nsection = "1"\ntext = "Anything goes."\n'
        '[[covers]]\nhosts = ["127.0.0.1"]\nmodels = ["priced-*"]\n'
        '[[prices]]\nmodels = ["priced-*"]\nusd_per_mtok_in = 20\nusd_per_mtok_out = 40\n'
        "usd_per_mtok_batch_in = 10\nusd_per_mtok_batch_out = 20\n"
        f'[limits]\nheaders_profile = "groq"\n{limits}\n'
    )
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(folder))


def test_spend_cap_reserves_a_whole_batch_before_submission(tmp_path, monkeypatch):
    priced_policy(tmp_path, monkeypatch)
    with FakeBatchProvider() as fake:
        cfg = batch_cfg(fake, tmp_path, policy="priced-batch", model="priced-1")
        from stillroom.harvest._prompts import load_prompts
        from stillroom.harvest._work import plan_work, sampling_params

        params = sampling_params(model="priced-1", max_tokens=32, temperature=0.7, top_p=None,
                                 top_logprobs=2)  # fmt: skip
        plan = plan_work(load_prompts(PROMPTS), params, 1)
        worst_first = sum(i.est_prompt_tokens * 10 + 32 * 20 for i in plan[:10]) / 1e6
        cfg.max_spend_usd = worst_first * 1.5  # room for one file's worst case, not two
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        assert len(fake.creates) == 1
    assert (result.completed, result.stopped_reason) == (10, "spend_cap")
    assert result.est_spend_usd == pytest.approx(worst_first)
    assert result.spend_usd == pytest.approx(
        (result.prompt_tokens * 10 + result.completion_tokens * 20) / 1e6
    )
    assert result.spend_usd <= cfg.max_spend_usd
    status = harvest_status(cfg.db)
    assert status.spend_usd == pytest.approx(result.spend_usd)
    assert status.est_spend_usd == pytest.approx(worst_first)
    assert status.batches == {"ingested completed": 1, "prepared": 2}


def test_batch_file_mode_writes_jsonl_then_ingests_an_offline_output(tmp_path):
    """``--mode batch-file`` for ``vllm run-batch``; the fake server stands in for the
    offline runner (same output format)."""
    cfg = HarvestConfig(prompts=PROMPTS[:5], db=tmp_path / "f.duckdb", base_url="http://127.0.0.1:9/v1",
                        model="m", policy="self-hosted", mode="batch-file")  # fmt: skip
    first = run_harvest(cfg, progress=False)
    assert first.stopped_reason == "awaiting_output" and "vllm run-batch" in first.message
    (path,) = [Path(p) for (p,) in rows(cfg.db, "SELECT path FROM batch_files")]
    assert len(path.read_text().splitlines()) == 5
    again = run_harvest(cfg, progress=False)  # nothing new: the same file still waits
    assert rows(cfg.db, "SELECT count(*) FROM batch_files") == [(1,)] and again.completed == 0
    with FakeBatchProvider() as fake:
        out = offline_run(fake, path.read_bytes(), keep=3)
    (tmp_path / "out.jsonl").write_bytes(out)
    cfg.batch_output = (tmp_path / "out.jsonl",)
    third = run_harvest(cfg, progress=False)
    assert third.completed == 3 and third.stopped_reason == "awaiting_output"
    assert rows(cfg.db, "SELECT state, requests FROM batch_files ORDER BY rowid") == [
        ("ingested", 5),
        ("written", 2),
    ]  # fmt: skip  (the 2 without a result went to a new file)


def offline_run(fake, content: bytes, keep: int) -> bytes:
    """Run ``content`` through the fake's batch answers; keep the first ``keep`` results."""
    import random

    import openai

    from stillroom.harvest._batch_client import BatchClient

    async def go() -> bytes:
        client = openai.AsyncOpenAI(api_key="k", base_url=fake.base_url, max_retries=0)
        bc = BatchClient(client, sleep=no_wait, rng=random.Random(0))
        batch = await bc.create(await bc.upload("in.jsonl", content), {})
        while batch["status"] != "completed":
            batch = await bc.retrieve(batch["id"])
        data = await bc.download(batch["output_file_id"])
        await client.close()
        return b"".join(data.splitlines(keepends=True)[:keep])

    return asyncio.run(go())


def test_a_batch_refused_as_a_whole_stops_the_run_without_resubmitting(tmp_path):
    with FakeBatchProvider(max_requests=5) as fake:  # the provider's limit is below ours
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:10])
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        assert len(fake.creates) == 1
    assert result.stopped_reason == "batch_failed" and "too_many_requests" in result.message
    assert result.completed == 0 and harvest_status(cfg.db).pending == 10


def test_submit_and_stop_then_collect_and_a_create_answered_500_is_adopted(tmp_path):
    """``--max-poll 0`` submits and stops; the same command later only polls and collects.
    The first create made its batch but answered 500: it is found by metadata, not redone."""
    with FakeBatchProvider(polls_per_state=3, create_500_once=True) as fake:
        cfg = batch_cfg(fake, tmp_path, max_poll_s=0)
        first = run_harvest(cfg, progress=False, sleep=no_wait)
        assert (first.stopped_reason, first.completed, len(fake.creates)) == ("poll_deadline", 0, 3)
        assert "list" in fake.batches.calls  # the 500'd create was looked up
        for _ in range(30):  # each rerun polls once (3 polls a state), nothing is resubmitted
            again = run_harvest(cfg, progress=False, sleep=no_wait)
            if again.stopped_reason is None:
                break
        assert again.stopped_reason is None and len(fake.creates) == 3
    assert_every_prompt_once(cfg.db, 30)


def test_status_adds_sync_and_batch_spend_at_each_runs_prices(tmp_path, monkeypatch):
    priced_policy(tmp_path, monkeypatch)
    with FakeBatchProvider() as fake:
        batch = batch_cfg(fake, tmp_path, prompts=PROMPTS[:10], policy="priced-batch",
                          model="priced-1")  # fmt: skip
        b = run_harvest(batch, progress=False, sleep=no_wait)
        sync = batch_cfg(fake, tmp_path, prompts=PROMPTS[:20], policy="priced-batch",
                         model="priced-1", mode="sync")  # fmt: skip
        s = run_harvest(sync, progress=False)
    assert (b.completed, s.completed) == (10, 10)
    batch_usd = (b.prompt_tokens * 10 + b.completion_tokens * 20) / 1e6
    sync_usd = (s.prompt_tokens * 20 + s.completion_tokens * 40) / 1e6  # standard prices
    assert (b.spend_usd, s.spend_usd) == (pytest.approx(batch_usd), pytest.approx(sync_usd))
    assert harvest_status(batch.db).spend_usd == pytest.approx(batch_usd + sync_usd)
    spend = rows(batch.db, "SELECT mode, est_spend_usd, spend_usd FROM runs ORDER BY started_at")
    assert [(m, e is None) for m, e, _ in spend] == [("batch", False), ("sync", True)]
    assert s.learned_limits["profile"] == "groq"  # the policy's [limits] headers_profile


def test_cli_cancel_then_run_stores_nothing_twice_and_resubmits_the_rest(tmp_path):
    from typer.testing import CliRunner

    from stillroom.harvest.cli import app

    with FakeBatchProvider(polls_per_state=50) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:6], max_poll_s=0)
        assert run_harvest(cfg, progress=False, sleep=no_wait).stopped_reason == "poll_deadline"
        out = CliRunner().invoke(app, ["cancel", "--db", str(cfg.db), "--base-url", fake.base_url])
        assert out.exit_code == 0 and "batch_000001 cancelling" in out.output
        second = run_harvest(cfg, progress=False, sleep=no_wait)
        assert (second.stopped_reason, second.completed) == ("cancelled", 0)
        fake.batches.s.polls_per_state = 1
        cfg.max_poll_s = None
        third = run_harvest(cfg, progress=False, sleep=no_wait)
        assert (third.stopped_reason, third.completed, len(fake.creates)) == (None, 6, 2)
    assert_every_prompt_once(cfg.db, 6)


def test_responses_batches_send_v1_responses_lines_and_store_the_sync_rows(tmp_path):
    """``--mode batch --api responses``: the lines' url is ``/v1/responses`` and their body
    the responses dialect's (messages as ``input``); rows as a synchronous run stores them."""
    excluded = dict.fromkeys(("request_id", "latency_ms", "created_at", "run_id"))
    opts = dict(model="o4-mini", api="responses", top_logprobs=None, max_tokens=12,
                policy="openai", accept=("openai",), purpose="tests of batch modes")  # fmt: skip
    with FakeBatchProvider(api="responses") as fake:
        sync = batch_cfg(fake, tmp_path, prompts=PROMPTS[:6], mode="sync",
                         db=tmp_path / "s.duckdb", **opts)  # fmt: skip
        run_harvest(sync, progress=False)
        batch = batch_cfg(fake, tmp_path, prompts=PROMPTS[:6], **opts)
        result = run_harvest(batch, progress=False, sleep=no_wait)
        (line, *_) = fake.input_lines(0)
        assert fake.creates[0]["body"]["endpoint"] == "/v1/responses"
    assert result.completed == 6 and result.stopped_reason is None
    assert line["url"] == "/v1/responses" and "messages" not in line["body"]
    assert line["body"]["input"][-1]["content"].startswith("question number")
    assert line["body"]["reasoning"] == {"summary": "auto"}
    order = ("idempotency_key",)
    sync_rows, batch_rows = (read_completions(db, order_by=order) for db in (sync.db, batch.db))
    assert len(sync_rows) == 6
    assert [dataclasses.replace(r, **excluded) for r in sync_rows] == [
        dataclasses.replace(r, **excluded) for r in batch_rows
    ]
    assert {r.reasoning_kind for r in batch_rows} == {"summary"}
    assert {r.finish for r in batch_rows} == {"length"}
