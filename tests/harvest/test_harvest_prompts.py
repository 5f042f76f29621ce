"""Prompt inputs: every format, and errors that name the file and line before any request."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stillroom.harvest import (
    HarvestConfig,
    HarvestConfigError,
    PromptFileError,
    load_prompts,
    run_harvest,
)
from stillroom.harvest._work import idempotency_key, plan_work, sampling_params
from tests.harvest.conftest import ok, scripted_client, write_jsonl


def test_jsonl_prompt_messages_and_ids(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "hi", "id": "a"},
            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "yo"}]},
            {"prompt": "x", "id": 7},
        ],
    )
    prompts = load_prompts(path, system="Default")
    assert [p.id for p in prompts][0::2] == ["a", "7"]
    assert prompts[0].messages == (
        {"role": "system", "content": "Default"},
        {"role": "user", "content": "hi"},
    )
    assert prompts[1].messages[0]["content"] == "S"  # an own system message is kept
    assert len(prompts[1].id) == 24  # hash of the messages


def test_gzip_csv_parquet_and_text(tmp_path):
    with gzip.open(tmp_path / "p.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"prompt": "gz"}) + "\n")
    with (tmp_path / "p.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "other"])
        w.writerow(["c1", "from, csv", "z"])
    pq.write_table(pa.table({"prompt": ["pq1", "pq2"]}), tmp_path / "p.parquet")
    (tmp_path / "p.txt").write_text("line one\n\nline two\n")
    assert load_prompts(tmp_path / "p.jsonl.gz")[0].messages[0]["content"] == "gz"
    assert [(p.id, p.messages[0]["content"]) for p in load_prompts(tmp_path / "p.csv")] == [
        ("c1", "from, csv")
    ]
    assert len(load_prompts(tmp_path / "p.parquet")) == 2
    assert [p.messages[0]["content"] for p in load_prompts(tmp_path / "p.txt")] == [
        "line one",
        "line two",
    ]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "ok"}', "{not json"], "p.jsonl line 2: invalid JSON"),
        (
            ['{"prompt": "ok"}', "", '{"text": "x"}'],
            "p.jsonl line 3: needs a 'prompt' or a 'messages'",
        ),
        (['{"messages": [{"role": "robot", "content": "x"}]}'], r"line 1: messages\[0\].role"),
        (
            ['{"prompt": "a", "id": "x"}', '{"prompt": "b", "id": "x"}'],
            "line 2: id 'x' is already used .* line 1",
        ),
        (['{"prompt": ""}'], "line 1: 'prompt' must be a non-empty string"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PromptFileError, match=message):
        load_prompts(path)


def test_csv_without_prompt_column(tmp_path):
    (tmp_path / "p.csv").write_text("question\nhi\n")
    with pytest.raises(PromptFileError, match=r"p\.csv line 1: CSV needs a 'prompt' column"):
        load_prompts(tmp_path / "p.csv")


def test_bad_line_fails_before_any_request(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": 3}\n')
    client = scripted_client([])
    cfg = HarvestConfig(
        prompts=path,
        db=tmp_path / "h.duckdb",
        base_url="http://t/v1",
        model="m",
        policy="self-hosted",
    )
    with pytest.raises(PromptFileError, match="line 2"):
        run_harvest(cfg, http_client=client, progress=False)
    assert client.seen == []
    assert not (tmp_path / "h.duckdb").exists()


def test_identical_prompts_are_kept_once(tmp_path):
    assert len(load_prompts([{"prompt": "same"}, {"prompt": "same"}])) == 1


def test_same_messages_under_two_ids_are_asked_and_stored_once(tmp_path):
    prompts = [{"prompt": "same", "id": "a"}, {"prompt": "other", "id": "b"},
               {"prompt": "same", "id": "c"}]  # fmt: skip
    params = sampling_params(
        model="m", max_tokens=8, temperature=1.0, top_p=None, top_logprobs=None
    )
    items = plan_work(load_prompts(prompts), params, samples=2)
    assert [(i.prompt_id, i.sample_index) for i in items] == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 1),
    ]
    client = scripted_client([ok()])
    cfg = HarvestConfig(prompts=prompts, db=tmp_path / "h.duckdb", base_url="http://t/v1",
                        model="m", policy="self-hosted", samples=2)  # fmt: skip
    result = run_harvest(cfg, http_client=client, progress=False)
    assert (result.planned, result.completed, len(client.seen)) == (4, 4, 4)


def test_idempotency_key_covers_messages_model_params_and_sample():
    msgs = [{"role": "user", "content": "q"}]
    p = sampling_params(model="m", max_tokens=10, temperature=0.5, top_p=None, top_logprobs=None)
    k = idempotency_key(msgs, p, 0)
    assert k == idempotency_key(list(msgs), dict(reversed(list(p.items()))), 0)  # canonical
    assert k != idempotency_key(msgs, p, 1)
    assert k != idempotency_key(msgs, {**p, "temperature": 0.6}, 0)
    assert k != idempotency_key(msgs, {**p, "model": "n"}, 0)
    assert k != idempotency_key([{"role": "user", "content": "q2"}], p, 0)
    items = plan_work(load_prompts([{"prompt": "q"}]), p, samples=3)
    assert [i.sample_index for i in items] == [0, 1, 2] and len({i.key for i in items}) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("concurrency", 0), ("temperature", 3.0), ("top_p", 0.0), ("samples", 0), ("rpm", 0),
     ("base_url", "teacher.test"), ("top_logprobs", 21), ("max_wait", 0)],
)  # fmt: skip
def test_config_validation_names_the_field(tmp_path, field, value):
    kw = dict(
        prompts=[{"prompt": "x"}], db=tmp_path / "h.duckdb", base_url="http://t/v1", model="m"
    )
    kw[field] = value
    with pytest.raises(HarvestConfigError, match=f"HarvestConfig.{field}="):
        HarvestConfig(**kw)


def test_a_json_array_is_read_as_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"prompt": "one", "id": "a"}, "two", {"messages": [
        {"role": "user", "content": "three"}]}], indent=2))  # fmt: skip
    prompts = load_prompts(path)
    assert [p.messages[-1]["content"] for p in prompts] == ["one", "two", "three"]
    assert prompts[0].id == "a"
    (tmp_path / "obj.json").write_text('{"prompt": "not in an array"}')
    with pytest.raises(
        PromptFileError, match=r"obj\.json: a \.json prompt file must hold an array"
    ):
        load_prompts(tmp_path / "obj.json")
    (tmp_path / "bad.json").write_text('[\n{"prompt": "a"},\n{"prompt": }\n]')
    with pytest.raises(PromptFileError, match=r"bad\.json line 3: invalid JSON"):
        load_prompts(tmp_path / "bad.json")


@pytest.mark.parametrize("name", ["prompts.yaml", "prompts", "p.md.gz"])
def test_an_unknown_extension_is_refused_naming_the_file(tmp_path, name):
    (tmp_path / name).write_text('[\n  {"prompt": "hi"}\n]\n')
    with pytest.raises(PromptFileError, match=rf"{name}: unknown prompt file extension"):
        load_prompts(tmp_path / name)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.json", '[{"prompt": "fine"}, {"prompt": "also fine"}, {"prompt": 3}]', "item 2"),
        ("p.yaml", "- prompt: fine\n", "unknown prompt file extension"),
    ],
)
def test_a_bad_json_item_or_extension_fails_before_any_request(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    client = scripted_client([])
    cfg = HarvestConfig(
        prompts=path, db=tmp_path / "h.duckdb", base_url="http://t/v1", model="m",
        policy="self-hosted",
    )  # fmt: skip
    with pytest.raises(PromptFileError, match=message):
        run_harvest(cfg, http_client=client, progress=False)
    assert client.seen == []
    assert not (tmp_path / "h.duckdb").exists()
