"""``curate run`` streamed in chunks (the disk path) on a real harvest file: the in-memory
path's decisions, and a real CLI process killed with SIGKILL resumes from its last chunk."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stillroom.curate import CurateConfig, DedupConfig, SamplingConfig, curate_store
from stillroom.curate._chunk_log import HALT_ENV
from stillroom.curate._decontam import BenchmarkItem
from stillroom.curate._spill import ScaleConfig
from stillroom.harvest import completion_row, write_completions
from stillroom.harvest._completions import connect

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests/curate/data/benchmark_items.jsonl"
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "river",
    "stone",
    "cloud",
    "maple",
    "ember",
    "frost",
    "lantern",
    "orbit",
    "quartz",
]


def _harvest(db: Path, prompts: int = 36, samples: int = 4) -> dict[str, str]:
    """Prompts with exact and near duplicates and benchmark leaks; answers right, wrong,
    repeated and reworded; some prompts without a reference."""
    rng = random.Random(5)
    bench = [json.loads(line)["text"] for line in BENCH.open()][:3]
    texts: list[str] = []
    rows, refs = [], {}
    for p in range(prompts):
        if p > 4 and p % 7 == 0:
            text = texts[rng.randrange(p)].upper()  # exact duplicate of an earlier prompt
        elif p > 4 and p % 7 == 3:
            words = texts[rng.randrange(p)].split()
            words[rng.randrange(len(words))] = "zebra"  # near duplicate
            text = " ".join(words)
        elif p % 11 == 5:
            text = f"Please solve: {bench[p % 3]}"  # leaks a benchmark item
        else:
            text = f"Question {p}: " + " ".join(rng.choices(WORDS, k=24)) + f" What is {p} + 3?"
        texts.append(text)
        if p % 9 != 4:
            refs[f"q{p}"] = str(p + 3)
        for s in range(samples):
            if s == 3 and p % 2:
                answer = rows[-1].content  # the same answer twice
            elif s == 0 and p % 4 == 1:
                answer = rows[-samples].content  # the previous prompt's first answer
            elif s == 0 and p % 4 == 2:
                answer = rows[-2 * samples].content.replace("Working", "Thinking")
            else:
                work = " ".join(rng.choices(WORDS, k=18))
                answer = f"Working it out: {work}.\n#### {p + 3 + (s == 2 and p % 3 == 0)}"
            rows.append(completion_row(prompt_id=f"q{p}", sample_index=s, content=answer,
                                       messages=[{"role": "user", "content": text}]))  # fmt: skip
    write_completions(db, rows)
    return refs


def _read(db: Path, sql: str, name: str) -> list[tuple]:
    con = connect(db, read_only=True)
    try:
        return con.execute(sql, [name]).fetchall()
    finally:
        con.close()


def _decisions(db: Path, name: str) -> list[tuple]:
    return _read(db, "SELECT idempotency_key, keep, stage, reason, matched, score FROM "
                 "curation_decisions WHERE curation = ? ORDER BY idempotency_key", name)  # fmt: skip


def _prompts(db: Path, name: str) -> list[tuple]:
    return _read(db, "SELECT prompt_key, samples, passed, pass_rate, pass_at FROM "
                 "curation_prompts WHERE curation = ? ORDER BY prompt_key", name)  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [
        CurateConfig(),
        CurateConfig(
            verifier=None,
            answer_dedup=DedupConfig(near_threshold=0.6),
            answer_dedup_scope="global",
            sampling=SamplingConfig(keep="one"),
        ),
    ],
    ids=["per-prompt", "global-keep-one-unverified"],
)
def test_chunked_curation_decides_as_the_in_memory_path(tmp_path, config):
    db = tmp_path / "h.duckdb"
    refs = _harvest(db)
    bench = [BenchmarkItem(f"b{i}", json.loads(x)["text"]) for i, x in enumerate(BENCH.open())]
    memory = curate_store(db, "mem", references=refs, config=config, benchmarks=bench,
                          scale=ScaleConfig(path="memory"))  # fmt: skip
    disk = curate_store(db, "disk", references=refs, config=config, benchmarks=bench,
                        scale=ScaleConfig(path="disk", chunk_rows=48))  # fmt: skip
    assert (memory.path, disk.path) == ("memory", "disk")
    assert disk.chunks == {"sketch": (0, 3), "verify": (0, 3 if config.verifier else 0)}
    stages = {d[2] for d in _decisions(db, "mem")}
    assert {"decontam-ngram", "dedup-prompt", "dedup-answer"} <= stages
    assert ("verify" in stages) == (config.verifier is not None)
    assert _decisions(db, "disk") == _decisions(db, "mem")
    assert _prompts(db, "disk") == _prompts(db, "mem")
    assert {k: v for k, v in disk.summary.items() if k != "name"} == {
        k: v for k, v in memory.summary.items() if k != "name"
    }
    assert not (tmp_path / "h.duckdb.curate-disk").exists()  # the work files are gone


def _args(db: Path, refs: Path) -> list[str]:
    return ["curate", "run", "--db", str(db), "--name", "big", "--references", str(refs),
            "--path", "disk", "--chunk-rows", "48"]  # fmt: skip


def _cli(db: Path, refs: Path, halt: str) -> subprocess.CompletedProcess:
    env = {**os.environ, HALT_ENV: halt}
    return subprocess.run([sys.executable, "-m", "stillroom", *_args(db, refs)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)  # fmt: skip


def test_a_sigkilled_cli_run_redoes_only_unfinished_chunks(tmp_path):
    db = tmp_path / "h.duckdb"
    refs = _harvest(db)  # 144 answers: 3 chunks of 48
    ref_file = tmp_path / "refs.jsonl"
    ref_file.write_text("".join(json.dumps({"id": k, "answer": v}) + "\n" for k, v in refs.items()))

    first = _cli(db, ref_file, "sketch:1")  # chunk 1 written, killed before it is recorded
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert first.stderr.splitlines() == ["sketch chunk 0 done (0-47)"]
    second = _cli(db, ref_file, "verify:1")  # resumes at chunk 1, killed in verification
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert second.stderr.splitlines() == [
        "sketch chunk 1 done (48-95)",
        "sketch chunk 2 done (96-143)",
        "verify chunk 0 done (0-47)",
    ]
    # the rerun that finishes, in this process (the CLI's own code, without a third start-up)
    from typer.testing import CliRunner

    from stillroom.cli import app

    third = CliRunner().invoke(app, _args(db, ref_file))
    assert third.exit_code == 0, third.output
    assert third.stderr.splitlines() == [
        "verify chunk 1 done (48-95)",
        "verify chunk 2 done (96-143)",
    ]
    resumed = "resumed: sketch 3 chunks done before, 0 run; verify 1 done before, 2 run"
    assert resumed in third.stdout and "(disk path)" in third.stdout

    curate_store(db, "whole", references=refs, scale=ScaleConfig(path="memory"))
    assert _decisions(db, "big") == _decisions(db, "whole")
    assert _prompts(db, "big") == _prompts(db, "whole")
