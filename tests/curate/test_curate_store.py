"""Curation on a real harvest DuckDB file: decisions for every answer, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stillroom.curate import CurateConfig, CurateError, curate_store, read_curated
from stillroom.curate._math import MathVerifier
from stillroom.curate._registry import VERIFIERS
from stillroom.harvest import completion_row, write_completions
from stillroom.harvest._completions import connect

ROOT = Path(__file__).resolve().parents[2]


def _harvest(db: Path, prompts: int = 20, samples: int = 3) -> dict[str, str]:
    rows, refs = [], {}
    for p in range(prompts):
        a, b = 10 + p, 3 + p
        refs[f"add-{p}"] = str(a + b)
        question = [{"role": "user", "content": f"What is {a} plus {b}? Prompt number {p}."}]
        for s in range(samples):
            work = ("Adding them:", "The sum of the two numbers is", "I think")[s]
            answer = f"{work} {a} + {b} = {a + b}\n#### {a + b + (s == 2)}"  # the third is wrong
            rows.append(
                completion_row(
                    prompt_id=f"add-{p}",
                    messages=question,
                    content=answer,
                    sample_index=s,
                    finish_reason="stop",
                )
            )
    write_completions(db, rows)
    return refs


def test_every_answer_gets_a_decision_and_the_set_is_named(tmp_path):
    db = tmp_path / "h.duckdb"
    refs = _harvest(db)
    result = curate_store(db, "verified", references=refs)
    assert (result.rows, result.kept, result.verdicts_new) == (60, 40, 60)
    con = connect(db, read_only=True)
    decisions = con.execute(
        "SELECT keep, stage, reason FROM curation_decisions WHERE curation = 'verified'"
    ).fetchall()
    prompts = con.execute(
        "SELECT samples, passed, pass_rate, pass_at FROM curation_prompts WHERE curation = 'verified'"
    ).fetchall()
    assert len(decisions) == 60
    assert len(prompts) == 20 and {(n, c) for n, c, _, _ in prompts} == {(3, 2)}
    assert json.loads(prompts[0][3]) == {"1": pytest.approx(2 / 3)}
    assert result.summary["mean_pass_rate"] == pytest.approx(2 / 3)
    assert result.summary["prompts_all_fail"] == 0
    con.close()
    assert {r for k, s, r in decisions if not k} == {"expected 13, got 14 (hashes)"} | {
        f"expected {13 + 2 * p}, got {14 + 2 * p} (hashes)" for p in range(20)
    }
    curated = read_curated(db, "verified")
    assert len(curated.kept_keys) == 40 and "add-0:2" not in curated.kept_keys
    assert not curated.changed
    assert curated.card()["thresholds"]["decontam_ngram"] == 13
    # the harvest grows: train must be told
    write_completions(
        db,
        [
            completion_row(
                prompt_id="add-99", messages=[{"role": "user", "content": "1+1?"}], content="#### 2"
            )
        ],
    )
    grown = read_curated(db, "verified")
    assert grown.changed and grown.grown_by == 1


def test_a_second_run_reuses_every_verdict(tmp_path):
    db = tmp_path / "h.duckdb"
    refs = _harvest(db, prompts=4)
    curate_store(db, "a", references=refs)
    again = curate_store(db, "b", references=refs)  # another set, same verifier: no new verdicts
    assert (again.verdicts_reused, again.verdicts_new) == (12, 0)
    changed = curate_store(
        db, "c", references=refs, config=CurateConfig(verifier_options={"rel_tol": 1e-3})
    )
    assert changed.verdicts_new == 12  # other options: verified again


def test_unknown_or_unfinished_sets_are_errors(tmp_path):
    db = tmp_path / "h.duckdb"
    _harvest(db, prompts=2)
    with pytest.raises(CurateError, match=r"no curated set 'x' \(have: none\)"):
        read_curated(db, "x")
    curate_store(db, "ok", references={})
    with pytest.raises(CurateError, match=r"no curated set 'x' \(have: ok\)"):
        read_curated(db, "x")
    with pytest.raises(CurateError, match="curated set name"):
        curate_store(db, "bad name!", references={})


_CHILD = """
import sys, time
from dataclasses import dataclass
from stillroom.curate import curate_store
from stillroom.curate._math import MathVerifier
from stillroom.curate._registry import VERIFIERS

@dataclass(frozen=True)
class SlowMath(MathVerifier):
    name: str = "slowmath"
    def verify(self, prompt, answer, reference):
        time.sleep(0.05)
        with open(sys.argv[2], "a") as progress:
            progress.write("x\\n")
        return MathVerifier.verify(self, prompt, answer, reference)

VERIFIERS["slowmath"] = SlowMath
import json
refs = json.loads(sys.argv[3])
from stillroom.curate import CurateConfig
curate_store(sys.argv[1], "run", references=refs, config=CurateConfig(verifier="slowmath"), flush_every=4)
"""


@dataclass(frozen=True)
class CountingMath(MathVerifier):
    name: str = "slowmath"
    calls: list = None

    def verify(self, prompt, answer, reference):
        self.calls.append(answer)
        return MathVerifier.verify(self, prompt, answer, reference)


def test_a_killed_curation_resumes_without_verifying_again(tmp_path, monkeypatch):
    db = tmp_path / "h.duckdb"
    refs = _harvest(db)
    progress = tmp_path / "progress"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), str(progress), json.dumps(refs)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not progress.exists() or len(progress.read_text().split()) < 14
    ):
        assert child.poll() is None, "the curation finished before it could be killed"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    con = connect(db, read_only=True)
    stored = con.execute("SELECT count(*) FROM curation_verdicts").fetchone()[0]
    status = con.execute("SELECT status FROM curations WHERE name = 'run'").fetchone()[0]
    con.close()
    assert status == "running" and 12 <= stored < 60  # flushed every 4: at most 3 lost
    with pytest.raises(CurateError, match="is running"):
        read_curated(db, "run")

    calls: list = []
    monkeypatch.setitem(VERIFIERS, "slowmath", lambda **kw: CountingMath(calls=calls, **kw))
    resumed = curate_store(db, "run", references=refs, config=CurateConfig(verifier="slowmath"))
    assert len(calls) == 60 - stored  # only what had not been stored
    assert (resumed.verdicts_reused, resumed.verdicts_new) == (stored, 60 - stored)
    assert resumed.kept == 40 and len(read_curated(db, "run").kept_keys) == 40


def test_cli_run_and_show(tmp_path):
    from typer.testing import CliRunner

    from stillroom.cli import app

    db = tmp_path / "h.duckdb"
    refs = _harvest(db, prompts=3)
    ref_file = tmp_path / "refs.jsonl"
    ref_file.write_text("".join(json.dumps({"id": k, "answer": v}) + "\n" for k, v in refs.items()))
    runner = CliRunner()
    res = runner.invoke(
        app, ["curate", "run", "--db", str(db), "--name", "v", "--references", str(ref_file)]
    )
    assert res.exit_code == 0, res.output
    assert "kept 6 of 9 rows" in res.output and "verdicts: 9 new, 0 reused" in res.output
    res = runner.invoke(app, ["curate", "show", "--db", str(db), "--name", "v"])
    assert res.exit_code == 0, res.output
    assert (
        '"decontam_ngram": 13' in res.output
        and "add-0:2: verify: expected 13, got 14" in res.output
    )
    res = runner.invoke(app, ["curate", "show", "--db", str(db), "--name", "nope"])
    assert res.exit_code == 1 and "no curated set 'nope'" in res.output
