"""Curation as one pass over JSONL rows, through the library and through the command line."""

import json
from pathlib import Path

from typer.testing import CliRunner

from stillroom.curate import BenchmarkItem, CurateConfig, CurationRow, SamplingConfig, curate_rows
from stillroom.curate.cli import app

ROOT = Path(__file__).resolve().parents[2]
Q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
LEAK = "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?"


def _rows():
    return [
        CurationRow("n#0", "n", Q, "48 + 24 = 72\n#### 72", "72"),
        CurationRow("n#1", "n", Q, "48 / 2 = 24\n#### 24", "72"),
        CurationRow("n#2", "n", Q, "She sold 48 + 24 = 72 clips.\n#### 72", "72"),
        CurationRow("r#0", "r", LEAK, "#### 3", "3"),
        CurationRow("h#0", "h", "What is 7 times 6?", "#### 41", "42"),
        CurationRow("d#0", "d", Q.upper(), "#### 72", "72"),  # same question, shouted
        CurationRow("x#0", "x", "What is 7 plus 6?", "#### 13", None),
    ]


def test_every_row_gets_a_decision_with_a_reason():
    result = curate_rows(_rows(), CurateConfig(), [BenchmarkItem("gsm8k_test:2", LEAK)])
    by_id = {d.row_id: d for d in result.decisions}
    assert [d.row_id for d in result.decisions if d.keep] == ["n#0", "n#2"]
    assert by_id["n#1"].drop.reason == "expected 72, got 24 (hashes)"
    assert by_id["n#1"].verdict.verifier == "math"
    assert (
        by_id["r#0"].drop.stage == "decontam-ngram" and by_id["r#0"].drop.matched == "gsm8k_test:2"
    )
    assert by_id["r#0"].verdict is None  # a leak is dropped before it costs a verification
    assert by_id["h#0"].drop.reason == "every sample failed (0/1)"
    assert by_id["d#0"].drop.matched == "n" and by_id["d#0"].drop.reason == "exact duplicate prompt"
    assert by_id["x#0"].drop.reason == "no reference to verify against"
    assert result.prompt_stats["n"].pass_rate == 2 / 3
    summary = result.summary()
    assert summary["kept"] == 2 and summary["verifiers"] == ["math@1"]


def test_keep_one_and_answer_dedup():
    rows = [*_rows()[:3], CurationRow("n#3", "n", Q, "48 + 24 = 72\n#### 72", "72")]
    one = curate_rows(rows, CurateConfig(sampling=SamplingConfig(keep="one")))
    assert [d.row_id for d in one.decisions if d.keep] == ["n#0"]
    every = curate_rows(rows, CurateConfig())
    dup = next(d for d in every.decisions if d.row_id == "n#3")
    assert dup.drop.stage == "dedup-answer" and dup.drop.matched == "n#0"


def test_stored_verdicts_are_not_recomputed():
    rows = _rows()[:3]
    store = {}
    curate_rows(rows, CurateConfig(), on_verdict=lambda row, v: store.__setitem__(row.row_id, v))
    assert set(store) == {"n#0", "n#1", "n#2"}
    again = []
    curate_rows(
        rows,
        CurateConfig(),
        cached_verdict=lambda row: store.get(row.row_id),
        on_verdict=lambda r, v: again.append(r),
    )
    assert again == []


def test_cli_over_jsonl(tmp_path):
    rows = tmp_path / "rows.jsonl"
    lines = [
        {
            "prompt_id": "gsm8k-001",
            "sample_index": 0,
            "messages": [
                {"role": "user", "content": Q},
                {"role": "assistant", "content": "#### 72"},
            ],
        },
        {
            "prompt_id": "gsm8k-001",
            "sample_index": 1,
            "messages": [
                {"role": "user", "content": Q},
                {"role": "assistant", "content": "#### 27"},
            ],
        },
    ]
    rows.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out"
    refs = ROOT / "stillroom/data/references.jsonl"
    res = CliRunner().invoke(
        app, ["jsonl", str(rows), "--out", str(out), "--references", str(refs)]
    )
    assert res.exit_code == 0, res.output
    assert "kept 1 of 2 rows" in res.output
    kept = [json.loads(x) for x in (out / "curated.jsonl").read_text().splitlines()]
    assert [k["sample_index"] for k in kept] == [0]
    decisions = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert decisions[1]["reason"] == "expected 72, got 27 (hashes)"
    card = json.loads((out / "curation.json").read_text())
    assert card["summary"]["by_stage"] == {"kept": 1, "verify": 1}


def test_cli_names_a_bad_line(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "x", "answer": "1"}\n{"prompt": 3}\n')
    res = CliRunner().invoke(app, ["jsonl", str(rows), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "Error: " in res.output and "rows.jsonl:2: needs 'messages'" in res.output


def test_answer_dedup_is_per_prompt_unless_global():
    rows = [
        CurationRow("a#0", "a", "What is 5 + 7?", "#### 12", "12"),
        CurationRow("b#0", "b", "What is 3 + 9?", "#### 12", "12"),
        CurationRow("b#1", "b", "What is 3 + 9?", "#### 12", "12"),
    ]
    per_prompt = curate_rows(rows, CurateConfig())
    assert [d.row_id for d in per_prompt.decisions if d.keep] == ["a#0", "b#0"]
    everywhere = curate_rows(rows, CurateConfig(answer_dedup_scope="global"))
    assert [d.row_id for d in everywhere.decisions if d.keep] == ["a#0"]
