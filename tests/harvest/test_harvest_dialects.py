"""API dialects (``_dialect``): chat to OpenAI reasoning models and the Responses API, over
loopback against fakes built from pinned payloads; keys stay the neutral options'."""

from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from stillroom.harvest import (
    HarvestConfig,
    HarvestConfigError,
    RequestOptions,
    dialect_for,
    export_dataset,
    harvest_status,
    read_completions,
    run_harvest,
)
from stillroom.harvest._dialect import infer_api
from stillroom.harvest._work import sampling_params
from stillroom.harvest.cli import app
from stillroom.harvest.testing import FakeProvider

CHAT, RESPONSES = dialect_for("chat"), dialect_for("responses")
USER = [{"role": "user", "content": "hi"}]
# the shipped policy covering OpenAI's model names on any host (conditional: accepted here)
OPENAI = dict(policy="openai", accept=("openai",), purpose="tests of harvest's OpenAI dialects")
OPENAI_FLAGS = ["--policy", "openai", "--accept", "openai", "--purpose", "tests"]


def cfg(fake, tmp_path, n=3, **kw) -> HarvestConfig:
    prompts = [{"prompt": f"question number {i}"} for i in range(n)]
    base = dict(prompts=prompts, db=tmp_path / "h.duckdb", base_url=fake.base_url,
                model="gpt-5-mini", max_tokens=64, concurrency=4, **OPENAI)  # fmt: skip
    return HarvestConfig(**{**base, **kw})


# -- building requests -------------------------------------------------------------------------
def test_chat_maps_max_tokens_and_sampling_by_the_one_model_table():
    o = RequestOptions(max_tokens=99, temperature=0.2, top_p=0.9, seed=7, stop=("END",))
    gpt5 = CHAT.build("gpt-5-mini", USER, o).body
    assert gpt5["max_completion_tokens"] == 99 and "max_tokens" not in gpt5
    assert not {"temperature", "top_p"} & set(gpt5) and (gpt5["seed"], gpt5["stop"]) == (7, ["END"])
    for model in ("o3", "o4-mini", "o1-2024-12-17"):
        assert "max_completion_tokens" in CHAT.build(model, USER, o).body
    chat_latest = CHAT.build("gpt-5-chat-latest", USER, o).body
    assert chat_latest["temperature"] == 0.2 and "max_completion_tokens" in chat_latest
    for model in (
        "qwen3-8b",
        "openai/gpt-5",
        "llama-3.1-8b",
        "omni-7b",
    ):  # llama.cpp, vLLM, routers
        body = CHAT.build(model, USER, o).body
        assert body["max_tokens"] == 99 and body["temperature"] == 0.2, model


def test_extra_body_is_merged_last_and_null_removes_a_field():
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "max_tokens": None,
             "max_completion_tokens": 32, "reasoning": {"effort": "high"}}  # fmt: skip
    o = RequestOptions(extra_body=extra, reasoning_effort="low")
    body = CHAT.build("qwen3", USER, o).body
    assert "max_tokens" not in body and body["max_completion_tokens"] == 32
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["reasoning"] == {"effort": "high"} and body["reasoning_effort"] == "low"


def test_options_a_dialect_cannot_send_are_errors_naming_the_flag():
    with pytest.raises(HarvestConfigError, match="--top-logprobs"):
        CHAT.build("o3", USER, RequestOptions(top_logprobs=2))
    with pytest.raises(HarvestConfigError, match="--thinking-budget"):
        CHAT.build("qwen3", USER, RequestOptions(thinking_budget=2048))
    for option in (dict(seed=1), dict(stop=("x",)), dict(top_logprobs=1)):
        with pytest.raises(HarvestConfigError, match="--api responses does not send it"):
            RESPONSES.build("o3", USER, RequestOptions(**option))


def test_neutral_params_are_the_keys_of_before_and_new_options_add_fields():
    old = {"model": "m", "max_tokens": 16, "temperature": 0.0, "logprobs": True, "top_logprobs": 2}
    assert sampling_params(model="m", max_tokens=16, temperature=0.0, top_p=None,
                           top_logprobs=2) == old  # fmt: skip
    params = RequestOptions(reasoning_effort="high", seed=3).params("m", "responses")
    assert (params["reasoning_effort"], params["seed"], params["api"]) == ("high", 3, "responses")
    assert RequestOptions.from_params(params)[1].reasoning_effort == "high"


def test_api_is_inferred_from_native_hosts_only():
    assert infer_api("https://api.anthropic.com") == "anthropic"
    assert infer_api("https://generativelanguage.googleapis.com") == "gemini"
    assert infer_api("https://generativelanguage.googleapis.com/v1beta/openai/") == "gemini"
    assert infer_api("https://api.openai.com/v1") == "chat"
    assert infer_api("https://openrouter.ai/api/v1") == "chat"


def test_responses_request_asks_for_summaries_and_encrypted_reasoning_unstored():
    body = RESPONSES.build("o4-mini", USER, RequestOptions(reasoning_effort="high")).body
    assert body["input"] == USER and body["max_output_tokens"] == 512 and body["store"] is False
    assert body["reasoning"] == {"summary": "auto", "effort": "high"}
    assert body["include"] == ["reasoning.encrypted_content"] and "temperature" not in body
    plain = RESPONSES.build("gpt-4.1", USER, RequestOptions()).body
    assert plain["temperature"] == 0.7 and "reasoning" not in plain


# -- chat against a reasoning model ------------------------------------------------------------
def test_chat_reasoning_model_answers_with_hidden_reasoning_tokens(tmp_path):
    with FakeProvider(reasoning_model=True) as fake:
        result = run_harvest(cfg(fake, tmp_path), progress=False)
    assert (result.completed, result.failed, result.stopped_reason) == (3, 0, None)
    rows = read_completions(tmp_path / "h.duckdb")
    assert {(r.reasoning_tokens, r.finish, r.cached_input_tokens) for r in rows} == {(8, "stop", 0)}
    assert {r.reasoning_kind for r in rows} == {"none"}
    with duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True) as con:
        assert con.execute("SELECT api FROM runs").fetchall() == [("chat",)]


def test_an_unsupported_parameter_stops_the_run_at_once_naming_the_option(tmp_path):
    # a reasoning model the table does not know gets max_tokens: one 400, then the run stops
    with FakeProvider(reasoning_model=True) as fake:
        result = run_harvest(cfg(fake, tmp_path, n=6, model="o-future", policy="self-hosted"),
                             progress=False)  # fmt: skip
        sent = fake.stats()["total"]
    assert (result.stopped_reason, result.failed, result.completed, sent) == (
        "unsupported_option", 0, 0, 1)  # fmt: skip
    assert "Change --max-tokens" in result.message and "max_completion_tokens" in result.message
    assert harvest_status(tmp_path / "h.duckdb").failed == 0  # nothing recorded per prompt
    # the way out the message names works, at the same store
    extra = {"max_tokens": None, "max_completion_tokens": 64, "temperature": None}
    with FakeProvider(reasoning_model=True) as fake:
        again = run_harvest(cfg(fake, tmp_path, n=6, model="o-future", extra_body=extra,
                                policy="self-hosted"), progress=False)  # fmt: skip
    assert (again.completed, again.stopped_reason) == (6, None)


def test_an_unsupported_temperature_stops_naming_the_flag_via_the_cli(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(4)))
    with FakeProvider(reasoning_model=True) as fake:
        args = ["run", "--prompts", str(prompts), "--db", str(tmp_path / "h.duckdb"),
                "--base-url", fake.base_url, "--model", "o-future", "--policy", "self-hosted",
                "--extra-body", '{"max_tokens": null, "max_completion_tokens": 64}',
                "--no-progress"]  # fmt: skip
        out = CliRunner().invoke(app, args)
        assert fake.stats()["total"] == 1
    assert out.exit_code == 1, out.output
    assert "--temperature" in out.output and "does not support 0.7" in out.output


def test_truncation_is_counted_in_status_and_the_closing_line(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"prompt {i}"}) + "\n" for i in range(3)))
    db = tmp_path / "h.duckdb"
    with FakeProvider(reasoning_model=True) as fake:
        args = ["run", "--prompts", str(prompts), "--db", str(db), "--base-url", fake.base_url,
                "--model", "gpt-5", *OPENAI_FLAGS, "--max-tokens", "10",
                "--no-progress"]  # fmt: skip
        out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "3 stopped at the --max-tokens limit" in " ".join(out.output.split())
    status = json.loads(CliRunner().invoke(app, ["status", "--db", str(db), "--json"]).output)
    assert status["length_stops"] == 3 and list(status["length_stops_by_run"].values()) == [3]
    rows = read_completions(db)
    assert {(r.finish, r.finish_reason, r.reasoning_tokens) for r in rows} == {
        ("length", "length", 8)
    }


# -- the Responses API -------------------------------------------------------------------------
def test_responses_success_keeps_the_summary_and_the_opaque_encrypted_reasoning(tmp_path):
    with FakeProvider(api="responses", api_key="sk-x") as fake:
        import os

        os.environ["RESP_KEY"] = "sk-x"
        try:
            result = run_harvest(cfg(fake, tmp_path, model="o4-mini", api="responses",
                                     api_key_env="RESP_KEY"), progress=False)  # fmt: skip
        finally:
            del os.environ["RESP_KEY"]
    assert (result.completed, result.failed, result.length_stops) == (3, 0, 0)
    row = read_completions(tmp_path / "h.duckdb")[0]
    assert row.content == "You asked: question number 0" and row.reasoning_kind == "summary"
    assert row.reasoning.startswith("**Reading**") and row.finish == "stop"
    assert (row.finish_reason, row.reasoning_tokens, row.cached_input_tokens) == ("completed", 8, 0)
    block = json.loads(row.reasoning_blocks)[0]
    assert block["type"] == "reasoning" and block["encrypted_content"].startswith("gAAAAB")
    assert json.loads(row.request_params)["api"] == "responses"


def test_responses_truncation_is_a_length_stop(tmp_path):
    with FakeProvider(api="responses") as fake:
        result = run_harvest(cfg(fake, tmp_path, model="o3", api="responses", max_tokens=12),
                             progress=False)  # fmt: skip
    assert (result.completed, result.length_stops) == (3, 3)
    row = read_completions(tmp_path / "h.duckdb")[0]
    assert (row.finish_reason, row.finish, row.content) == (
        "max_output_tokens",
        "length",
        "You asked: quest",
    )


def test_responses_documented_rejection_stops_the_run(tmp_path):
    # the fake refuses temperature for a reasoning model; gpt-4.1's rule sends it
    with FakeProvider(api="responses", reasoning_model=True) as fake:
        result = run_harvest(cfg(fake, tmp_path, model="gpt-4.1", api="responses"),
                             progress=False)  # fmt: skip
        assert fake.stats()["total"] == 1
    assert result.stopped_reason == "unsupported_option" and "--temperature" in result.message
    # an option the API lacks is refused before anything is sent or recorded
    with pytest.raises(HarvestConfigError, match="--seed"):
        run_harvest(cfg(fake, tmp_path, model="o3", api="responses", seed=1), progress=False)


def test_responses_429_with_retry_headers_is_waited_out(tmp_path):
    with FakeProvider(api="responses", rpm=600, burst_seconds=0.1) as fake:
        result = run_harvest(cfg(fake, tmp_path, n=5, model="o3", api="responses",
                                 limits_profile="none"), progress=False)  # fmt: skip
        by_status = fake.stats()["by_status"]
    assert result.completed == 5 and result.rate_limited == int(by_status["429"]) > 0
    verdict = RESPONSES.classify(429, b'{"error": {"message": "slow"}}', {"retry-after-ms": "250"})
    assert (verdict.kind, verdict.retry_after) == ("rate_limited", 0.25)


def test_a_responses_summary_exports_and_builds_think_training_data(tmp_path):
    from stillroom.train._data import load_dataset

    with FakeProvider(api="responses") as fake:
        run_harvest(cfg(fake, tmp_path, n=4, model="o3", api="responses"), progress=False)
    db = tmp_path / "h.duckdb"
    rows = {r.prompt_id: r for r in read_completions(db)}
    res = export_dataset(db, tmp_path / "out.jsonl", reasoning="think")
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for rec in records:
        row = rows[rec["prompt_id"]]
        assert rec["reasoning"] == row.reasoning and rec["reasoning_kind"] == "summary"
        assert (
            rec["messages"][-1]["content"] == f"<think>\n{row.reasoning}\n</think>\n\n{row.content}"
        )
    assert "reasoning kinds: summary 4" in res.card_path.read_text()
    data = load_dataset(db, reasoning="think", eval_fraction=0.25)
    example = (data.train + data.eval)[0]
    assert example.completion[0]["content"] == rec_content(rows[example.prompt_id])
    assert data.summary()["reasoning_kinds"] == {"summary": 4}


def rec_content(row) -> str:
    return f"<think>\n{row.reasoning}\n</think>\n\n{row.content}"


# -- cost -------------------------------------------------------------------------------------
def test_cached_input_is_priced_where_the_policy_lists_a_price(tmp_path):
    import dataclasses
    from datetime import date

    from stillroom.harvest import completion_row, write_completions
    from stillroom.harvest._budget import Caps, RunLimits
    from stillroom.harvest._store import Store

    limits = RunLimits(None, None, None, None, usd_per_mtok_in=2.0, usd_per_mtok_out=8.0,
                       usd_per_mtok_cached_in=0.5)  # fmt: skip
    caps = Caps(limits, today=date(2026, 12, 3), requests_today=0, spent_usd=0.0)
    assert caps.cost(1e6, 1e6, cached_in=4e5) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 8.0)
    unpriced = dataclasses.replace(limits, usd_per_mtok_cached_in=None)
    assert Caps(unpriced, today=date(2026, 12, 3), requests_today=0, spent_usd=0.0).cost(
        1e6, 0, cached_in=4e5) == pytest.approx(2.0)  # fmt: skip
    row = completion_row(prompt_id="p", messages=USER, content="a", prompt_tokens=1_000_000,
                         completion_tokens=0, cached_input_tokens=400_000, policy_id="openai")  # fmt: skip
    db = write_completions(tmp_path / "h.duckdb", [row])
    store = Store(db)
    try:
        prices = dict(usd_per_mtok_in=2.0, usd_per_mtok_out=8.0)
        assert store.spend_for_policy("openai", **prices) == pytest.approx(2.0)
        cached = store.spend_for_policy("openai", **prices, usd_per_mtok_cached_in=0.5)
        assert cached == pytest.approx(1.4)
    finally:
        store.close()
