"""The LLM judge asked through harvest: a real loopback provider, a real judge store."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stillroom.curate import (
    CurateConfig,
    CurateError,
    HarvestJudge,
    JudgeIncompleteError,
    JudgeVerifier,
    curate_store,
)
from stillroom.harvest import completion_row, write_completions
from stillroom.harvest._completions import connect
from stillroom.harvest.testing import FakeProvider
from stillroom.policies.errors import PolicyNeedsAcceptance, PolicyRefused

FORBIDDING = """\
id = "no-use"
name = "A teacher whose terms forbid this use"
verdict = "forbidden"

[terms]
title = "Test Terms"
url = "https://example.com/terms"
read = 2026-11-25

[[clauses]]
section = "2"
text = "You may not use the outputs to develop or evaluate other models."
"""


def _grade(prompt: str) -> str:
    """A judge with opinions: PASS when the answer ends in the reference, garbage when the
    answer says 'unsure' (no VERDICT line), FAIL otherwise."""
    reference = prompt.split("Reference answer:\n")[1].split("\n")[0]
    answer = prompt.split("Answer to grade:\n")[1].split("\n\nIs the answer")[0]
    if "unsure" in answer:
        return "Hmm, hard to say."
    if answer.rstrip(".").endswith(reference):
        return "The final number matches.\nVERDICT: PASS"
    return "The final number differs from the reference.\nVERDICT: FAIL"


def _harvest(db: Path, prompts: int = 4) -> dict[str, str]:
    rows, refs = [], {}
    for p in range(prompts):
        a, b = 20 + p, 5 + p
        refs[f"q{p}"] = str(a + b)
        question = [{"role": "user", "content": f"What is {a} plus {b}? (question {p})"}]
        answers = (f"{a} + {b} = {a + b}", f"It is {a + b + 1}", f"I am unsure, maybe {a + b}")
        for s, answer in enumerate(answers):
            rows.append(completion_row(prompt_id=f"q{p}", messages=question, content=answer,
                                       sample_index=s, finish_reason="stop"))  # fmt: skip
    write_completions(db, rows)
    return refs


def _judge(fake: FakeProvider, judge_db: Path, **extra) -> CurateConfig:
    options = {"db": str(judge_db), "base_url": fake.base_url, "model": "judge-m",
               "policy": "self-hosted", "concurrency": 2, **extra}  # fmt: skip
    return CurateConfig(verifier="judge", verifier_options=options, answer_dedup=None)


def test_judge_verdicts_are_stored_and_a_rerun_asks_nothing(tmp_path):
    db, judge_db = tmp_path / "h.duckdb", tmp_path / "judge.duckdb"
    refs = _harvest(db)
    with FakeProvider(replies=_grade) as fake:
        first = curate_store(db, "judged", references=refs, config=_judge(fake, judge_db))
        assert fake.stats()["total"] == 12  # one grading prompt per answer
        assert (first.rows, first.kept, first.verdicts_new) == (12, 4, 12)
        # another set, other limits (not the judge's identity): every verdict reused, no request
        again = curate_store(db, "again", references=refs, config=_judge(fake, judge_db, rpm=60))
        assert (again.verdicts_reused, again.verdicts_new) == (12, 0)
        assert fake.stats()["total"] == 12
    con = connect(db, read_only=True)
    verdicts = con.execute(
        "SELECT verifier, version, passed, reason FROM curation_verdicts ORDER BY idempotency_key"
    ).fetchall()
    decisions = dict(con.execute(
        "SELECT idempotency_key, keep FROM curation_decisions WHERE curation = 'judged'"
    ).fetchall())  # fmt: skip
    con.close()
    assert {(v, ver) for v, ver, _, _ in verdicts} == {("judge", "2:judge-m")}
    assert [ok for _, _, ok, _ in verdicts] == [True, False, False] * 4
    reasons = [r for _, _, _, r in verdicts]
    assert reasons[1] == "judge judge-m: The final number differs from the reference."
    assert reasons[2] == "judge judge-m gave no VERDICT line"  # garbage fails closed
    assert {k for k, keep in decisions.items() if keep} == {f"q{p}:0" for p in range(4)}
    # the grading prompts are a harvest of their own, recorded with their policy and purpose
    judge = connect(judge_db, read_only=True)
    (purpose,) = judge.execute("SELECT DISTINCT json_extract_string(policy, '$.purpose') "
                               "FROM runs").fetchone()  # fmt: skip
    (answers,) = judge.execute("SELECT count(*) FROM answers").fetchone()
    judge.close()
    assert (purpose, answers) == ("evaluation", 12)


def _grade_with_question(seen: list[str]):
    """A judge that reads the question too: PASS only when the answer ends in the reference
    and works the question's own two numbers. Every grading prompt it is shown goes to ``seen``."""

    def grade(prompt: str) -> str:
        seen.append(prompt)
        question = prompt.split("Question:\n")[1].split("\n\nReference answer:")[0]
        if re.findall(r"\d+", question)[:2] != re.findall(r"\d+", prompt.split("grade:\n")[1])[:2]:
            return "The answer works other numbers than the question asks about.\nVERDICT: FAIL"
        return _grade(prompt)

    return grade


def test_the_judge_sees_the_question_and_fails_an_answer_to_another_one(tmp_path):
    db, judge_db = tmp_path / "h.duckdb", tmp_path / "judge.duckdb"
    # the same answer, right for "12 plus 13", given to two questions whose reference is 25
    shown = "12 + 13 = 25"
    rows = [
        completion_row(prompt_id=pid, messages=[{"role": "user", "content": q}], content=a,
                       sample_index=0, finish_reason="stop")
        for pid, q, a in (("q-20-5", "What is 20 plus 5?", shown),
                          ("q-12-13", "What is 12 plus 13?", shown),
                          ("q-30-7", "Add 30 and 7: what do you get?", "30 + 7 = 37"))
    ]  # fmt: skip
    write_completions(db, rows)
    refs = {"q-20-5": "25", "q-12-13": "25", "q-30-7": "37"}
    seen: list[str] = []
    with FakeProvider(replies=_grade_with_question(seen)) as fake:
        result = curate_store(db, "judged", references=refs, config=_judge(fake, judge_db))
    assert fake.stats()["total"] == 3 and result.verdicts_new == 3
    con = connect(db, read_only=True)
    verdicts = dict(con.execute(
        "SELECT idempotency_key, passed FROM curation_verdicts").fetchall())  # fmt: skip
    con.close()
    # the verdict follows the question the judge was shown, not only answer and reference
    assert verdicts == {"q-20-5:0": False, "q-12-13:0": True, "q-30-7:0": True}
    wrong = next(p for p in seen if "What is 20 plus 5?" in p)
    assert f"Answer to grade:\n{shown}" in wrong and "Reference answer:\n25" in wrong


def test_the_same_answer_under_another_question_gets_its_own_verdict():
    seen: list[str] = []
    judge = JudgeVerifier(ask=_grade_with_question(seen), judge_model="fake")
    assert judge.verify("What is 12 plus 13?", "12 + 13 = 25", "25").passed
    verdict = judge.verify("What is 20 plus 5?", "12 + 13 = 25", "25")
    assert not verdict.passed and "other numbers" in verdict.reason
    assert [("What is 12 plus 13?" in p, "What is 20 plus 5?" in p) for p in seen] == [
        (True, False),
        (False, True),
    ]


# the grading prompt before the judge saw the question (verdict version 1)
_OLD_TEMPLATE = """You are grading an answer against a reference.
Reference answer:
{reference}

Answer to grade:
{answer}

Is the answer correct and consistent with the reference? Reply with one short reason, then a
last line that is exactly `VERDICT: PASS` or `VERDICT: FAIL`."""


def test_verdicts_made_under_another_template_are_not_reused(tmp_path):
    db, judge_db = tmp_path / "h.duckdb", tmp_path / "judge.duckdb"
    refs = _harvest(db, prompts=2)
    with FakeProvider(replies=_grade) as fake:
        old = curate_store(db, "old", references=refs,
                           config=_judge(fake, judge_db, template=_OLD_TEMPLATE))  # fmt: skip
        assert (old.verdicts_new, fake.stats()["total"]) == (6, 6)
        new = curate_store(db, "new", references=refs, config=_judge(fake, judge_db))
        assert (new.verdicts_reused, new.verdicts_new) == (0, 6)
        assert fake.stats()["total"] == 12  # every answer asked again, with its question
        again = curate_store(db, "again", references=refs, config=_judge(fake, judge_db))
        assert (again.verdicts_reused, again.verdicts_new) == (6, 0)


def test_a_stopped_judging_run_resumes_without_asking_again(tmp_path):
    db, judge_db = tmp_path / "h.duckdb", tmp_path / "judge.duckdb"
    refs = _harvest(db)
    with FakeProvider(replies=_grade) as fake:
        # the judge allows 5 requests a day: harvest stops cleanly, curation makes no verdict
        with pytest.raises(JudgeIncompleteError, match="7 of 12 grading prompts unanswered"):
            curate_store(db, "judged", references=refs, config=_judge(fake, judge_db, rpd=5))
        assert fake.stats()["total"] == 5
        resumed = curate_store(db, "judged", references=refs, config=_judge(fake, judge_db))
        assert fake.stats()["total"] == 12  # only the 7 unanswered were asked
        assert (resumed.verdicts_new, resumed.kept) == (12, 4)
        assert max(fake.stats()["per_prompt"].values()) == 1


_CHILD = """
import json, sys
from stillroom.curate import CurateConfig, curate_store
options = json.loads(sys.argv[3])
curate_store(sys.argv[1], "judged", references=json.loads(sys.argv[2]),
             config=CurateConfig(verifier="judge", verifier_options=options, answer_dedup=None))
"""


def test_a_killed_judging_run_resumes_without_asking_again(tmp_path):
    db, judge_db = tmp_path / "h.duckdb", tmp_path / "judge.duckdb"
    refs = _harvest(db)
    root = Path(__file__).resolve().parents[2]
    with FakeProvider(replies=_grade, latency=0.1) as fake:
        options = _judge(fake, judge_db, concurrency=1).verifier_options
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(db), json.dumps(refs), json.dumps(options)],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and fake.stats()["total"] < 5:
            assert child.poll() is None, "the judging run finished before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        con = connect(judge_db, read_only=True)
        (stored,) = con.execute("SELECT count(*) FROM answers").fetchone()
        con.close()
        sent = fake.stats()["total"]
        assert 3 <= stored <= sent < 12
        resumed = curate_store(db, "judged", references=refs, config=_judge(fake, judge_db))
        assert fake.stats()["total"] - sent == 12 - stored  # only what was not stored
        assert (resumed.verdicts_new, resumed.kept) == (12, 4)


def test_a_policy_that_forbids_the_use_refuses_before_any_request(tmp_path, monkeypatch):
    db, judge_db = tmp_path / "h.duckdb", tmp_path / "judge.duckdb"
    refs = _harvest(db, prompts=1)
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "no-use.toml").write_text(FORBIDDING)
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(tmp_path / "pol"))
    with FakeProvider(replies=_grade) as fake:
        with pytest.raises(PolicyRefused, match="may not use the outputs"):
            curate_store(db, "j", references=refs, config=_judge(fake, judge_db, policy="no-use"))
        # a conditional policy needs --accept: refused too, before any request
        with pytest.raises(PolicyNeedsAcceptance, match="--accept openai"):
            curate_store(db, "j", references=refs, config=_judge(fake, judge_db, policy="openai"))
        # the judge's replies never go into the harvest being curated (its answers are training data)
        with pytest.raises(CurateError, match="a file of their own"):
            curate_store(db, "j", references=refs, config=_judge(fake, db))
        assert fake.stats()["total"] == 0
    assert not judge_db.exists()


def test_a_failed_judge_request_fails_closed(tmp_path):
    with FakeProvider(replies=_grade) as fake:
        judge = HarvestJudge(db=tmp_path / "j.duckdb", base_url=fake.base_url, model="m",
                             policy="self-hosted")  # fmt: skip
        judge.prepare([("6 * 7?", "42", "42"), ("6 * 7?", "[[status:400]] 42", "42")])
        assert judge.verify("6 * 7?", "42", "42").passed
        bad = judge.verify("6 * 7?", "[[status:400]] 42", "42")
        assert fake.stats()["total"] == 2
    assert not bad.passed and bad.reason.startswith("judge m: request failed (")
    assert bad.verifier == "judge" and bad.version == "2:m"


def test_cli_judge_options(tmp_path):
    from stillroom.cli import app

    db = tmp_path / "h.duckdb"
    refs = _harvest(db, prompts=2)
    (tmp_path / "refs.jsonl").write_text(
        "".join(json.dumps({"id": k, "answer": v}) + "\n" for k, v in refs.items())
    )
    with FakeProvider(replies=_grade) as fake:
        result = CliRunner().invoke(app, [
            "curate", "run", "--db", str(db), "--name", "judged", "--verifier", "judge",
            "--references", str(tmp_path / "refs.jsonl"), "--judge-base-url", fake.base_url,
            "--judge-model", "judge-m", "--judge-policy", "self-hosted",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "kept 2 of 6 rows" in result.output and "6 new" in result.output
        assert fake.stats()["total"] == 6
        assert (tmp_path / "h.judge.duckdb").exists()  # the judge's store, beside the harvest
        refused = CliRunner().invoke(app, [
            "curate", "run", "--db", str(db), "--name", "j2", "--verifier", "judge",
            "--references", str(tmp_path / "refs.jsonl"), "--judge-base-url", fake.base_url,
            "--judge-model", "other", "--judge-policy", "openai",
        ])  # fmt: skip
        assert refused.exit_code == 1 and "Error: policy 'openai'" in refused.output
        assert fake.stats()["total"] == 6
        rows = tmp_path / "rows.jsonl"
        rows.write_text("".join(json.dumps({"id": f"r{b}", "prompt": f"What is 2 + {b}?",
                                            "answer": a, "reference": str(2 + b)}) + "\n"
                                for b, a in ((2, "2 + 2 = 4"), (3, "It is 6"))))  # fmt: skip
        out = tmp_path / "out"
        flat = CliRunner().invoke(app, [
            "curate", "jsonl", str(rows), "--out", str(out), "--verifier", "judge",
            "--judge-base-url", fake.base_url, "--judge-model", "judge-m",
            "--judge-policy", "self-hosted",
        ])  # fmt: skip
        assert flat.exit_code == 0, flat.output
        assert "kept 1 of 2 rows" in flat.output and (out / "judge.duckdb").exists()
        assert fake.stats()["total"] == 8


def test_cli_verify_with_the_judge_shows_it_the_question(tmp_path):
    from stillroom.cli import app

    seen: list[str] = []
    with FakeProvider(replies=_grade_with_question(seen)) as fake:
        base = ["curate", "verify", "12 + 13 = 25", "--reference", "25", "--verifier", "judge",
                "--judge-base-url", fake.base_url, "--judge-model", "judge-m",
                "--judge-policy", "self-hosted", "--judge-db", str(tmp_path / "j.duckdb")]  # fmt: skip
        right = CliRunner().invoke(app, [*base, "--prompt", "What is 12 plus 13?"])
        wrong = CliRunner().invoke(app, [*base, "--prompt", "What is 20 plus 5?"])
        unasked = CliRunner().invoke(app, base)
        assert fake.stats()["total"] == 2
    assert right.exit_code == 0, right.output
    assert json.loads(right.output)["passed"] is True
    verdict = json.loads(wrong.output)
    assert verdict["passed"] is False and verdict["version"] == "2:judge-m"
    assert unasked.exit_code == 2 and "needs --prompt" in unasked.output
