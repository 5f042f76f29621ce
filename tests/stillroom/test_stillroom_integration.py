"""harvest against the real embedded teacher on loopback, then a short real train on it."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.stillroom.conftest import TEST_SYSTEM, needs_teacher, needs_train

pytestmark = [pytest.mark.slow, pytest.mark.teacher, needs_teacher]

PROMPTS = [
    {"id": "colour", "prompt": "Name a colour."},
    {"id": "fruit", "prompt": "Name a fruit."},
    {"id": "count", "prompt": "Count to three."},
    {"id": "hello", "prompt": "Say hello."},
    {"id": "sky", "prompt": "What colour is the sky?"},
    {"id": "cat", "prompt": "What sound does a cat make?"},
]


@pytest.fixture(scope="module")
def harvested(teacher, tmp_path_factory) -> Path:
    from stillroom.harvest import HarvestConfig, run_harvest

    db = tmp_path_factory.mktemp("integration") / "harvest.duckdb"
    result = run_harvest(
        HarvestConfig(
            prompts=PROMPTS,
            db=db,
            base_url=teacher.base_url,
            model=teacher.model,
            policy="smollm2",
            system=TEST_SYSTEM,
            max_tokens=16,
            temperature=0.0,
            top_logprobs=3,
            concurrency=2,
        ),
        progress=False,
    )
    assert (result.completed, result.failed, result.stopped_reason) == (len(PROMPTS), 0, None)
    return db


def test_harvest_stores_answers_system_prompt_and_top_logprobs(harvested):
    con = duckdb.connect(str(harvested), read_only=True)
    rows = con.execute(
        "SELECT prompt_id, messages, system_prompt, content, top_logprobs, completion_tokens, "
        "teacher_model, policy_id, finish_reason FROM completions ORDER BY prompt_id"
    ).fetchall()
    con.close()
    assert sorted(r[0] for r in rows) == sorted(p["id"] for p in PROMPTS)
    for pid, messages, system, content, logprobs, tokens, model, policy, finish in rows:
        sent = json.loads(messages)
        assert sent[0] == {"role": "system", "content": TEST_SYSTEM}
        assert sent[-1]["content"] == next(p["prompt"] for p in PROMPTS if p["id"] == pid)
        assert system == TEST_SYSTEM
        assert content.strip(), f"{pid}: empty answer"
        assert (model, policy) == ("smollm2-135m-instruct", "smollm2")
        assert finish in ("stop", "length")
        entries = json.loads(logprobs)
        assert len(entries) == tokens, f"{pid}: one logprob entry per generated token"
        for entry in entries:
            assert entry["logprob"] <= 0
            assert len(entry["top_logprobs"]) == 3
            assert entry["top_logprobs"][0]["logprob"] >= entry["top_logprobs"][-1]["logprob"]
        # the stored tokens spell the stored answer
        assert "".join(e["token"] for e in entries).strip() == content.strip()


@needs_train
@pytest.mark.train
def test_a_short_train_on_the_real_harvest_writes_an_adapter(harvested, tmp_path):
    from stillroom.train import TrainConfig, train_sft

    result = train_sft(
        TrainConfig(
            db=harvested,
            out=tmp_path / "student",
            drop_system=True,
            reasoning="drop",
            finish_reasons=("stop", "length"),
            eval_fraction=0.0,
            max_steps=2,
            per_device_train_batch_size=2,
            max_length=128,
            logging_steps=1,
            progress=False,
        )
    )
    assert (result.adapter_dir / "adapter_config.json").is_file()
    assert any(result.adapter_dir.glob("adapter_model.*"))
    assert result.metrics.get("train_loss") is not None
    card = result.model_card_path.read_text()
    assert "smollm2" in card
