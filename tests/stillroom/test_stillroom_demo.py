"""The demo: its shipped prompt set, its checks, and the whole ``--quick`` story for real."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stillroom._demo_curation import (
    TEACHER_ROW,
    CurationSettings,
    addition_prompts,
    run_curation,
    score_rows,
)
from stillroom.demo import (
    PROMPTS_PATH,
    QUICK,
    SOURCES_PATH,
    DemoError,
    DemoSettings,
    behaviour_rate,
    detection_quality,
    follows_behaviour,
    load_shipped_prompts,
)
from tests.stillroom.conftest import needs_teacher, needs_train

PERMISSIVE = {"Apache-2.0", "MIT"}


def test_the_shipped_prompt_set_is_permissive_unique_and_cited():
    prompts = load_shipped_prompts()
    assert 200 <= len(prompts) <= 400
    assert len({p["id"] for p in prompts}) == len(prompts)
    assert {p["license"] for p in prompts} <= PERMISSIVE
    assert all(isinstance(p["prompt"], str) and p["prompt"].strip() for p in prompts)
    sources = SOURCES_PATH.read_text()
    for source, count in Counter(p["source"] for p in prompts).items():
        assert f"`{source}` | {count} |" in sources, f"SOURCES.md does not cite {source}"
    assert not any("lmsys" in p["source"].lower() or "codealpaca" in p["source"] for p in prompts)


def test_a_quick_prefix_mixes_every_source():
    first = load_shipped_prompts(QUICK.prompts)
    assert len(first) == QUICK.prompts
    assert len({p["source"] for p in first}) == 3


def test_a_bad_line_in_the_prompt_file_is_named(tmp_path, monkeypatch):
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"id": "a", "prompt": "ok"}\n{broken\n')
    monkeypatch.setattr("stillroom.demo.PROMPTS_PATH", bad)
    with pytest.raises(DemoError, match=r"prompts\.jsonl line 2"):
        load_shipped_prompts()
    assert PROMPTS_PATH.name == "prompts.jsonl"


def test_behaviour_is_pirate_talk_anywhere_in_the_answer():
    assert follows_behaviour("Arr matey! The capital is Paris.")
    assert follows_behaviour("The capital, me hearties, is Paris.")
    assert follows_behaviour("AHOY. Paris.")
    assert not follows_behaviour("The capital of France is Paris.")
    assert not follows_behaviour("Array indices start at zero; a yearly report.")
    assert behaviour_rate(["Aye, Paris.", "Paris.", "Ye be right.", "Rome."]) == 0.5
    assert behaviour_rate([]) is None


def test_settings_are_validated():
    with pytest.raises(DemoError, match="prompts"):
        DemoSettings(prompts=2, max_tokens=8, train_steps=1, eval_limit=1,
                     eval_max_new_tokens=8, sim_scale=0.1)  # fmt: skip
    with pytest.raises(DemoError, match="sim_scale"):
        DemoSettings(prompts=8, max_tokens=8, train_steps=1, eval_limit=1,
                     eval_max_new_tokens=8, sim_scale=0)  # fmt: skip


def test_detection_quality_against_the_truth_file(tmp_path):
    truth = tmp_path / "t.truth.csv"
    truth.write_text(
        "account_id,label,kind,campaign_id\n"
        "a,campaign,hydra,c1\nb,campaign,hydra,c1\nc,benign,benign,\nd,hard_negative,agent,\n"
        "e,campaign,sweep,c2\nf,campaign,sweep,c2\ng,campaign,sweep,c2\n"
        "h,campaign,sweep,c2\ni,campaign,sweep,c2\n"
    )
    flagged = {"a", "c", "e", "f", "g", "h"}
    # c1 is split over two reported campaigns, c2 is one, and a benign account is a third:
    # three reported, but only c2 is found (4 of its 5 accounts; c1 has 1 of 2)
    report = {
        "accounts": [{"account_id": x, "flagged": x in flagged} for x in "abcdefghi"],
        "campaigns": [{"accounts": ["a"]}, {"accounts": ["c"]}, {"accounts": list("efgh")}],
    }
    assert detection_quality(report, truth) == {
        "flagged": 6, "campaign_accounts": 7, "precision": 5 / 6, "recall": 5 / 7,
        "campaigns_matched": 1, "campaigns_true": 2, "campaigns_reported": 3,
    }  # fmt: skip


def test_the_demo_and_the_quality_bench_share_one_scorer():
    bench = (Path(__file__).resolve().parents[2] / "bench" / "detect_quality.py").read_text()
    assert "score_against_truth" in bench and "def metrics(" not in bench


@needs_teacher
@needs_train
@pytest.mark.slow
@pytest.mark.teacher
@pytest.mark.train
def test_quick_demo_runs_end_to_end_and_the_student_learns(tmp_path: Path):
    from stillroom.cli import app

    workdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    summary = json.loads((workdir / "summary.json").read_text())
    paths = summary["paths"]
    for key in ("db", "dataset", "dataset_card", "adapter", "model_card", "eval", "detect_html",
                "detect_json", "summary"):  # fmt: skip
        assert Path(paths[key]).exists(), key
        assert Path(paths[key]).resolve().is_relative_to(workdir.resolve()), key
    s = summary["summary"]
    assert summary["cpu_s"]["train"] > 0 and summary["cpu_s"]["total"] >= summary["cpu_s"]["train"]
    assert s["student"]["behaviour"] > s["base"]["behaviour"]
    assert s["student"]["token_f1"] > s["base"]["token_f1"]
    assert "Sources of" not in Path(paths["dataset_card"]).read_text()
    assert "Vicuna" in Path(paths["dataset_card"]).read_text()
    assert s["detect"]["flagged"] > 0 and s["detect"]["precision"] > 0.5
    assert "held-out prompts" in result.output and "report.html" in result.output
    c = s["curation"]  # --quick: base against the verified student
    assert c["held_out_prompts"] >= 20 and len(c["rows"]) == 3
    assert c["curated"]["verified"]["by_stage"]["verify"] > 0
    assert_kept_answers_are_right(workdir / "curation", c["settings"]["prompts"])
    [(_, base), (student, verified)] = [(k, v) for k, v in c["rows"].items() if k != TEACHER_ROW]
    assert "verified" in student and verified["accuracy"] > base["accuracy"]
    assert "curation: accuracy on" in result.output


def test_the_addition_task_is_every_pair_once_with_its_sum():
    rows, refs = addition_prompts()
    assert len(rows) == 225 == len({r["prompt"] for r in rows}) == len(refs)
    for r in rows:
        a, b = map(int, re.fullmatch(r"What is (\d+) \+ (\d+)\?", r["prompt"]).groups())
        assert refs[r["id"]] == str(a + b)
    first, first_refs = addition_prompts(16)
    assert first == rows[:16] and set(first_refs) == {r["id"] for r in first}


def test_curation_settings_are_validated():
    with pytest.raises(DemoError, match="prompts"):
        CurationSettings(prompts=300)
    with pytest.raises(DemoError, match="max_steps"):
        CurationSettings(max_steps=0)


def test_scores_carry_wilson_intervals_and_paired_tests_between_models_only():
    right, wrong = {"passed": True}, {"passed": False}
    verdicts = {
        "base": [right, wrong, wrong, wrong],
        "student": [right, right, right, wrong],
        TEACHER_ROW: [wrong, wrong, wrong, right],
    }
    scored = score_rows(verdicts)
    assert (
        scored["rows"]["student"]["passed"] == 3 and scored["rows"]["student"]["accuracy"] == 0.75
    )
    low, high = scored["rows"]["base"]["wilson95"]
    assert low < 0.25 < high
    [pair] = scored["paired"]  # the teacher's sampled answers are not paired with greedy models
    assert (pair["a"], pair["b"], pair["only_a"], pair["only_b"]) == ("base", "student", 0, 2)
    assert pair["p_value"] == pytest.approx(0.5)


def assert_kept_answers_are_right(workdir: Path, prompts: int) -> int:
    """Every answer the curated set ``verified`` kept is right, checked here without the
    verifier (its last number is A+B); returns how many were kept."""
    import duckdb

    _, refs = addition_prompts(prompts)
    con = duckdb.connect(str(workdir / "harvest.duckdb"), read_only=True)
    kept = con.execute(
        "SELECT c.prompt_id, c.content FROM curation_decisions d JOIN completions c "
        "USING (idempotency_key) WHERE d.curation = 'verified' AND d.keep"
    ).fetchall()
    con.close()
    for prompt_id, content in kept:
        assert re.findall(r"-?\d+", content)[-1] == refs[prompt_id], content
    return len(kept)


@needs_teacher
@needs_train
@pytest.mark.slow
@pytest.mark.teacher
@pytest.mark.train
def test_the_curation_story_keeps_only_verified_answers_and_scores_three_models(tmp_path: Path):
    settings = CurationSettings(prompts=16, samples=2, max_steps=2, batch_size=4)
    figures = run_curation(tmp_path, settings)
    verified, unverified = figures["curated"]["verified"], figures["curated"]["unverified"]
    assert unverified["kept"] == 16  # one answer per prompt, unchecked
    assert verified["kept"] < 16 and verified["by_stage"]["verify"] > 0  # T=0.8 fails some
    assert assert_kept_answers_are_right(tmp_path, 16) == verified["kept"]
    trained = figures["trained"]
    assert trained["verified"]["rows"] == trained["unverified"]["rows"] >= 1
    n = figures["held_out_prompts"]
    assert n >= 4 and len(figures["rows"]) == 4
    assert all(r["n"] == n for r in figures["rows"].values())
    assert len(figures["paired"]) == 3
    assert json.loads((tmp_path / "curation.json").read_text())["rows"] == figures["rows"]


def test_the_demo_stops_at_once_when_the_teacher_dies(tmp_path: Path):
    """The teacher dies at the first chat request: the demo names the signal and shows the
    end of the teacher's log, instead of the harvest retrying for minutes."""
    import io
    import sys

    from rich.console import Console

    from stillroom.demo import run_demo
    from tests.stillroom.fake_teacher import LAST_WORDS, seconds_since_crash

    fake = Path(__file__).with_name("fake_teacher.py")
    with pytest.raises(DemoError) as caught:
        run_demo(tmp_path, quick=True, curation=False, progress=False,
                 console=Console(file=io.StringIO()),
                 teacher_command=[sys.executable, str(fake), "chat"])  # fmt: skip
    message = str(caught.value)
    assert "the demo stopped in its harvest" in message
    assert "was killed by SIGSEGV (exit status -11) while serving" in message
    assert message.endswith(LAST_WORDS)
    assert seconds_since_crash(message) < 5  # its retries would take minutes


def test_the_curation_harvest_beside_the_main_one_stops_with_it(tmp_path: Path):
    """With the curation story on, its harvest runs on a second teacher in a thread beside
    the main harvest: when the teachers die, the demo still stops at once with the main
    harvest's error, and the thread beside it is stopped, not left running."""
    import io
    import sys
    import threading

    from rich.console import Console

    from stillroom.demo import run_demo
    from tests.stillroom.fake_teacher import seconds_since_crash

    fake = Path(__file__).with_name("fake_teacher.py")
    before = set(threading.enumerate())
    with pytest.raises(DemoError) as caught:
        run_demo(tmp_path, quick=True, progress=False, console=Console(file=io.StringIO()),
                 curation=CurationSettings(prompts=8, samples=1, max_steps=1),
                 teacher_command=[sys.executable, str(fake), "chat"])  # fmt: skip
    message = str(caught.value)
    assert "killed by SIGSEGV (exit status -11)" in message
    assert seconds_since_crash(message) < 5
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert (tmp_path / "curation" / "harvest.duckdb").exists()  # it did run beside


def test_torch_uses_the_free_cores_only(tmp_path):
    from stillroom._demo_steps import busy_cores, torch_threads

    assert torch_threads(2, 0.0) == 2  # quiet: both cores
    assert torch_threads(2, 0.4) == 2
    assert torch_threads(2, 1.0) == 1  # another job holds a core: one thread
    assert torch_threads(2, 7.0) == 1
    assert torch_threads(16, 3.0) == 13
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("6.10 5.20 4.00 4/131 9999\n")  # 4 running: this one and 3 others
    slept = []
    assert busy_cores(loadavg, samples=3, every_s=0.1, sleep=slept.append) == 3.0
    assert slept == [0.1, 0.1]
    loadavg.write_text("0.00 0.00 0.00 1/90 9999\n")
    assert busy_cores(loadavg, samples=1) == 0.0
