"""The ``anthropic`` dialect against the strict loopback Messages API (``FakeAnthropic``)
and the pinned payloads it is built from."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path, PurePosixPath

import httpx
import pytest

from stillroom.harvest._dialect import RequestOptions, dialect_for, infer_api
from stillroom.harvest._header_profiles import profile_for
from stillroom.harvest.errors import HarvestConfigError
from stillroom.harvest.testing import FakeAnthropic, pinned_payload
from tests.harvest.native_runs import native_cfg, sigkill_then_resume

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "harvest" / "fixtures"
MODEL = "claude-sonnet-4-20250514"
DIALECT = dialect_for("anthropic")


@pytest.fixture(scope="module")
def shared_fake():
    with FakeAnthropic() as fake:
        yield fake


def send(fake, model, messages, options, key="sk-ant-test", headers=None) -> httpx.Response:
    """What harvest puts on the wire for one prompt, sent to ``fake``."""
    wire = DIALECT.build(model, messages, options)
    sent = {**DIALECT.auth_headers(key), **(wire.headers or {}), **(headers or {})}
    return httpx.post(fake.base_url + wire.path, json=wire.body, headers=sent, timeout=10)


def test_every_payload_records_its_source_and_date_and_ships_in_the_wheel():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["stillroom.harvest"]
    files = sorted(
        [*(PAYLOADS / "anthropic").glob("*.json"), *(PAYLOADS / "gemini").glob("*.json")]
    )
    assert len(files) >= 20
    for path in files:
        data = json.loads(path.read_text())
        assert data["sources"] and data["read"] == "2026-12-03", path
        rel = PurePosixPath(path.relative_to(PAYLOADS.parent).as_posix())
        assert any(rel.match(g) for g in globs), path  # as setuptools globs them
    assert pinned_payload("anthropic", "error_overloaded")["status"] == 529


def test_the_host_picks_the_dialect_and_its_header_profile():
    assert infer_api("https://api.anthropic.com") == "anthropic"
    assert DIALECT.key_env == "ANTHROPIC_API_KEY"
    assert profile_for("https://api.anthropic.com").name == "anthropic" == DIALECT.limits_profile


def test_build_puts_system_on_top_and_thinking_without_sampling():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    wire = DIALECT.build(MODEL, messages, RequestOptions(max_tokens=4096, thinking_budget=2048))
    assert wire.path == "/v1/messages" and wire.headers == {"anthropic-version": "2023-06-01"}
    assert wire.body == {
        "model": MODEL,
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "hi"}],
        "system": "Be brief.",
    }
    plain = DIALECT.build(MODEL, messages[1:], RequestOptions(temperature=0.2, stop=("END",)))
    assert plain.body["temperature"] == 0.2 and plain.body["stop_sequences"] == ["END"]
    assert "system" not in plain.body
    assert DIALECT.auth_headers("k") == {"x-api-key": "k"}


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (RequestOptions(max_tokens=4096, thinking_budget=512), "--thinking-budget 512"),
        (RequestOptions(max_tokens=2048, thinking_budget=2048), "less than\n--max-tokens"),
        (RequestOptions(top_logprobs=3), "--top-logprobs"),
        (RequestOptions(seed=1), "--seed"),
        (RequestOptions(reasoning_effort="high"), "--reasoning-effort"),
        (RequestOptions(temperature=1.5), "--temperature 1.5"),
    ],
)
def test_options_anthropic_cannot_take_fail_before_any_request(options, names):
    with pytest.raises(HarvestConfigError) as err:
        DIALECT.build(MODEL, [{"role": "user", "content": "x"}], options)
    assert names.replace("\n", " ") in str(err.value)


def test_success_with_thinking_keeps_the_blocks_opaque_and_counts_cached_input():
    with FakeAnthropic(redacted=True, cache_read_tokens=40, cache_write_tokens=8) as fake:
        options = RequestOptions(max_tokens=4096, thinking_budget=1024)
        resp = send(
            fake, "claude-3-7-sonnet-20250219", [{"role": "user", "content": "2+2?"}], options
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        answer = DIALECT.parse(resp.json(), resp.headers.get(DIALECT.request_id_header))
        (sent,) = fake.bodies()
    assert "temperature" not in sent  # the fake refuses it with thinking; none was sent
    assert answer.content == "You asked: 2+2?"
    assert answer.reasoning == "The user wrote 4 characters."
    assert answer.reasoning_kind == "full"  # Claude 3.7 returns its thinking in full
    blocks = json.loads(answer.reasoning_blocks)
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking"]
    assert blocks[0]["signature"] and blocks[1]["data"]
    assert answer.cached_input_tokens == 40
    assert answer.prompt_tokens == resp.json()["usage"]["input_tokens"] + 40 + 8
    assert answer.completion_tokens == resp.json()["usage"]["output_tokens"]
    assert (answer.finish_reason, answer.finish) == ("end_turn", "stop")
    assert answer.request_id.startswith("req_fake")


def test_the_pinned_message_parses_as_a_claude_4_summary():
    answer = DIALECT.parse(pinned_payload("anthropic", "message_thinking")["body"], None)
    assert answer.reasoning_kind == "summary"  # "Claude 4 models return a summary"
    assert answer.content == "17 × 23 = 391." and answer.cached_input_tokens == 2048
    assert answer.prompt_tokens == 21 + 1024 + 2048 and answer.completion_tokens == 187
    assert answer.request_id == "msg_01AbCdEfGhIjKlMnOpQrStUv"
    refusal = DIALECT.parse(pinned_payload("anthropic", "message_refusal")["body"], None)
    assert (refusal.finish, refusal.content, refusal.reasoning_kind) == ("refusal", "", "none")


def test_truncation_is_a_length_finish():
    with FakeAnthropic() as fake:
        options = RequestOptions(max_tokens=3, temperature=0.5)
        resp = send(fake, MODEL, [{"role": "user", "content": "a long question " * 4}], options)
    answer = DIALECT.parse(resp.json(), None)
    assert (answer.finish_reason, answer.finish) == ("max_tokens", "length")
    assert len(answer.content) == 12 and answer.completion_tokens == 3
    pinned = DIALECT.parse(pinned_payload("anthropic", "message_max_tokens")["body"], None)
    assert pinned.finish == "length" and pinned.content == ""


def test_the_fake_refuses_what_the_api_refuses():
    msg = [{"role": "user", "content": "hi"}]
    with FakeAnthropic(api_key="right") as fake:
        wrong = send(fake, MODEL, msg, RequestOptions(), key="wrong")
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
        bearer = httpx.post(
            fake.base_url + "/v1/messages",
            json={"model": MODEL, "max_tokens": 5, "messages": msg},
            headers={"Authorization": "Bearer right", "anthropic-version": "2023-06-01"},
        )
        assert bearer.status_code == 401
        no_version = send(fake, MODEL, msg, RequestOptions(), key="right",
                          headers={"anthropic-version": ""})  # fmt: skip
        assert no_version.json()["error"]["message"] == "anthropic-version: header is required"
        extra = send(fake, MODEL, msg, RequestOptions(extra_body={"logprobs": True}), key="right")
        assert extra.json()["error"]["message"] == "logprobs: Extra inputs are not permitted"
        # what a newer model refuses: temperature and top_p together (Sonnet 4.5)
        both = send(fake, "claude-sonnet-4-5", msg, RequestOptions(top_p=0.9), key="right")
        assert both.status_code == 400 and "cannot both be specified" in both.text
        verdict = DIALECT.classify(both.status_code, both.content, both.headers)
        assert verdict.kind == "stop" and "Change --temperature" in verdict.message
        ok = send(fake, "claude-sonnet-4-5", msg, RequestOptions(temperature=None, top_p=0.9),
                  key="right")  # fmt: skip
        assert ok.status_code == 200
        # thinking with a temperature (sent through --extra-body): the API's own words
        hot = send(fake, MODEL, msg, RequestOptions(max_tokens=2048, thinking_budget=1024,
                   extra_body={"temperature": 0.3}), key="right")  # fmt: skip
        assert "may only be set to 1 when thinking is enabled" in hot.text
        assert DIALECT.classify(400, hot.content, hot.headers).kind == "stop"


def test_a_model_that_refuses_temperature_takes_it_removed_through_extra_body(shared_fake):
    msg = [{"role": "user", "content": "hi"}]
    refused = send(shared_fake, "claude-opus-4-7", msg, RequestOptions())  # default 0.7 sent
    assert refused.json()["error"]["message"] == "`temperature` is deprecated for this model."
    verdict = DIALECT.classify(400, refused.content, refused.headers)
    assert verdict.kind == "stop" and "Change --temperature" in verdict.message
    adaptive = {"temperature": None, "thinking": {"type": "adaptive"}}  # the documented way
    wire = DIALECT.build("claude-opus-4-7", msg, RequestOptions(extra_body=adaptive))
    assert "temperature" not in wire.body and wire.body["thinking"] == {"type": "adaptive"}
    assert send(shared_fake, "claude-opus-4-7", msg, RequestOptions(extra_body=adaptive)).is_success


@pytest.mark.parametrize(
    ("name", "kind", "names"),
    [
        ("invalid_request", "stop", "--temperature"),
        ("authentication", "auth", ""),
        ("permission", "auth", ""),
        ("not_found", "stop", "--model"),
        ("request_too_large", "permanent", ""),
        ("rate_limit", "rate_limited", ""),
        ("api", "retry", ""),
        ("overloaded", "retry", ""),  # 529: retried like a 503
    ],
)
def test_each_documented_error_body_has_its_verdict(shared_fake, name, kind, names):
    status = pinned_payload("anthropic", f"error_{name}")["status"]
    resp = send(shared_fake, MODEL, [{"role": "user", "content": f"[[status:{status}]]"}],
                RequestOptions())  # fmt: skip
    assert resp.status_code == status
    body = resp.json()
    assert body["type"] == "error" and body["request_id"] == resp.headers["request-id"]
    assert body["error"] == pinned_payload("anthropic", f"error_{name}")["body"]["error"]
    verdict = DIALECT.classify(resp.status_code, resp.content, resp.headers)
    assert verdict.kind == kind and names in verdict.message
    if status == 429:
        assert verdict.retry_after == 12.0  # the pinned retry-after


def test_a_429_says_how_long_and_every_answer_carries_rfc3339_resets():
    with FakeAnthropic(rpm=60, tpm=100_000) as fake:
        msg = [{"role": "user", "content": "[[status:429*1]] [[retry:7]]"}]
        first = send(fake, MODEL, msg, RequestOptions())
        second = send(fake, MODEL, msg, RequestOptions())
    verdict = DIALECT.classify(first.status_code, first.content, first.headers)
    assert (verdict.kind, verdict.retry_after) == ("rate_limited", 7.0)
    assert second.status_code == 200
    requests, tokens = DIALECT.limits(second.headers, profile_for("https://api.anthropic.com"))
    assert requests.limit == 60 and tokens.limit == 100_000
    assert requests.remaining == 58 and 0.0 <= requests.reset <= 61.0  # RFC 3339 -> seconds
    for dim in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert f"anthropic-ratelimit-{dim}-reset" in second.headers
    # the pinned header set, without the combined tokens headers: input tokens stand in
    pinned = pinned_payload("anthropic", "rate_limit_headers")["headers"]
    profile = profile_for("https://api.anthropic.com")
    assert DIALECT.limits(pinned, profile)[1].limit == 96000
    partial = {k: v for k, v in pinned.items() if "-tokens-" not in k or "input" in k}
    requests, tokens = DIALECT.limits(partial, profile)
    assert (requests.limit, tokens.limit, tokens.remaining) == (50, 80000, 79000)
    assert tokens.reset == 0.0  # an RFC 3339 time in the past


def test_a_native_base_url_resolves_the_anthropic_policy_and_accept_with_purpose_applies():
    from stillroom import policies

    native = {"base_url": "https://api.anthropic.com", "model": "a-model-named-nothing-like-it"}
    with pytest.raises(policies.PolicyNeedsAcceptance):  # conditional: nothing sent without it
        policies.resolve_for_harvest(policy_id=None, **native)
    with pytest.raises(policies.PolicyNeedsAcceptance, match="purpose"):
        policies.resolve_for_harvest(policy_id=None, accept=["anthropic"], **native)
    run = policies.resolve_for_harvest(
        policy_id=None, accept=["anthropic"], purpose="a support-ticket classifier", **native
    )
    assert (run.id, run.how, run.accepted, run.purpose) == (
        "anthropic", "matched", True, "a support-ticket classifier"
    )  # fmt: skip


def test_cache_reads_are_priced_at_the_policys_cached_input_price():
    from stillroom import policies
    from stillroom.harvest._budget import Caps, RunLimits

    limits = policies.get_policy("anthropic").limits_for("claude-3-5-haiku-20241022")
    caps = Caps(
        RunLimits(None, None, None, None, limits.usd_per_mtok_in, limits.usd_per_mtok_out,
                  usd_per_mtok_cached_in=limits.usd_per_mtok_cached_in),
        today=None, requests_today=0, spent_usd=0.0,
    )  # fmt: skip
    # 1M input tokens of which 600k were cache reads, 100k output (thinking included)
    assert caps.cost(1_000_000, 100_000, cached_in=600_000) == pytest.approx(
        0.4 * 0.80 + 0.6 * 0.08 + 0.1 * 4.00
    )
    assert caps.cost(1_000_000, 0) == pytest.approx(0.80)  # nothing cached: the input price


# -- whole runs: the engine with the anthropic dialect, over loopback ------------------------
KEY = "sk-ant-run-key-DO-NOT-STORE"
FULL_MODEL = "claude-3-7-sonnet-20250219"  # returns its thinking in full


def run_cfg(tmp_path, fake, prompts, **overrides):
    options = {"model": FULL_MODEL, "max_tokens": 2048, "thinking_budget": 1024, **overrides}
    return native_cfg(
        tmp_path, fake, prompts, api="anthropic", purpose="a support-ticket classifier", **options
    )


def test_a_run_stores_full_thinking_opaque_blocks_and_cached_input(tmp_path, monkeypatch):
    from stillroom.harvest import read_completions, run_harvest

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-not-for-anthropic")  # the SDK would send these
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_not_for_anthropic")
    with FakeAnthropic(api_key=KEY, redacted=True, cache_read_tokens=30) as fake:
        cfg = run_cfg(tmp_path, fake, ["what is 2+2?", "name a colour"])
        assert cfg.api_key_env == "ANTHROPIC_API_KEY"
        result = run_harvest(cfg, progress=False)
        headers = [dict((k.lower(), v) for k, v in r["headers"]) for r in fake.seen]
        bodies = fake.bodies()
    assert result.completed == 2 and result.failed == 0 and result.stopped_reason is None
    # the limiter learned the fake's limits from anthropic-ratelimit-* (the anthropic profile)
    assert result.learned_limits == {"profile": "anthropic", "rpm": 4000, "tpm": 2_000_000}
    for sent in headers:
        assert sent["x-api-key"] == KEY and sent["anthropic-version"] == "2023-06-01"
        assert "authorization" not in sent  # the SDK's bearer header is dropped
        assert not {"openai-organization", "openai-project"} & set(sent)  # no OpenAI ids
    assert all("temperature" not in b and b["thinking"]["budget_tokens"] == 1024 for b in bodies)
    rows = read_completions(cfg.db)
    assert {r.content for r in rows} == {"You asked: what is 2+2?", "You asked: name a colour"}
    for row in rows:
        assert row.reasoning.startswith("The user wrote ") and row.reasoning_kind == "full"
        blocks = json.loads(row.reasoning_blocks)
        assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking"]
        assert row.cached_input_tokens == 30 and row.finish == "stop"
        assert json.loads(row.request_params)["api"] == "anthropic"
        assert row.policy_id == "anthropic"
    # cache reads at the policy's cached-input price ($0.30/Mtok for Claude 3.7 Sonnet)
    expected = sum(
        (r.prompt_tokens - 30) * 3.00 + 30 * 0.30 + r.completion_tokens * 15.00 for r in rows
    )
    assert result.spend_usd == pytest.approx(expected / 1e6)
    assert KEY.encode() not in cfg.db.read_bytes()


def test_a_run_retries_429_and_529_as_the_provider_says_without_sleeping(tmp_path, fake_time):
    from stillroom.harvest import run_harvest

    with FakeAnthropic(api_key=None) as fake:
        prompts = ["busy [[status:429*1]] [[retry:7]]", "overloaded [[status:529*2]]"]
        cfg = run_cfg(tmp_path, fake, prompts, concurrency=1)
        result = run_harvest(cfg, progress=False, clock=fake_time.clock, sleep=fake_time.sleep,
                             seed=1)  # fmt: skip
        per_prompt = fake.stats()["per_prompt"]
    assert result.completed == 2 and result.failed == 0 and result.rate_limited == 1
    assert per_prompt == {prompts[0]: 2, prompts[1]: 3}
    assert 7.0 in fake_time.sleeps  # retry-after, as asked; the 529s back off with jitter


def test_a_refused_parameter_stops_the_run_at_once_naming_the_option(tmp_path):
    from stillroom.harvest import run_harvest

    with FakeAnthropic(api_key=None) as fake:
        # Sonnet 4.5 refuses temperature and top_p together (the fake's pinned rule)
        cfg = run_cfg(tmp_path, fake, [f"q{i}" for i in range(20)], model="claude-sonnet-4-5",
                      thinking_budget=None, top_p=0.9, concurrency=1)  # fmt: skip
        result = run_harvest(cfg, progress=False)
        sent = fake.stats()["total"]
    assert result.stopped_reason == "unsupported_option" and "--temperature" in result.message
    assert sent == 1 and result.failed == 0 and result.completed == 0


def test_a_wrong_key_stops_the_run(tmp_path, monkeypatch):
    from stillroom.harvest import ProviderAuthError, run_harvest

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    with FakeAnthropic(api_key=KEY) as fake:
        cfg = run_cfg(tmp_path, fake, [f"q{i}" for i in range(10)], concurrency=1)
        with pytest.raises(ProviderAuthError, match="ANTHROPIC_API_KEY"):
            run_harvest(cfg, progress=False)
        assert fake.stats()["total"] == 1


def test_sigkill_and_resume_stores_every_prompt_exactly_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with FakeAnthropic(api_key=KEY, latency=0.05) as fake:
        rows, per_prompt, sent, stored = sigkill_then_resume(
            tmp_path, fake, FULL_MODEL, "anthropic"
        )
    assert 0 < stored < 16 and 0 <= sent - stored <= 3  # lost: at most what was in flight
    assert sorted(r.prompt_id for r in rows) == sorted({r.prompt_id for r in rows})
    assert len(rows) == 16 and sum(c - 1 for c in per_prompt.values()) == sent - stored
    assert all(r.reasoning_kind == "full" and r.reasoning_blocks for r in rows)


def test_a_full_thinking_trace_round_trips_through_export_byte_for_byte(tmp_path, monkeypatch):
    from stillroom.harvest import export_dataset, run_harvest

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    prompt = 'Ünïcödé — ∑ and a "quote"\n on two lines'
    thought = "Step 1: {prompt}\r\n\tStep 2 — ∞ \u2028 done  "  # CRLF, tab, LS, trailing spaces
    with FakeAnthropic(
        api_key=KEY, thought=thought, redacted=True, replies=[("Ünïcödé", "Réponse: ∞ ✓")]
    ) as fake:
        cfg = run_cfg(tmp_path, fake, [prompt])
        run_harvest(cfg, progress=False)
        (served,) = fake.responses
    returned = next(b for b in served["content"] if b["type"] == "thinking")
    out = export_dataset(cfg.db, tmp_path / "out.jsonl", reasoning="field")
    lines = out.path.read_text(encoding="utf-8").split("\n")  # (splitlines splits at U+2028)
    (record,) = [json.loads(line) for line in lines if line]
    assistant = record["messages"][-1]
    assert record["reasoning"].encode() == returned["thinking"].encode()
    assert assistant["reasoning_content"].encode() == returned["thinking"].encode()
    assert assistant["content"].encode() == "Réponse: ∞ ✓".encode()
    assert record["messages"][0]["content"] == prompt
    # the raw blocks (signature, redacted data) come back as the provider sent them
    kept = [b for b in served["content"] if b["type"] in ("thinking", "redacted_thinking")]
    assert json.loads(record["reasoning_blocks"]) == kept and record["reasoning_kind"] == "full"
    think = export_dataset(cfg.db, tmp_path / "think.jsonl", reasoning="think")
    (inline,) = [json.loads(x) for x in think.path.read_text(encoding="utf-8").split("\n") if x]
    expected = f"<think>\n{returned['thinking']}\n</think>\n\nRéponse: ∞ ✓"
    assert inline["messages"][-1]["content"] == expected
    # and it becomes `train sft --reasoning think` data as is (finish end_turn -> stop)
    from stillroom.train._data import load_dataset

    data = load_dataset(cfg.db, reasoning="think", eval_fraction=0.0)
    (example,) = data.train
    trimmed = f"<think>\n{returned['thinking'].strip()}\n</think>\n\nRéponse: ∞ ✓"
    assert example.completion[0]["content"] == trimmed  # train trims the ends, by design
    assert data.summary()["reasoning_kinds"] == {"full": 1}
