"""The ``gemini`` dialect against the strict loopback ``generateContent`` (``FakeGemini``)
and the pinned payloads it is built from."""

from __future__ import annotations

import json

import httpx
import pytest

from stillroom.harvest._dialect import RequestOptions, dialect_for, infer_api
from stillroom.harvest._dialect_gemini import retry_delay
from stillroom.harvest._header_profiles import profile_for
from stillroom.harvest.errors import HarvestConfigError
from stillroom.harvest.testing import FakeGemini, pinned_payload
from tests.harvest.native_runs import native_cfg, sigkill_then_resume

MODEL = "gemini-2.5-flash"
DIALECT = dialect_for("gemini")
HI = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def shared_fake():
    with FakeGemini() as fake:
        yield fake


def send(fake, model, messages, options, key="AIza-test", headers=None) -> httpx.Response:
    """What harvest puts on the wire for one prompt, sent to ``fake``."""
    wire = DIALECT.build(model, messages, options)
    sent = {**(DIALECT.auth_headers(key) if key else {}), **(wire.headers or {}), **(headers or {})}
    return httpx.post(fake.base_url + wire.path, json=wire.body, headers=sent, timeout=10)


def test_the_host_picks_the_dialect():
    assert infer_api("https://generativelanguage.googleapis.com") == "gemini"
    assert DIALECT.key_env == "GEMINI_API_KEY"
    assert DIALECT.auth_headers("k") == {"x-goog-api-key": "k"}


def test_build_maps_roles_system_and_generation_config():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
    options = RequestOptions(max_tokens=900, temperature=0.3, top_p=0.9, seed=7, stop=("END",),
                             thinking_budget=256)  # fmt: skip
    wire = DIALECT.build(MODEL, messages, options)
    assert wire.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert wire.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ],
        "generationConfig": {
            "maxOutputTokens": 900, "temperature": 0.3, "topP": 0.9, "seed": 7,
            "stopSequences": ["END"],
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 256},
        },
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }  # fmt: skip
    # a model that does not think gets no thinkingConfig unless asked
    assert (
        "thinkingConfig"
        not in DIALECT.build("gemini-2.0-flash", HI, RequestOptions()).body["generationConfig"]
    )
    # Gemini 3's thinkingLevel from --reasoning-effort; budget 0 turns thinking (and thoughts) off
    level = DIALECT.build("gemini-3-pro", HI, RequestOptions(reasoning_effort="low"))
    assert level.body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True, "thinkingLevel": "LOW"
    }  # fmt: skip
    off = DIALECT.build(MODEL, HI, RequestOptions(thinking_budget=0)).body["generationConfig"]
    assert off["thinkingConfig"] == {"includeThoughts": False, "thinkingBudget": 0}
    from stillroom.harvest import HarvestConfig  # the config lets 0 and -1 through to Gemini

    base = {
        "prompts": [],
        "db": "x.duckdb",
        "base_url": "https://generativelanguage.googleapis.com",
    }
    assert HarvestConfig(**base, model=MODEL, thinking_budget=-1).thinking_budget == -1
    with pytest.raises(HarvestConfigError, match="thinking_budget"):
        HarvestConfig(**base, model=MODEL, thinking_budget=-2)
    # --extra-body's generationConfig merges into harvest's (None removes a field)
    extra = RequestOptions(extra_body={"generationConfig": {"topK": 40, "temperature": None}})
    config = DIALECT.build(MODEL, HI, extra).body["generationConfig"]
    assert config["topK"] == 40 and "temperature" not in config and config["maxOutputTokens"]


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (RequestOptions(thinking_budget=512, reasoning_effort="low"), "not both"),
        (RequestOptions(reasoning_effort="extreme"), "--reasoning-effort extreme"),
        (RequestOptions(thinking_budget=-5), "--thinking-budget -5"),
        (RequestOptions(top_logprobs=2), "--top-logprobs"),
    ],
)
def test_options_gemini_cannot_take_fail_before_any_request(options, names):
    with pytest.raises(HarvestConfigError, match=names):
        DIALECT.build(MODEL, HI, options)


def test_success_returns_thought_summaries_and_bills_thoughts_as_output():
    with FakeGemini(cached_tokens=6) as fake:
        resp = send(fake, MODEL, HI, RequestOptions(max_tokens=200, thinking_budget=512))
        (sent,) = fake.bodies()
        (seen,) = fake.seen
    assert resp.status_code == 200, resp.text
    assert dict(seen["headers"])["x-goog-api-key"] == "AIza-test"
    assert sent["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    usage = resp.json()["usageMetadata"]
    answer = DIALECT.parse(resp.json(), None)
    assert answer.content == "You asked: hello there"
    assert answer.reasoning.startswith("**Reading the question**")
    assert answer.reasoning_kind == "summary"  # Gemini returns thought summaries
    assert answer.reasoning_tokens == usage["thoughtsTokenCount"] == 24
    assert answer.completion_tokens == usage["candidatesTokenCount"] + 24  # outside, added
    assert answer.cached_input_tokens == 6 and answer.prompt_tokens == usage["promptTokenCount"]
    (signed,) = json.loads(answer.reasoning_blocks)
    assert signed["part"] == 1 and signed["thought"] is False and signed["thoughtSignature"]
    assert (answer.finish_reason, answer.finish) == ("STOP", "stop")
    assert answer.request_id == resp.json()["responseId"]


def test_without_include_thoughts_no_thought_parts_come_back():
    with FakeGemini() as fake:
        resp = send(fake, MODEL, HI, RequestOptions(extra_body={
            "generationConfig": {"thinkingConfig": {"includeThoughts": False}}}))  # fmt: skip
    answer = DIALECT.parse(resp.json(), None)
    assert answer.reasoning is None and answer.reasoning_kind == "none"
    assert answer.reasoning_tokens == 24  # it thought all the same, and was billed for it


def test_the_pinned_responses_parse():
    pinned = DIALECT.parse(pinned_payload("gemini", "response_thoughts")["body"], None)
    assert pinned.content == "17 × 23 = 391." and pinned.completion_tokens == 8 + 96
    assert pinned.cached_input_tokens == 4 and pinned.teacher_model == "gemini-2.5-flash"
    cut = DIALECT.parse(pinned_payload("gemini", "response_max_tokens")["body"], None)
    assert (cut.finish, cut.content) == ("length", "The first step is")
    blocked = DIALECT.parse(pinned_payload("gemini", "response_safety")["body"], None)
    assert (blocked.finish_reason, blocked.finish, blocked.content) == ("SAFETY", "refusal", "")
    prompt_blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}}
    assert DIALECT.parse(prompt_blocked, None).finish == "refusal"


def test_truncation_and_safety_from_the_fake(shared_fake):
    cut = send(shared_fake, MODEL, HI, RequestOptions(max_tokens=26, thinking_budget=512))
    answer = DIALECT.parse(cut.json(), None)
    assert (answer.finish_reason, answer.finish) == ("MAX_TOKENS", "length")
    assert answer.content == "You asked: hello there"[:8]  # 26 - 24 thought tokens = 2 tokens
    blocked = send(shared_fake, MODEL, [{"role": "user", "content": "[[stop:safety]]"}],
                   RequestOptions())  # fmt: skip
    assert DIALECT.parse(blocked.json(), None).finish == "refusal"


def test_the_fake_refuses_what_the_api_refuses(shared_fake):
    no_key = httpx.post(
        shared_fake.base_url + "/v1beta/models/gemini-2.5-flash:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    )
    assert no_key.status_code == 403
    bearer = send(shared_fake, MODEL, HI, RequestOptions(), key=None,
                  headers={"Authorization": "Bearer AIza-test"})  # fmt: skip
    assert bearer.status_code == 401
    wrong = send(shared_fake, MODEL, HI, RequestOptions(), key="AIza-wrong")
    assert wrong.status_code == 400 and DIALECT.classify(400, wrong.content, {}).kind == "auth"
    unknown = send(shared_fake, MODEL, HI, RequestOptions(extra_body={"logprobs": 3}))
    verdict = DIALECT.classify(unknown.status_code, unknown.content, unknown.headers)
    assert unknown.status_code == 400 and verdict.kind == "stop"
    assert "Remove 'logprobs' from --extra-body" in verdict.message
    nested = send(shared_fake, MODEL, HI, RequestOptions(
        extra_body={"generationConfig": {"thinkingConfig": {"budget": 1}}}))  # fmt: skip
    assert "Unknown name \\\"budget\\\" at 'generation_config.thinking_config'" in nested.text


@pytest.mark.parametrize(
    ("status", "name", "kind", "names"),
    [
        (400, "invalid_argument", "stop", "--extra-body"),
        (400, "api_key_invalid", "auth", ""),
        (401, "unauthenticated", "auth", ""),
        (403, "permission_denied", "auth", ""),
        (404, "not_found", "stop", "--model"),
        (429, "resource_exhausted", "rate_limited", ""),
        (500, "internal", "retry", ""),
        (503, "unavailable", "retry", ""),
    ],
)
def test_each_documented_error_body_has_its_verdict(shared_fake, status, name, kind, names):
    pinned = pinned_payload("gemini", f"error_{name}")
    assert pinned["status"] == status
    if name != "api_key_invalid":  # the fake answers the rest on demand
        resp = send(shared_fake, MODEL, [{"role": "user", "content": f"[[status:{status}]]"}],
                    RequestOptions())  # fmt: skip
        assert resp.status_code == status and resp.json() == pinned["body"]
    body = json.dumps(pinned["body"]).encode()
    verdict = DIALECT.classify(status, body, {})
    assert verdict.kind == kind and names in verdict.message
    if status == 429:
        assert verdict.retry_after == 26.0  # RetryInfo, not a header


def test_a_429_waits_as_retry_info_says_and_a_daily_quota_stops():
    with FakeGemini(rpm=60, burst_seconds=1.0) as fake:
        first = send(fake, MODEL, HI, RequestOptions())
        second = send(fake, MODEL, HI, RequestOptions())
    assert first.status_code == 200 and second.status_code == 429
    assert "retry-after" not in second.headers
    verdict = DIALECT.classify(429, second.content, second.headers)
    assert verdict.kind == "rate_limited" and 0.5 < verdict.retry_after <= 1.0
    assert retry_delay({"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                     "retryDelay": "45.837906927s"}]}) == 45.837906927  # fmt: skip
    daily = pinned_payload("gemini", "error_resource_exhausted")["body"]
    daily["error"]["details"][0]["violations"][0]["quotaId"] = "GenerateRequestsPerDayPerProject"
    assert DIALECT.classify(429, json.dumps(daily).encode(), {}).kind == "stop"
    requests, tokens = DIALECT.limits(second.headers, profile_for(fake.base_url))
    assert requests.limit is None and tokens.limit is None


def test_a_native_base_url_resolves_the_gemini_policy_and_accept_with_purpose_applies():
    from stillroom import policies

    native = {"base_url": "https://generativelanguage.googleapis.com", "model": "gemini-2.5-pro"}
    with pytest.raises(policies.PolicyNeedsAcceptance):
        policies.resolve_for_harvest(policy_id=None, **native)
    run = policies.resolve_for_harvest(
        policy_id=None, accept=["gemini"], purpose="a narrow extraction model", **native
    )
    assert (run.id, run.accepted, run.purpose) == ("gemini", True, "a narrow extraction model")
    assert run.limits.usd_per_mtok_cached_in == 0.31  # priced cache reads for this model
    # the host alone decides it too (a model name no policy's globs know)
    by_host = policies.resolve_for_harvest(
        policy_id=None, base_url=native["base_url"], model="learnlm-2.0", accept=["gemini"],
        purpose="a narrow extraction model",
    )  # fmt: skip
    assert by_host.id == "gemini"


# -- whole runs: the engine with the gemini dialect, over loopback ---------------------------
KEY = "AIza-run-key-DO-NOT-STORE"


def run_cfg(tmp_path, fake, prompts, **overrides):
    options = {"model": MODEL, "max_tokens": 1024, "thinking_budget": 512, **overrides}
    return native_cfg(
        tmp_path, fake, prompts, api="gemini", purpose="a narrow extraction model", **options
    )


def test_a_run_stores_thought_summaries_signatures_and_thought_tokens(tmp_path, monkeypatch):
    from stillroom.harvest import export_dataset, read_completions, run_harvest

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    thought = "**Plan** — {prompt}\r\n∑ ✓"
    with FakeGemini(api_key=KEY, cached_tokens=5, thought=thought) as fake:
        cfg = run_cfg(tmp_path, fake, ["what is 2+2?", "name a colour"], system="Be brief.")
        assert cfg.api_key_env == "GEMINI_API_KEY"
        result = run_harvest(cfg, progress=False)
        headers = [dict((k.lower(), v) for k, v in r["headers"]) for r in fake.seen]
        bodies, served = fake.bodies(), fake.responses
    assert result.completed == 2 and result.failed == 0
    for sent, body in zip(headers, bodies, strict=True):
        assert sent["x-goog-api-key"] == KEY and "authorization" not in sent
        assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert [c["role"] for c in body["contents"]] == ["user"]
    rows = read_completions(cfg.db)
    for row in rows:
        assert row.reasoning_kind == "summary" and row.reasoning.startswith("**Plan** — ")
        (signed,) = json.loads(row.reasoning_blocks)
        assert signed["thoughtSignature"] and row.cached_input_tokens == 5
        assert row.reasoning_tokens == 24 and row.completion_tokens > 24 and row.finish == "stop"
        assert json.loads(row.request_params)["thinking_budget"] == 512
    out = export_dataset(cfg.db, tmp_path / "out.jsonl")
    records = [json.loads(x) for x in out.path.read_text(encoding="utf-8").split("\n") if x]
    returned = {
        p["text"]
        for r in served
        for p in r["candidates"][0]["content"]["parts"]
        if p.get("thought")
    }
    assert {r["reasoning"] for r in records} == returned  # the summary, exactly as returned
    assert {r["reasoning_kind"] for r in records} == {"summary"}
    assert "Gemini's thoughts), not the trace" in out.card_path.read_text(encoding="utf-8")
    from stillroom.train._data import load_dataset  # `train sft --reasoning think` data

    data = load_dataset(cfg.db, reasoning="think", eval_fraction=0.0)
    by_id = {r.prompt_id: r for r in rows}
    for example in data.train:
        row = by_id[example.prompt_id]
        assert example.completion[0]["content"] == (
            f"<think>\n{row.reasoning}\n</think>\n\n{row.content}"
        )
    assert len(data.train) == 2 and data.summary()["reasoning_kinds"] == {"summary": 2}
    assert KEY.encode() not in cfg.db.read_bytes()


def test_a_run_waits_as_retry_info_says_without_sleeping(tmp_path, fake_time):
    from stillroom.harvest import run_harvest

    with FakeGemini(api_key=None) as fake:
        prompts = ["quota [[status:429*1]] [[retry:26]]", "busy [[status:503*1]]"]
        cfg = run_cfg(tmp_path, fake, prompts, concurrency=1)
        result = run_harvest(cfg, progress=False, clock=fake_time.clock, sleep=fake_time.sleep,
                             seed=1)  # fmt: skip
        per_prompt = fake.stats()["per_prompt"]
    assert result.completed == 2 and result.rate_limited == 1
    assert per_prompt == {prompts[0]: 2, prompts[1]: 2}
    assert 26.0 in fake_time.sleeps  # RetryInfo.retryDelay "26s", no retry-after header


def test_a_refused_field_and_a_wrong_key_stop_the_run(tmp_path, monkeypatch):
    from stillroom.harvest import ProviderAuthError, run_harvest

    with FakeGemini(api_key=None) as fake:
        cfg = run_cfg(tmp_path, fake, [f"q{i}" for i in range(10)], concurrency=1,
                      extra_body={"generationConfig": {"thinking": {"on": True}}})  # fmt: skip
        result = run_harvest(cfg, progress=False)
        assert fake.stats()["total"] == 1
    assert result.stopped_reason == "unsupported_option" and result.failed == 0
    assert "Remove 'thinking' from --extra-body" in result.message
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-wrong")
    with FakeGemini(api_key=KEY) as fake:  # answered 400 API_KEY_INVALID, as Google does
        (tmp_path / "b").mkdir()
        cfg = run_cfg(tmp_path / "b", fake, [f"q{i}" for i in range(10)], concurrency=1)
        with pytest.raises(ProviderAuthError, match="GEMINI_API_KEY"):
            run_harvest(cfg, progress=False)
        assert fake.stats()["total"] == 1


def test_sigkill_and_resume_stores_every_prompt_exactly_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with FakeGemini(api_key=KEY, latency=0.05) as fake:
        rows, per_prompt, sent, stored = sigkill_then_resume(tmp_path, fake, MODEL, "gemini")
    assert 0 < stored < 16 and 0 <= sent - stored <= 3  # lost: at most what was in flight
    assert len(rows) == 16 == len({r.prompt_id for r in rows})
    assert sum(c - 1 for c in per_prompt.values()) == sent - stored
    assert all(r.reasoning_kind == "summary" for r in rows)
