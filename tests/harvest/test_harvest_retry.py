"""Retries through run_harvest with scripted HTTP and an injected clock (no real sleeping)."""

from __future__ import annotations

import random
from dataclasses import replace

import duckdb
import httpx
import pytest
from tenacity import RetryCallState

from stillroom.harvest import HarvestConfig, ProviderAuthError, run_harvest
from stillroom.harvest._retry import TransientError, wait_retry_after_or_jitter
from tests.harvest.conftest import FakeTime, ScriptedServer, ok


def config(tmp_path, n=1, **kw) -> HarvestConfig:
    base = dict(
        prompts=[{"prompt": f"p{i}"} for i in range(n)],
        db=tmp_path / "h.duckdb",
        base_url="http://teacher.test/v1",
        model="m",
        policy="self-hosted",
        concurrency=1,
        max_wait=120,
    )
    base.update(kw)
    return HarvestConfig(**base)


def go(cfg, client, t: FakeTime, **kw):
    """Run ``cfg`` against ``client``: an injected httpx client, or a loopback
    ``ScriptedServer`` reached by harvest's own default client (the lean lane)."""
    if isinstance(client, ScriptedServer):
        cfg, client = replace(cfg, base_url=client.base_url), None
    return run_harvest(
        cfg, http_client=client, progress=False, clock=t.clock, sleep=t.sleep, seed=1, **kw
    )


def error(status: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": f"e{status}"}}, headers=headers or {})


def test_full_jitter_is_bounded_and_retry_after_wins():
    wait = wait_retry_after_or_jitter(base=0.5, cap=10, rng=random.Random(0))
    state = RetryCallState(None, None, (), {})
    for attempt in range(1, 8):
        state.attempt_number = attempt
        state.set_exception((TransientError, TransientError("x"), None))
        assert 0 <= wait(state) <= min(10, 0.5 * 2 ** (attempt - 1))
    state.set_exception((TransientError, TransientError("x", 429, retry_after=7.5), None))
    assert wait(state) == 7.5


def test_429_honours_retry_after_ms_then_succeeds(scripted, tmp_path, fake_time):
    client = scripted([error(429, {"retry-after-ms": "2500"}), ok("fine")])
    result = go(config(tmp_path), client, fake_time)
    assert result.completed == 1 and result.rate_limited == 1
    assert fake_time.sleeps == [2.5]
    row = (
        duckdb.connect(str(tmp_path / "h.duckdb"))
        .execute("SELECT content FROM completions")
        .fetchone()
    )
    assert row == ("fine",)


def test_retry_after_beyond_60s_is_honoured_up_to_max_wait(scripted, tmp_path, fake_time):
    client = scripted([error(503, {"retry-after": "90"}), ok()])
    result = go(config(tmp_path, max_wait=120), client, fake_time)
    assert result.completed == 1
    assert fake_time.sleeps == [90.0]


def test_retry_after_beyond_max_wait_stops_cleanly_and_keeps_the_prompt_pending(
    scripted, tmp_path, fake_time
):
    client = scripted([error(429, {"retry-after": "3600"})])
    result = go(config(tmp_path, n=3, max_wait=60), client, fake_time)
    assert result.stopped_reason == "provider_wait"
    assert result.completed == 0 and result.failed == 0 and result.pending == 3
    assert fake_time.sleeps == []
    # the next run (the provider has recovered) does everything
    result = go(config(tmp_path, n=3), scripted([ok()]), fake_time)
    assert result.completed == 3


def test_5xx_backs_off_with_full_jitter_then_records_a_failure(scripted, tmp_path, fake_time):
    client = scripted([error(500)])
    result = go(config(tmp_path, max_attempts=4), client, fake_time)
    assert result.failed == 1 and len(client.seen) == 4
    assert len(fake_time.sleeps) == 3
    for attempt, slept in enumerate(fake_time.sleeps, 1):
        assert 0 <= slept <= 0.5 * 2 ** (attempt - 1)
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    assert con.execute("SELECT status, attempts FROM failures").fetchone() == (500, 4)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_recorded_not_retried(scripted, tmp_path, fake_time, status):
    client = scripted([error(status)])
    result = go(config(tmp_path), client, fake_time)
    assert result.failed == 1 and len(client.seen) == 1 and fake_time.sleeps == []


def test_unparseable_body_and_dropped_connection_are_retried(scripted, tmp_path, fake_time):
    def drop(request):
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    truncated = httpx.Response(
        200, content=b'{"choices": [{"mess', headers={"content-type": "application/json"}
    )
    client = scripted([truncated, drop, ok("third time")])
    result = go(config(tmp_path), client, fake_time)
    assert result.completed == 1 and len(client.seen) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_stop_the_whole_run(scripted, tmp_path, fake_time, status, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-secret")
    client = scripted([error(status)])
    with pytest.raises(ProviderAuthError, match=f"HTTP {status}.*TEACHER_KEY"):
        go(config(tmp_path, n=20, api_key_env="TEACHER_KEY"), client, fake_time)
    assert len(client.seen) == 1  # nothing else was sent
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    assert con.execute("SELECT status, stopped_reason FROM runs").fetchone() == ("failed", "auth")
    assert con.execute("SELECT count(*) FROM failures").fetchone() == (0,)


def test_sent_request_is_exact_and_carries_no_key_in_the_body(
    scripted, tmp_path, fake_time, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc123")
    client = scripted([ok()])
    cfg = config(
        tmp_path, temperature=0.2, top_p=0.9, max_tokens=7, top_logprobs=3, system="Be brief."
    )
    go(cfg, client, fake_time)
    request = client.seen[0]
    assert request.headers["authorization"] == "Bearer sk-abc123"
    body = request.read().decode()
    assert "sk-abc123" not in body
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    params, messages, system = con.execute(
        "SELECT request_params, messages, system_prompt FROM completions"
    ).fetchone()
    import json

    sent = json.loads(body)
    assert (
        json.loads(messages)
        == sent["messages"]
        == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "p0"},
        ]
    )
    assert json.loads(params) == {k: v for k, v in sent.items() if k != "messages"}
    assert json.loads(params) == {
        "model": "m", "max_tokens": 7, "temperature": 0.2, "top_p": 0.9, "logprobs": True, "top_logprobs": 3,
    }  # fmt: skip
    assert system == "Be brief."
