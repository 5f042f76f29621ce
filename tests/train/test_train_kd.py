"""Sparse KD from stored top-k logprobs: mapping onto student tokens, and the term falling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.train.conftest import make_harvest_db, row

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from stillroom.train import TrainConfig, train_sft  # noqa: E402
from stillroom.train._kd import align_targets, bytes_lookup, sparse_kd_loss, token_bytes_table  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.slow]


@pytest.fixture(scope="module")
def tokenizer(base_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_dir)


def test_byte_table_round_trips_the_vocabulary(tokenizer) -> None:
    table = token_bytes_table(tokenizer)
    ids = tokenizer("Héllo wörld, 42 ✓", add_special_tokens=False)["input_ids"]
    assert b"".join(table[i] for i in ids) == "Héllo wörld, 42 ✓".encode()
    lookup = bytes_lookup(table)
    assert lookup[b" the"] == tokenizer.convert_tokens_to_ids("Ġthe")


def test_alignment_maps_by_bytes_and_skips_what_does_not_map(tokenizer) -> None:
    table, lookup = token_bytes_table(tokenizer), None
    lookup = bytes_lookup(table)
    prompt = tokenizer("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    answer = tokenizer("Arr matey! Hello", add_special_tokens=False)["input_ids"]
    input_ids = prompt + answer
    labels = [-100] * len(prompt) + answer

    def e(tid: int, lp: float, alts: list[tuple[bytes, float]]) -> dict:
        b = table[tid]
        return {
            "token": b.decode(),
            "logprob": lp,
            "bytes": list(b),
            "top_logprobs": [
                {"token": x.decode(errors="replace"), "logprob": v, "bytes": list(x)}
                for x, v in alts
            ],
        }

    teacher = [
        e(t, -0.1, [(table[t], -0.1), (b" zzqx-not-a-token", -2.5), (b" Ahoy", -9999.0)])
        for t in answer
    ]
    teacher[1] = {"token": "\ufffd", "logprob": -0.2, "bytes": [0xFF, 0xFE], "top_logprobs": []}
    targets = align_targets(input_ids, labels, teacher, table, lookup)
    assert len(targets.positions) == len(answer) - 1  # the garbled token is skipped
    first = targets.positions[0]
    assert first == len(prompt)
    assert targets.ids[0] == [answer[0]]  # unmappable and sentinel alternatives left out
    assert targets.probs[0] == [pytest.approx(math.exp(-0.1))]
    assert align_targets(input_ids, labels, None, table, lookup).positions == []


def test_sparse_kd_loss_is_zero_when_student_matches_teacher() -> None:
    logits = torch.log(torch.tensor([[[0.0, 0.0, 0.0], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]]]) + 1e-12)
    pos = torch.tensor([[2]])  # predicted by logits[:, 1]
    ids = torch.tensor([[[0, 1]]])
    exact = sparse_kd_loss(logits, pos, ids, torch.tensor([[[0.7, 0.2]]]))[0]
    off = sparse_kd_loss(logits, pos, ids, torch.tensor([[[0.2, 0.7]]]))[0]
    assert exact.item() == pytest.approx(0.0, abs=1e-5)
    assert off.item() > 0.1
    none = sparse_kd_loss(logits, torch.tensor([[-1]]), ids, torch.zeros(1, 1, 2))
    assert none[1].item() == 0 and none[0].item() == 0.0


def test_kd_term_is_finite_and_falls_over_steps(kd_rows, base_dir: Path, tmp_path: Path) -> None:
    # Context distillation: the teacher answered with a system prompt the student never sees.
    rows = [*kd_rows, row("plain", "Say hi.", "Hi!", system=None)]  # a row without logprobs
    db = make_harvest_db(tmp_path / "kd.duckdb", rows)
    result = train_sft(
        TrainConfig(
            db=db,
            out=tmp_path / "kd",
            base=str(base_dir),
            drop_system=True,
            kd_alpha=0.5,
            eval_fraction=0.0,
            max_steps=6,
            per_device_train_batch_size=5,
            learning_rate=2e-3,
            lr_scheduler_type="constant",
            warmup=0,
            max_length=96,
            logging_steps=1,
            progress=False,
            lora_dropout=0.0,
        )
    )
    m = result.metrics
    assert m["kd_mapped_positions"] >= 3 * len(kd_rows)
    kd = [h["kd_loss"] for h in m["log_history"] if "kd_loss" in h]
    assert len(kd) == 6 and all(math.isfinite(x) for x in kd)
    assert kd[-1] < kd[0] * 0.7, kd
    assert all(
        h["kd_positions"] == m["kd_mapped_positions"]
        for h in m["log_history"]
        if "kd_positions" in h
    )
    saved = json.loads(result.metrics_path.read_text())
    assert saved["kd_alpha"] == 0.5 and saved["kd_mapped_positions"] == m["kd_mapped_positions"]
