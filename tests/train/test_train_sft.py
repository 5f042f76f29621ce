"""A real TRL SFT run of a LoRA student on SmolLM2-135M, then its evaluation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.policies.conftest import write_policy
from tests.train.conftest import capital_rows, make_harvest_db, row

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from transformers import TrainerCallback  # noqa: E402

from stillroom.policies import obligations  # noqa: E402
from stillroom.train import (  # noqa: E402
    METRIC_NAMES,
    BaseModelError,
    EvalConfig,
    TrainConfig,
    evaluate_student,
    render_report,
    train_sft,
)
from stillroom.train._card import apply_name_prefix  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.slow]


class WeightWatch(TrainerCallback):
    """Snapshots every parameter before training and after it."""

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        self.rows = list(kw["train_dataloader"].dataset)  # what the trainer trains on

    def on_train_end(self, args, state, control, model=None, **kw):
        self.after = {n: p.detach().clone() for n, p in model.named_parameters()}


# No shipped policy forbids training for every purpose (docs/policies.md), so the forbidden
# teacher is a policy file of the user's own, found through STILLROOM_POLICY_PATH.
@pytest.fixture(scope="module")
def forbidding_policy(tmp_path_factory: pytest.TempPathFactory):
    policy_dir = tmp_path_factory.mktemp("policies")
    clause = "You may not use outputs to train or improve any machine learning model."
    write_policy(policy_dir, "no-training", verdict="forbidden", clause=clause)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STILLROOM_POLICY_PATH", str(policy_dir))
        yield "no-training"


@pytest.fixture(scope="module")
def run(base_dir: Path, tmp_path_factory: pytest.TempPathFactory, forbidding_policy: str):
    tmp = tmp_path_factory.mktemp("sft")
    # a Llama-licensed teacher (name prefix, NOTICE) and one row from a teacher whose terms
    # forbid training on its outputs (real policy files, loaded by the policies package)
    rows = [replace(r, policy_id="llama-3.1") for r in capital_rows(12, samples=2)]
    rows.append(
        row("oa", "What is the capital of Peru?", "Lima, of course.", policy_id=forbidding_policy)
    )
    db = make_harvest_db(tmp / "harvest.duckdb", rows)
    watch = WeightWatch()
    result = train_sft(
        TrainConfig(
            db=db,
            out=tmp / "student",
            base=str(base_dir),
            max_steps=3,
            per_device_train_batch_size=2,
            max_length=64,
            eval_fraction=0.25,
            learning_rate=1e-3,
            logging_steps=1,
            progress=False,
            merge=True,
            name="capitals",
        ),
        callbacks=[watch],
    )
    return db, result, watch


def test_adapter_weights_change_and_base_weights_do_not(run) -> None:
    _, _, watch = run
    lora = [n for n in watch.trainable if "lora_" in n]
    assert lora and watch.trainable == set(lora)  # only LoRA parameters train
    changed = [n for n in lora if not torch.equal(watch.before[n], watch.after[n])]
    assert any("lora_B" in n for n in changed) and any("lora_A" in n for n in changed)
    frozen = [n for n in watch.before if n not in watch.trainable]
    assert len(frozen) > 200
    assert all(torch.equal(watch.before[n], watch.after[n]) for n in frozen)


def test_outputs_written(run, base_dir: Path, forbidding_policy: str) -> None:
    _, result, _ = run
    from safetensors.torch import load_file

    assert (result.adapter_dir / "adapter_config.json").is_file()
    adapter = load_file(result.adapter_dir / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.items())
    metrics = json.loads(result.metrics_path.read_text())
    assert metrics["global_step"] == 3 and metrics["train_tokens"] > 0
    assert metrics["loss_masking"].startswith("completion-only")
    assert metrics["eval_loss"] > 0 and metrics["data"]["eval_prompts"] >= 1
    used = json.loads(result.config_path.read_text())
    assert used["max_steps"] == 3 and used["base_dir"] == str(base_dir)
    ob = obligations(["llama-3.1", forbidding_policy])
    assert forbidding_policy in ob.training_forbidden
    assert metrics["data"]["dropped_policy_forbidden"] == 1
    assert metrics["data"]["policy_ids"] == ["llama-3.1"]
    assert result.name == apply_name_prefix("capitals", obligations(["llama-3.1"]).name_prefix)
    card = result.model_card_path.read_text()
    assert f"# {result.name}" in card and "`llama-3.1`" in card
    assert obligations(["llama-3.1"]).card_markdown().strip() in card
    if obligations(["llama-3.1"]).notice_text().strip():
        assert result.notice_path is not None
        assert obligations(["llama-3.1"]).notice_text().strip() in result.notice_path.read_text()
    merged = load_file(result.merged_dir / "model.safetensors")
    base = load_file(base_dir / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[key], base[key])  # the adapter is folded in


def test_loss_covers_only_the_teacher_answer(run) -> None:
    _, result, watch = run
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(result.adapter_dir)
    assert watch.rows
    for r in watch.rows:
        answer = [t for t, lab in zip(r["input_ids"], r["labels"], strict=True) if lab != -100]
        text = tok.decode(answer)
        assert text.startswith("The capital of") and text.endswith("Good luck!<|im_end|>\n")
        assert "user" not in text and "system" not in text


def test_evaluate_student_reports_base_and_student(run, tmp_path: Path) -> None:
    db, result, watch = run
    out = tmp_path / "eval.json"
    report = evaluate_student(
        EvalConfig(db=db, adapter=result.out, out=out, limit=2, max_new_tokens=10)
    )
    saved = json.loads(out.read_text())
    assert set(saved["base"]) == set(saved["student"]) == set(METRIC_NAMES)
    assert saved["n_prompts"] == 2 and len(saved["examples"]) == 2
    for side in ("base", "student"):
        assert 0.0 <= saved[side]["token_f1"] <= 1.0
        assert saved[side]["teacher_token_loss"] > 0
    # the student was trained on these teacher answers' style: lower loss on teacher tokens
    assert report["student"]["teacher_token_loss"] < report["base"]["teacher_token_loss"]
    # the held-out prompts were never in a training sequence
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(result.adapter_dir)
    trained = [tok.decode(r["input_ids"]) for r in watch.rows]
    for example in saved["examples"]:
        assert not any(example["prompt"] in text for text in trained)
    tables = render_report(report)
    assert tables[0].row_count == len(METRIC_NAMES)


def test_unknown_base_is_a_clear_error(tmp_path: Path) -> None:
    db = make_harvest_db(tmp_path / "h.duckdb", capital_rows(3))
    with pytest.raises(BaseModelError, match=r"no-such-model.*not found"):
        train_sft(TrainConfig(db=db, out=tmp_path / "o", base="org/no-such-model"))
