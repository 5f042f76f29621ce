"""The parts of the batch path: input files, result lines, the poller, the fake Batch API,
header profiles and batch prices."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random

import openai
import pytest

from stillroom import policies
from stillroom.harvest._batch_client import BatchClient
from stillroom.harvest._batch_files import BatchLimits, read_results, split_requests
from stillroom.harvest._batch_poll import PollSchedule, poll_until_done
from stillroom.harvest._header_profiles import PROFILES, profile_for
from stillroom.harvest._limiter import RateLimiter
from stillroom.harvest._prompts import load_prompts
from stillroom.harvest._work import plan_work, sampling_params
from stillroom.harvest.errors import HarvestConfigError, HarvestError
from stillroom.harvest.testing import FakeBatchProvider
from tests.harvest.conftest import FakeTime


def items(n: int, text: str = "question"):
    prompts = load_prompts([{"prompt": f"{text} {i} ü", "id": f"q{i}"} for i in range(n)])
    params = sampling_params(model="m", max_tokens=16, temperature=0.0, top_p=None, top_logprobs=2)
    return plan_work(prompts, params, 1)


# -- input files ---------------------------------------------------------------------------
def test_request_lines_are_the_synchronous_body_keyed_by_idempotency_key():
    work = items(3)
    (only,) = split_requests(work, BatchLimits())
    lines = [json.loads(x) for x in only.content.splitlines()]
    assert [x["custom_id"] for x in lines] == [w.key for w in work] == only.keys
    for line, w in zip(lines, work, strict=True):
        assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
        assert line["body"] == {"messages": list(w.messages), **w.params}
    assert only.sha256 == hashlib.sha256(only.content).hexdigest()


def test_files_are_split_within_request_and_byte_limits():
    work = items(25)
    by_count = split_requests(work, BatchLimits(max_requests=10))
    assert [f.requests for f in by_count] == [10, 10, 5]
    line_bytes = len(by_count[0].content) // 10
    by_size = split_requests(work, BatchLimits(max_bytes=line_bytes * 4 + 10))
    assert all(len(f.content) <= line_bytes * 4 + 10 for f in by_size)
    assert sum(f.requests for f in by_size) == 25 and len(by_size) == 7
    assert [k for f in by_size for k in f.keys] == [w.key for w in work]  # order kept, once
    with pytest.raises(HarvestError, match=r"prompt 'q0'.*more than a batch file may hold"):
        split_requests(items(1, "x" * 3000), BatchLimits(max_bytes=2048))


def test_result_lines_parse_and_a_bad_line_is_named():
    data = (
        b'{"id":"r1","custom_id":"k1","response":{"status_code":200,"request_id":"q1",'
        b'"body":{"choices":[]}},"error":null}\n'
        b'{"id":"r2","custom_id":"k2","response":{"status_code":400,"request_id":"q2",'
        b'"body":{"error":{"message":"bad"}}},"error":null}\n'
        b'{"id":"r3","custom_id":"k3","response":null,"error":{"code":"batch_expired",'
        b'"message":"not run"}}\n'
    )
    ok, bad, expired = read_results(data, "out.jsonl")
    assert (ok.key, ok.ok, ok.request_id, ok.retry) == ("k1", True, "q1", False)
    assert (bad.status, bad.ok, bad.retry) == (400, False, False) and "bad" in bad.error
    assert (expired.status, expired.retry, expired.error) == (None, True, "batch_expired: not run")
    with pytest.raises(HarvestError, match=r"out.jsonl, line 2: not a batch result"):
        list(read_results(data.splitlines(keepends=True)[0] + b"{oops\n", "out.jsonl"))


# -- the poller ----------------------------------------------------------------------------
def test_poller_backs_off_while_nothing_changes_and_resets_on_change(fake_time: FakeTime):
    script = {"b1": ["validating"] * 2 + ["in_progress"] * 4 + ["completed"]}
    seen: list[str] = []

    async def retrieve(batch_id: str) -> dict:
        states = script[batch_id]
        return {"id": batch_id, "status": states.pop(0) if len(states) > 1 else states[0]}

    schedule = PollSchedule(interval=10, factor=2, max_interval=35)
    final = asyncio.run(
        poll_until_done(
            ["b1"], retrieve, lambda b: seen.append(b["status"]), schedule=schedule,
            sleep=fake_time.sleep, clock=fake_time.clock,
        )
    )  # fmt: skip
    assert final == {"b1": "completed"}
    assert seen == ["validating", "in_progress", "completed"]
    # change, quiet, change, quiet x3 (10, 20, 35 = capped)
    assert fake_time.sleeps == [10, 10, 10, 10, 20, 35]


def test_poller_stops_after_max_poll_s_of_the_injected_clock(fake_time: FakeTime):
    async def retrieve(batch_id: str) -> dict:
        return {"id": batch_id, "status": "in_progress"}

    schedule = PollSchedule(interval=30, factor=1, max_interval=30, max_poll_s=100)
    final = asyncio.run(
        poll_until_done(
            ["b"], retrieve, lambda b: None, schedule=schedule, sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
    )  # fmt: skip
    assert final == {"b": "in_progress"}
    assert fake_time.sleeps == [30, 30, 30, 30]  # polls at 0..120 s; 120 >= 100 ends it


# -- the fake Batch API, through the SDK -----------------------------------------------------
def run_client(fake, fn):
    async def go():
        client = openai.AsyncOpenAI(api_key="k", base_url=fake.base_url, max_retries=0)
        sleeps: list[float] = []

        async def sleep(s: float) -> None:
            sleeps.append(s)

        try:
            return await fn(BatchClient(client, sleep=sleep, rng=random.Random(0))), sleeps
        finally:
            await client.close()

    return asyncio.run(go())


def test_fake_batch_api_shapes_states_partial_errors_and_a_404_once():
    work = items(3)
    work[1].messages = ({"role": "user", "content": "refused [[status:400]]"},)
    work[1].messages_json = json.dumps(list(work[1].messages))
    (batch_input,) = split_requests(work, BatchLimits())

    async def flow(bc: BatchClient):
        file_id = await bc.upload("in.jsonl", batch_input.content)
        created = await bc.create(file_id, {"stillroom_run": "r1", "sha256": batch_input.sha256})
        states = [created["status"]]
        while states[-1] not in ("completed", "failed"):
            states.append((await bc.retrieve(created["id"]))["status"])
        done = await bc.retrieve(created["id"])
        found = await bc.find({"sha256": batch_input.sha256})
        out = list(read_results(await bc.download(done["output_file_id"]), "out"))
        err = list(read_results(await bc.download(done["error_file_id"]), "err"))
        return created, states, done, found, out, err

    with FakeBatchProvider(polls_per_state=2, flaky_files=True, reasoning="reasoning") as fake:
        (created, states, done, found, out, err), sleeps = run_client(fake, flow)
    assert created["object"] == "batch" and created["endpoint"] == "/v1/chat/completions"
    assert created["metadata"] == {"stillroom_run": "r1", "sha256": batch_input.sha256}
    assert states == ["validating"] * 2 + ["in_progress"] * 2 + ["finalizing"] * 2 + ["completed"]
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert found["id"] == created["id"]
    assert sorted(r.key for r in out) == sorted([work[0].key, work[2].key])
    body = out[0].body
    assert body["choices"][0]["message"]["reasoning"].startswith("The user wrote")
    assert body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]  # top_logprobs=2 asked
    assert [(r.key, r.status) for r in err] == [(work[1].key, 400)]
    assert len(sleeps) == 2  # each result file answered 404 once, then was read


def test_fake_batch_api_expires_cancels_and_fails_validation():
    work = items(4)
    (batch_input,) = split_requests(work, BatchLimits())
    duplicated = batch_input.content + batch_input.content.splitlines(keepends=True)[0]

    async def flow(bc: BatchClient):
        ids = []
        for content in (batch_input.content, batch_input.content, duplicated):
            ids.append((await bc.create(await bc.upload("f.jsonl", content), {}))["id"])
        await bc.cancel(ids[1])
        final = {}
        for batch_id in ids:
            for _ in range(6):
                final[batch_id] = await bc.retrieve(batch_id)
        err = await bc.download(final[ids[0]]["error_file_id"])
        return [final[i] for i in ids], list(read_results(err, "err"))

    with FakeBatchProvider(expire={0: 3}) as fake:
        (expired, cancelled, failed), err = run_client(fake, flow)[0]
        assert len(fake.creates) == 3
    assert expired["status"] == "expired" and expired["request_counts"]["completed"] == 3
    assert [(r.key, r.error.split(":")[0]) for r in err] == [(work[3].key, "batch_expired")]
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert failed["status"] == "failed"
    assert failed["errors"]["data"][0]["code"] == "duplicate_custom_id"


# -- header profiles -------------------------------------------------------------------------
# Header sets copied from each provider's published documentation (cited per profile).
OPENAI_DOC = {  # https://platform.openai.com/docs/guides/rate-limits ("Sample Value")
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}
GROQ_DOC = {  # https://console.groq.com/docs/rate-limits ("values are illustrative")
    "retry-after": "2",
    "x-ratelimit-limit-requests": "14400",  # "Always refers to Requests Per Day (RPD)"
    "x-ratelimit-limit-tokens": "18000",  # "Always refers to Tokens Per Minute (TPM)"
    "x-ratelimit-remaining-requests": "14370",
    "x-ratelimit-remaining-tokens": "17997",
    "x-ratelimit-reset-requests": "2m59.56s",
    "x-ratelimit-reset-tokens": "7.66s",
}
CEREBRAS_DOC = {  # https://inference-docs.cerebras.ai/support/rate-limits (the example)
    "x-ratelimit-limit-requests-day": "1000000000",
    "x-ratelimit-limit-tokens-minute": "1000000000",
    "x-ratelimit-remaining-requests-day": "999997455",
    "x-ratelimit-remaining-tokens-minute": "999998298",
    "x-ratelimit-reset-requests-day": "33011.382867097855",
    "x-ratelimit-reset-tokens-minute": "11.382867097854614",
}


def learn(profile_name: str, headers: dict[str, str]) -> RateLimiter:
    limiter = RateLimiter(profile=PROFILES[profile_name], clock=lambda: 0.0)
    limiter.observe(limiter._take(1.0), headers)
    return limiter


def test_openai_profile_reads_per_minute_limits():
    limiter = learn("openai", OPENAI_DOC)
    assert limiter.learned == {"profile": "openai", "rpm": 60, "tpm": 150000}
    assert limiter.mirror_requests.bucket.rate == pytest.approx(1.0)  # 60 a minute
    assert limiter.mirror_tokens.bucket.rate == pytest.approx(2500.0)


def test_groq_profile_reads_requests_per_day_not_per_minute():
    limiter = learn("groq", GROQ_DOC)
    assert limiter.learned == {"profile": "groq", "rpm": None, "rpd": 14400, "tpm": 18000}
    assert limiter.mirror_requests.bucket.rate == pytest.approx(14400 / 86400)
    # remaining 14370 + 179.56 s of refill at 1/6 a second = the day's 14400 bucket
    assert limiter.mirror_requests.bucket.capacity == pytest.approx(14400, abs=1)
    assert limiter.mirror_requests.bucket.level == 14370 - 0  # nothing sent after it
    assert limiter.mirror_tokens.bucket.rate == pytest.approx(300.0)  # 18000 a minute
    wrong = learn("openai", GROQ_DOC)  # the old reading: 14400 requests a minute
    assert wrong.mirror_requests.bucket.rate == pytest.approx(240.0)


def test_cerebras_profile_reads_its_windowed_header_names():
    limiter = learn("cerebras", CEREBRAS_DOC)
    assert limiter.learned == {
        "profile": "cerebras", "rpm": None, "rpd": 1000000000, "tpm": 1000000000,
    }  # fmt: skip
    assert limiter.mirror_requests.bucket.rate == pytest.approx(1e9 / 86400)
    assert learn("openai", CEREBRAS_DOC).learned["rpm"] is None  # OpenAI's names are absent


def test_profiles_are_chosen_by_name_policy_or_host_with_openai_as_default():
    assert profile_for("https://api.groq.com/openai/v1").name == "groq"
    assert profile_for("https://api.cerebras.ai/v1").name == "cerebras"
    assert profile_for("http://127.0.0.1:8000/v1").name == "openai"  # the documented default
    assert profile_for("https://api.groq.com/openai/v1", "openai").name == "openai"
    assert not learn("none", OPENAI_DOC).learn
    with pytest.raises(HarvestConfigError, match=r"unknown limits profile 'grok'.*groq"):
        profile_for("http://x/v1", "grok")


# -- prices ------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy_id", ["openai", "anthropic", "gemini"])
def test_shipped_prices_carry_batch_prices_a_source_and_the_date_read(policy_id):
    policy = policies.get_policy(policy_id)
    assert policy.prices
    for price in policy.prices:
        assert price.url and price.url.startswith("https://") and price.read == "2026-12-01"
        assert price.usd_per_mtok_batch_in == pytest.approx(price.usd_per_mtok_in / 2)
        assert price.usd_per_mtok_batch_out == pytest.approx(price.usd_per_mtok_out / 2)
        if price.usd_per_mtok_cached_in is not None:
            assert price.usd_per_mtok_cached_in < price.usd_per_mtok_in


def test_limits_for_a_model_carry_its_batch_and_cached_prices():
    limits = policies.get_policy("openai").limits_for("gpt-4o-mini-2024-07-18")
    assert (limits.usd_per_mtok_in, limits.usd_per_mtok_out) == (0.15, 0.60)
    assert (limits.usd_per_mtok_batch_in, limits.usd_per_mtok_batch_out) == (0.075, 0.30)
    assert limits.usd_per_mtok_cached_in == 0.075


def test_a_price_with_a_bad_date_is_named(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'id = "mine"\nname = "Mine"\nverdict = "allowed"\n'
        '[terms]\ntitle = "T"\nread = 2026-01-01\n'
        '[[clauses]]\nsection = "s"\ntext = "t"\n'
        '[[covers]]\nhosts = ["h"]\n'
        '[[prices]]\nmodels = ["m"]\nusd_per_mtok_in = 1\nusd_per_mtok_out = 2\nread = "soon"\n'
    )
    with pytest.raises(policies.PolicyFileError, match=r"prices\[0\]\.read"):
        policies.load_policy_file(path)


def test_store_creates_the_batch_tables_through_migration_3(tmp_path):
    from stillroom.harvest._store import Store

    store = Store(tmp_path / "fresh.duckdb")
    try:
        tables = {t for (t,) in store.con.execute("SHOW TABLES").fetchall()}
        versions = [
            v for (v,) in store.con.execute("SELECT version FROM schema_migrations").fetchall()
        ]
        run_columns = {r[0] for r in store.con.execute("DESCRIBE runs").fetchall()}
    finally:
        store.close()
    assert {"batch_files", "batch_items"} <= tables
    assert 3 in versions and {"mode", "est_spend_usd", "spend_usd"} <= run_columns


def test_a_run_reads_headers_with_the_chosen_profile(tmp_path):
    from stillroom.harvest import HarvestConfig, run_harvest
    from stillroom.harvest.testing import FakeProvider

    with FakeProvider(rpm=600, burst_seconds=2) as fake:
        cfg = HarvestConfig(prompts=[{"prompt": "hi"}], db=tmp_path / "p.duckdb",
                            base_url=fake.base_url, model="m", policy="self-hosted",
                            limits_profile="groq")  # fmt: skip
        result = run_harvest(cfg, progress=False)
        assert result.learned_limits == {"profile": "groq", "rpm": None, "rpd": 600, "tpm": None}
        cfg.limits_profile = "grok"
        with pytest.raises(HarvestConfigError, match="unknown limits profile"):
            run_harvest(cfg, progress=False)
        assert fake.stats()["total"] == 1  # the bad profile was refused before any request
