"""``stillroom train onpolicy`` end to end against a loopback scoring teacher (the same SmolLM2,
given a pirate system prompt the student never sees): SIGKILL mid-run, rerun, nothing re-asked;
then ``train eval`` on the adapter, unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import KD_PROMPTS, KD_SYSTEM, make_harvest_db, row


@pytest.fixture(scope="module")
def teacher_model(base_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(base_dir).eval(), AutoTokenizer.from_pretrained(
        base_dir
    )


def _cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "stillroom", "train", "onpolicy", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_mid_run_then_rerun_asks_nothing_twice(tmp_path, base_dir, teacher_model):
    from tests.train.scoring_server import ScoringTeacher

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"kd{i}", "prompt": p}) + "\n"
                               for i, p in enumerate(KD_PROMPTS)))  # fmt: skip
    out = tmp_path / "run"
    with ScoringTeacher(*teacher_model) as teacher:
        args = ["--prompts", str(prompts), "--db", str(tmp_path / "s.duckdb"), "--out", str(out)]
        args += ["--teacher-base-url", teacher.base_url, "--teacher-model", "test-teacher"]
        args += ["--policy", "self-hosted", "--teacher-system", KD_SYSTEM, "--base", str(base_dir)]
        args += ["--steps", "2", "--prompts-per-step", "2", "--samples-per-prompt", "1"]
        args += ["--max-new-tokens", "4", "--eval-fraction", "0.25", "--heldout-samples", "1"]
        args += ["--score-batch", "1"]  # one sample a request: the kill lands inside a step
        # scoring requests: held-out base 1, step 1: 2, step 2: 2, held-out student 1.
        # Kill the trainer on the 5th (step 2's second), before it is answered.
        first = _cli([*args, "-q"])
        teacher.kill = (first.pid, 5)
        log = first.communicate(timeout=600)[0].decode()
        assert first.returncode == -9, log
        assert len(teacher.scoring_bodies()) == 4
        assert (out / "state" / "progress.json").is_file()
        assert json.loads((out / "state" / "progress.json").read_text())["step"] == 1
        teacher.kill = None
        second = _cli(args)
        log = second.communicate(timeout=600)[0].decode()
        assert second.returncode == 0, log
        bodies = teacher.scoring_bodies()
    assert len(bodies) == 6 and len(set(bodies)) == 6  # nothing answered twice
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"heldout_reverse_kl", "teacher_tokens_scored", "teacher_requests", "steps",
            "per_step"} <= set(metrics)  # fmt: skip
    assert metrics["steps"] == 2 and len(metrics["per_step"]) == 2
    assert set(metrics["heldout_reverse_kl"]) == {"base", "student"}
    assert all(isinstance(v, float) for v in metrics["heldout_reverse_kl"].values())
    assert metrics["teacher_requests"] == 6 + 2 * 2  # every scoring request once, 2 probes a run
    assert metrics["teacher_tokens_scored"] > 6 * 20
    assert (out / "adapter" / "adapter_config.json").is_file()
    card = (out / "README.md").read_text()
    assert "train onpolicy" in card and "self-hosted" in card

    # `train eval` reads the adapter and its split unchanged (a harvest of the same prompts)
    from stillroom.train import EvalConfig, evaluate_student

    rows = [row(f"kd{i}", p, "Arr matey!", system=KD_SYSTEM) for i, p in enumerate(KD_PROMPTS)]
    db = make_harvest_db(tmp_path / "harvest.duckdb", rows)
    report = evaluate_student(
        EvalConfig(db=db, adapter=out, out=tmp_path / "eval.json", max_new_tokens=3)
    )
    assert report["n_prompts"] == 1
