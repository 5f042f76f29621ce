"""End to end against the loopback fake provider: faults, reasoning, logprobs, limits."""

from __future__ import annotations

import asyncio
import json

import duckdb
import pytest

from stillroom.harvest import HarvestConfig, run_harvest
from stillroom.harvest.testing import FakeProvider, Faults
from tests.harvest.conftest import error, ok, scripted_client


async def quick_sleep(seconds: float) -> None:  # back-off shortened, real time still passes
    await asyncio.sleep(min(seconds, 0.02))


def cfg_for(fake, tmp_path, prompts, **kw) -> HarvestConfig:
    base = dict(prompts=prompts, db=tmp_path / "h.duckdb", base_url=fake.base_url, model="asked-model",
                policy="self-hosted", max_tokens=64)  # fmt: skip
    base.update(kw)
    return HarvestConfig(**base)


def rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("reuse_request", [True, False], ids=["reused-request", "client.post"])
def test_faults_every_prompt_settles_exactly_once(tmp_path, reuse_request):
    faults = Faults(error_500=0.1, truncated=0.08, dropped=0.08, slow=0.04, slow_seconds=0.6)
    prompts = [{"prompt": f"question {i}", "id": f"q{i}"} for i in range(150)]
    prompts.append({"prompt": "always refused [[status:400]]", "id": "bad"})
    with FakeProvider(rpm=6000, tpm=2_000_000, burst_seconds=1, faults=faults, seed=3) as fake:
        cfg = cfg_for(
            fake, tmp_path, prompts, concurrency=12, request_timeout=0.4, max_attempts=8,
            reuse_request=reuse_request,
        )  # fmt: skip
        result = run_harvest(cfg, progress=False, sleep=quick_sleep)
        stats = fake.stats()
    for kind in ("500", "truncated", "dropped"):
        assert stats["by_status"].get(kind, 0) > 0, f"no {kind} was injected"
    done = rows(cfg.db, "SELECT prompt_id FROM completions")
    failed = rows(cfg.db, "SELECT prompt_id FROM failures")
    ids = [r[0] for r in done + failed]
    assert sorted(ids) == sorted(p["id"] for p in prompts)  # all settled, none twice
    assert ("bad",) in failed
    assert result.completed == len(done) and result.failed == len(failed) and result.pending == 0
    assert result.requests > len(prompts)  # retries happened


@pytest.mark.parametrize("mode", ["reasoning_content", "reasoning", "think"])
def test_reasoning_is_split_out(tmp_path, mode):
    with FakeProvider(reasoning=mode) as fake:
        run_harvest(cfg_for(fake, tmp_path, [{"prompt": "why?"}]), progress=False)
    content, reasoning, teacher, requested, request_id = rows(
        tmp_path / "h.duckdb",
        "SELECT content, reasoning, teacher_model, requested_model, request_id FROM completions",
    )[0]
    assert content == "You asked: why?"
    assert reasoning == "The user wrote 4 characters."
    assert (teacher, requested) == ("fake-teacher-2026-01", "asked-model")
    assert request_id.startswith("req_")


def test_top_logprobs_are_kept_in_the_contract_shape(tmp_path):
    with FakeProvider() as fake:
        run_harvest(cfg_for(fake, tmp_path, [{"prompt": "tok"}], top_logprobs=3), progress=False)
        no = cfg_for(fake, tmp_path, [{"prompt": "tok"}], db=tmp_path / "no.duckdb")
        run_harvest(no, progress=False)
    (raw,) = rows(tmp_path / "h.duckdb", "SELECT top_logprobs FROM completions")[0]
    tokens = json.loads(raw)
    assert "".join(t["token"] for t in tokens) == "You asked: tok"
    first = tokens[0]
    assert set(first) == {"token", "logprob", "bytes", "top_logprobs"}
    assert len(first["top_logprobs"]) == 3
    assert set(first["top_logprobs"][0]) == {"token", "logprob", "bytes"}
    assert rows(tmp_path / "no.duckdb", "SELECT top_logprobs FROM completions") == [(None,)]


def test_limits_are_learned_from_headers_with_few_429s(tmp_path):
    prompts = [{"prompt": f"p{i}"} for i in range(70)]
    with FakeProvider(rpm=1200, burst_seconds=1) as fake:  # 20 at once, then 20/s
        result = run_harvest(cfg_for(fake, tmp_path, prompts, concurrency=16), progress=False)
        stats = fake.stats()
    assert result.learned_limits["rpm"] == 1200
    assert result.completed == 70
    assert stats["by_status"].get("429", 0) <= 2, stats


def test_tpm_limit_with_samples(tmp_path):
    prompts = [{"prompt": f"p{i}"} for i in range(10)]
    # each request costs ~10 prompt + 64 max tokens; 30000 TPM = 500 tokens/s, 1 s burst
    with FakeProvider(tpm=30000, burst_seconds=1) as fake:
        cfg = cfg_for(fake, tmp_path, prompts, samples=2, tpm=30000, concurrency=8)
        result = run_harvest(cfg, progress=False)
        stats = fake.stats()
    assert result.completed == 20
    assert stats["by_status"].get("429", 0) <= 1
    assert rows(
        tmp_path / "h.duckdb",
        "SELECT count(DISTINCT prompt_id), max(sample_index) FROM completions",
    ) == [(10, 1)]


def test_retry_failed(tmp_path):
    prompts = [{"prompt": "a"}, {"prompt": "b"}]
    db = tmp_path / "h.duckdb"
    base = dict(
        prompts=prompts,
        db=db,
        base_url="http://t/v1",
        model="m",
        policy="self-hosted",
        concurrency=1,
    )
    first = scripted_client([ok(), error(400)])
    assert run_harvest(HarvestConfig(**base), http_client=first, progress=False).failed == 1
    again = scripted_client([ok()])
    result = run_harvest(HarvestConfig(**base), http_client=again, progress=False)
    assert again.seen == [] and result.already_done == 2  # failures are not retried by default
    result = run_harvest(
        HarvestConfig(**base, retry_failed=True), http_client=again, progress=False
    )
    assert len(again.seen) == 1 and result.completed == 1
    assert rows(db, "SELECT count(*) FROM completions") == [(2,)]
    assert rows(db, "SELECT count(*) FROM failures") == [(0,)]


def test_scripted_replies_first_matching_rule_else_the_echo(tmp_path):
    texts = {"a": "grade 42 please", "b": "grade 7", "c": "hello there"}
    prompts = [{"prompt": text, "id": pid} for pid, text in texts.items()]
    rules = [["42", "VERDICT: PASS"], ["grade", "VERDICT: FAIL"]]
    with FakeProvider(replies=rules) as fake:
        run_harvest(cfg_for(fake, tmp_path, prompts), progress=False)
    got = dict(rows(tmp_path / "h.duckdb", "SELECT prompt_id, content FROM answers"))
    assert got == {"a": "VERDICT: PASS", "b": "VERDICT: FAIL", "c": "You asked: hello there"}
