"""``harvest run --mode batch --api anthropic`` (Message Batches) against the loopback fake:
kills at each step, adoption without metadata, expiry, errored rows, cancel, identical rows."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from stillroom.harvest import HarvestConfig, harvest_status, run_harvest
from stillroom.harvest._batch_adopt import IN_FLIGHT_S
from stillroom.harvest._batch_ledger import ledger_ids
from stillroom.harvest._completions import read_completions
from stillroom.harvest.errors import HarvestConfigError, HarvestError
from stillroom.harvest.testing import FakeAnthropicBatches
from tests.harvest.batch_runs import (
    assert_every_prompt_once,
    no_wait,
    rows,
    sigkill_cli_at,
    start_cli_run,
)

KEY = "sk-ant-test"
MODEL = "claude-3-7-sonnet-20250219"  # priced in the anthropic policy (batch: 1.50 / 7.50)
PROMPTS = [{"prompt": f"question number {i}", "id": f"q{i}"} for i in range(9)]


def later(seconds: float):
    """A ``now`` ``seconds`` ahead of the real clock (the in-flight window has passed)."""
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def anthropic_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def batch_cfg(fake, tmp_path: Path, prompts=PROMPTS, **kw) -> HarvestConfig:
    base = dict(prompts=prompts, db=tmp_path / "a.duckdb", base_url=fake.base_url, model=MODEL,
                api="anthropic", accept=["anthropic"], purpose="a support-ticket classifier",
                mode="batch", poll_interval=0.01, batch_max_requests=3, max_tokens=32)  # fmt: skip
    base.update(kw)
    return HarvestConfig(**base)


async def cancel_at(fake, cfg: HarvestConfig, point: str, release: bool = True) -> None:
    """Run until the fake hangs at ``point``, then cancel the run there (what a kill
    leaves: the intent stored, no answer heard)."""
    from stillroom.harvest import arun_harvest

    hung = fake.hang_at(point)
    task = asyncio.create_task(arun_harvest(cfg, progress=False, sleep=no_wait))
    while not hung.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if release:
        fake.hang_at(None)


def created_ids(fake) -> list[list[str]]:
    return [[r["custom_id"] for r in c["body"]["requests"]] for c in fake.creates]


# -- wire shapes (stillroom.harvest._batch_anthropic) ----------------------------------------
def test_custom_ids_fit_the_api_and_differ_per_database():
    from stillroom.harvest._batch_anthropic import CUSTOM_ID, custom_id

    key = "k" * 64
    ids = {custom_id(tag, key) for tag in ("db-a", "db-b")}
    assert len(ids) == 2 and all(CUSTOM_ID.match(i) for i in ids)
    assert custom_id("db-a", key) == custom_id("db-a", key)


def test_status_mapping_candidates_and_result_lines():
    from stillroom.harvest._batch_anthropic import candidates, normalise, read_results
    from stillroom.harvest.testing import pinned_payload

    batch = pinned_payload("anthropic", "message_batch")["body"]
    assert normalise(batch)["status"] == "in_progress"
    ended = {**batch, "processing_status": "ended"}
    assert normalise(ended)["status"] == "completed"
    expired = {**ended, "request_counts": {**batch["request_counts"], "expired": 1}}
    assert normalise(expired)["status"] == "expired"
    assert normalise({**expired, "cancel_initiated_at": "2024-09-24T19:00:00Z"})["status"] == (
        "cancelled"
    )
    intent = datetime.fromisoformat("2024-09-24T18:38:00+00:00")  # 36 s after created_at
    listed = [
        batch,
        {**batch, "id": "other"},
        {**batch, "id": "old", "created_at": "2024-09-24T18:30:00Z"},
    ]
    found = candidates(listed, intent_at=intent, requests=100, skew_s=120, exclude={"other"})
    assert [b["id"] for b in found] == [batch["id"]]
    assert candidates(listed, intent_at=intent, requests=99, skew_s=120, exclude=set()) == []
    lines = pinned_payload("anthropic", "message_batch_results")["body"]
    data = "".join(json.dumps(line) + "\n" for line in lines.values()).encode()
    got = {cid: r for cid, r in read_results(data, "f.jsonl", {"my-first-request": "K1"})}
    assert got["my-first-request"].key == "K1" and got["my-first-request"].ok
    errored = got["my-second-request"]
    assert (errored.status, errored.retry) == (400, False) and "max_tokens" in errored.error
    assert all(
        got[c].status is None and got[c].retry for c in ("my-third-request", "my-fourth-request")
    )
    with pytest.raises(HarvestError, match=r"f\.jsonl, line 2: not a batch result"):
        list(
            read_results(
                b'{"custom_id": "a", "result": {"type": "expired"}}\n{"x": 1}\n', "f.jsonl", {}
            )
        )


@pytest.mark.parametrize("point", ["create_early", "create", "retrieve", "results"])
def test_sigkill_at_each_point_then_rerun_creates_one_batch_per_file(tmp_path, point):
    """SIGKILL while the create is on its way (nothing made), right after it (made, its id
    never stored), while polling and while downloading; then the same command again."""
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    with FakeAnthropicBatches(api_key=KEY, polls_per_state=2) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=prompts_file)
        sigkill_cli_at(fake, point, [
            "--prompts", str(prompts_file), "--db", str(cfg.db), "--base-url", fake.base_url,
            "--model", MODEL, "--api", "anthropic", "--accept", "anthropic", "--purpose",
            "a support-ticket classifier", "--mode", "batch", "--poll-interval", "0.01",
            "--batch-max-requests", "3", "--max-tokens", "32",
        ])  # fmt: skip
        created_before = len(fake.creates)
        if point == "create_early":  # nothing listed yet: wait, never create while unsure
            cfg.max_poll_s = 0
            waiting = run_harvest(cfg, progress=False, sleep=no_wait)
            assert waiting.stopped_reason == "adoption_wait" and len(fake.creates) == 0
            assert "may still be being created" in waiting.message
            cfg.max_poll_s = None
        now = later(IN_FLIGHT_S + 1) if point == "create_early" else (lambda: datetime.now(UTC))
        result = run_harvest(cfg, progress=False, sleep=no_wait, now=now)
        creates = created_ids(fake)
    assert created_before == {"create_early": 0, "create": 1}.get(point, 3)
    assert len(creates) == 3  # exactly one batch per file of work (9 prompts, 3 a file)
    assert len({cid for ids in creates for cid in ids}) == 9
    assert result.stopped_reason is None
    assert_every_prompt_once(cfg.db, 9)
    assert (
        sorted(rows(cfg.db, "SELECT state, batch_status FROM batch_files"))
        == [("ingested", "completed")] * 3
    )


def test_expired_rows_are_resubmitted_alone_and_errored_rows_by_kind(tmp_path):
    """Results come back reversed; the first batch expires after 1 answer; a 529 row is
    asked again (once), a 400 row is a failure."""
    prompts = [*PROMPTS[:4], {"prompt": "busy [[status:529*1]]", "id": "busy"},
               {"prompt": "refused [[status:400]]", "id": "bad"}]  # fmt: skip
    with FakeAnthropicBatches(api_key=KEY, expire={0: 1}) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=prompts)
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        sent = created_ids(fake)
    assert len(sent) == 3  # two files, then the missing rows of both in one
    first, second, again = sent
    busy = next(c for c in second if c in again)
    assert sorted(again) == sorted([*first[1:], busy])  # the 2 expired, the 529: only those
    assert (result.completed, result.failed, result.stopped_reason) == (5, 1, None)
    (reason,) = rows(cfg.db, "SELECT reason FROM failures")[0]
    assert reason.startswith("batch: HTTP 400: invalid_request_error")
    attempts = sorted(a for (a,) in rows(cfg.db, "SELECT attempts FROM answers"))
    assert attempts == [1, 1, 2, 2, 2]  # q0, q3 once; the expired two and the 529 twice


def test_batch_and_sync_store_identical_rows(tmp_path):
    # Left out, as in the OpenAI batch test: request_id, latency_ms, created_at, run_id.
    excluded = dict.fromkeys(("request_id", "latency_ms", "created_at", "run_id"))
    prompts = [*PROMPTS[:5], {"prompt": "a very long question " * 250, "id": "long"}]
    opts = dict(max_tokens=1100, thinking_budget=1024)
    with FakeAnthropicBatches(api_key=KEY, cache_read_tokens=3) as fake:
        sync = batch_cfg(fake, tmp_path, prompts=prompts, mode="sync", db=tmp_path / "s.duckdb",
                         **opts)  # fmt: skip
        run_harvest(sync, progress=False)
        batch = batch_cfg(fake, tmp_path, prompts=prompts, **opts)
        run_harvest(batch, progress=False, sleep=no_wait)
    sync_rows = read_completions(sync.db, order_by=("idempotency_key",))
    batch_rows = read_completions(batch.db, order_by=("idempotency_key",))
    assert len(sync_rows) == 6
    assert [dataclasses.replace(r, **excluded) for r in sync_rows] == [
        dataclasses.replace(r, **excluded) for r in batch_rows
    ]
    assert {r.reasoning_kind for r in batch_rows} == {"full"} and batch_rows[0].reasoning_blocks
    assert {r.finish for r in batch_rows} == {"stop", "length"}
    assert all(r.cached_input_tokens == 3 for r in batch_rows)


def test_cli_cancel_then_run_resubmits_only_the_rest(tmp_path):
    from typer.testing import CliRunner

    from stillroom.harvest.cli import app

    with FakeAnthropicBatches(api_key=KEY, polls_per_state=50) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:3], max_poll_s=0)
        assert run_harvest(cfg, progress=False, sleep=no_wait).stopped_reason == "poll_deadline"
        out = CliRunner().invoke(app, ["cancel", "--db", str(cfg.db), "--base-url",
                                       fake.base_url, "--api", "anthropic"])  # fmt: skip
        assert out.exit_code == 0, out.output
        assert "msgbatch_fake000001 cancelling" in out.output
        second = run_harvest(cfg, progress=False, sleep=no_wait)
        assert (second.stopped_reason, second.completed) == ("cancelled", 0)
        cfg.max_poll_s = None
        fake.polls_per_state = 1
        third = run_harvest(cfg, progress=False, sleep=no_wait)
        assert (third.stopped_reason, third.completed, len(fake.creates)) == (None, 3, 2)
    assert_every_prompt_once(cfg.db, 3)


def test_cli_cancel_while_a_run_holds_the_database(tmp_path):
    """A run holds the DuckDB file (no other process can open it): ``harvest cancel`` finds
    the Message Batches in ``<db>.message-batches``, and the run stops ``cancelled``."""
    from typer.testing import CliRunner

    from stillroom.harvest.cli import app

    prompts_file = tmp_path / "p.jsonl"
    prompts_file.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    with FakeAnthropicBatches(api_key=KEY, polls_per_state=10**9) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=prompts_file)
        proc = start_cli_run([
            "--prompts", str(prompts_file), "--db", str(cfg.db), "--base-url", fake.base_url,
            "--model", MODEL, "--api", "anthropic", "--accept", "anthropic", "--purpose",
            "a support-ticket classifier", "--mode", "batch", "--poll-interval", "0.01",
            "--batch-max-requests", "3", "--max-tokens", "32",
        ])  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(ledger_ids(cfg.db)) < 3 and proc.poll() is None:
                assert time.monotonic() < deadline, "the run never submitted its batches"
                time.sleep(0.05)
            with pytest.raises(duckdb.IOException):  # the run holds the database
                duckdb.connect(str(cfg.db), read_only=True)
            out = CliRunner().invoke(app, ["cancel", "--db", str(cfg.db), "--base-url",
                                           fake.base_url, "--api", "anthropic"])  # fmt: skip
            assert out.exit_code == 0, out.output
            assert "3 batch(es) cancelled" in out.output
            assert sorted(ledger_ids(cfg.db)) == sorted(fake.batches)
            output = proc.communicate(timeout=60)[0].decode()
        finally:
            proc.kill()
    assert "cancelled" in output, output
    states = rows(cfg.db, "SELECT DISTINCT batch_status FROM batch_files WHERE batch_id IS "
                          "NOT NULL")  # fmt: skip
    assert {s for (s,) in states} <= {"cancelling", "cancelled", "in_progress"}
    assert set(ledger_ids(cfg.db)) == {
        b for (b,) in rows(cfg.db, "SELECT batch_id FROM batch_files WHERE state = 'submitted'")
    }  # rewritten when the run ended: only what may still run


def test_a_create_answered_500_is_adopted_from_the_list_not_redone(tmp_path):
    with FakeAnthropicBatches(api_key=KEY, create_500_once=True) as fake:
        cfg = batch_cfg(fake, tmp_path)
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        assert "list" in fake.calls and len(fake.creates) == 3
    assert result.stopped_reason is None
    assert_every_prompt_once(cfg.db, 9)
    # at the policy's batch prices (1.50 / 7.50 per Mtok); each file's worst case reserved
    spend = result.spend_usd
    assert spend == pytest.approx(
        (result.prompt_tokens * 1.5 + result.completion_tokens * 7.5) / 1e6
    )
    status = harvest_status(cfg.db)
    assert status.spend_usd == pytest.approx(spend)
    assert rows(cfg.db, "SELECT sum(requests) FROM daily_requests") == [(9,)]  # once each
    assert status.est_spend_usd > 9 * 32 * 7.5 / 1e6 > spend  # max_tokens per request, reserved


def test_a_create_answered_500_that_made_nothing_is_sent_again_at_once(tmp_path):
    """The answer ends the ambiguity: nothing listed after it, so no waiting."""
    with FakeAnthropicBatches(api_key=KEY, create_500_before_once=True) as fake:
        cfg = batch_cfg(fake, tmp_path, max_poll_s=0.0, rpd=6)  # no time to wait
        result = run_harvest(cfg, progress=False, sleep=no_wait)
        assert fake.calls.count("create") == 3 and len(fake.creates) == 2
    assert (result.stopped_reason, result.completed) == ("daily_cap", 6)
    # the daily cap binds: 6 of 9 planned, each file counted once (not once per create)
    assert rows(cfg.db, "SELECT sum(requests) FROM daily_requests") == [(6,)]
    assert rows(cfg.db, "SELECT count(*) FROM batch_files") == [(2,)]


def test_a_refused_create_stops_the_run_and_the_next_creates_without_waiting(tmp_path):
    with FakeAnthropicBatches(api_key=KEY, max_requests=2) as fake:  # below our 3 a batch
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:3], max_poll_s=0.0)
        with pytest.raises(HarvestError, match=r"Anthropic refused the batch \(HTTP 400"):
            run_harvest(cfg, progress=False, sleep=no_wait)
        fake.max_requests = 3
        again = run_harvest(cfg, progress=False, sleep=no_wait)  # answered: nothing in flight
        assert (again.stopped_reason, again.completed, len(fake.creates)) == (None, 3, 1)


def test_foreign_batches_that_look_alike_are_rejected_by_custom_id(tmp_path):
    """Killed while the create is on its way; then someone else's batches of the same size
    appear: one alone is adopted, then rejected once its results show other custom_ids;
    two are waited for and rejected; nothing is created until the window has passed."""
    with FakeAnthropicBatches(api_key=KEY) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:3], max_poll_s=0)

        asyncio.run(cancel_at(fake, cfg, "create_early"))  # the create never arrives
        one = fake.add_foreign(3)
        first = run_harvest(cfg, progress=False, sleep=no_wait)  # adopted, then rejected
        assert first.stopped_reason == "adoption_wait" and first.completed == 0
        two = [fake.add_foreign(3)["id"], fake.add_foreign(3)["id"]]
        second = run_harvest(cfg, progress=False, sleep=no_wait)  # both ended: not ours
        assert second.stopped_reason == "adoption_wait" and not fake.creates
        (intent,) = [json.loads(m) for (m,) in rows(cfg.db, "SELECT metadata FROM batch_files")]
        assert sorted(intent["rejected"]) == sorted([one["id"], *two])
        cfg.max_poll_s = None
        third = run_harvest(cfg, progress=False, sleep=no_wait, now=later(IN_FLIGHT_S + 1))
        assert len(fake.creates) == 1
    assert (third.stopped_reason, third.completed) == (None, 3)
    assert_every_prompt_once(cfg.db, 3)


def test_a_create_that_lands_after_its_sender_died_is_waited_for_and_adopted(tmp_path):
    """The ambiguous window: killed while the create was on its way; the rerun finds
    nothing yet and waits (never creates); the batch then appears and is adopted."""
    with FakeAnthropicBatches(api_key=KEY) as fake:
        cfg = batch_cfg(fake, tmp_path, prompts=PROMPTS[:3], max_poll_s=0)
        fake.arrives_late = True
        asyncio.run(cancel_at(fake, cfg, "create_early", release=False))
        waiting = run_harvest(cfg, progress=False, sleep=no_wait)
        assert waiting.stopped_reason == "adoption_wait" and not fake.creates
        fake.hang_at(None)  # the create the killed process sent is made now
        while not fake.creates:
            time.sleep(0.01)
        cfg.max_poll_s = None
        done = run_harvest(cfg, progress=False, sleep=no_wait)
        assert len(fake.creates) == 1
    assert (done.stopped_reason, done.completed) == (None, 3)
    assert_every_prompt_once(cfg.db, 3)


def test_batch_file_mode_is_refused_for_anthropic(tmp_path):
    with pytest.raises(HarvestConfigError, match="Message Batches"):
        HarvestConfig(prompts=PROMPTS, db=tmp_path / "x.duckdb", base_url="http://127.0.0.1:9",
                      model=MODEL, api="anthropic", mode="batch-file")  # fmt: skip
