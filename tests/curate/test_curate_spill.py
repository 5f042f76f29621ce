"""Out-of-core dedup (DuckDB spill) and chunked decontamination: the same decisions as the
in-memory path, JSONL and Parquet inputs, the CLI's summary and drops file, bad input named."""

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.curate import (
    BenchmarkItem,
    ConfigError,
    Decontaminator,
    DedupConfig,
    InputFormatError,
    find_duplicates,
)
from stillroom.curate._chunk_runs import decontam_chunks, dedup_chunks
from stillroom.curate._inputs import read_field_chunks
from stillroom.curate._spill import ScaleConfig, SpilledDedup

VOCAB = [f"w{i}" for i in range(3000)]


def _edit(rng: random.Random, text: str, positions: list[int]) -> str:
    toks = text.split()
    for p in positions:
        toks[p] = rng.choice(VOCAB)
    return " ".join(toks)


def _rows(n: int, seed: int = 3) -> list[str]:
    """Random 100-word rows with exact copies, near copies and chains A~B~C (A not ~C)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        roll = rng.random()
        if len(out) > 10 and roll < 0.05:
            out.append("  " + out[rng.randrange(len(out))].upper())
        elif len(out) > 10 and roll < 0.10:
            out.append(
                _edit(rng, out[rng.randrange(len(out))], [rng.randrange(50), rng.randrange(50)])
            )
        elif roll < 0.13:  # a chain: 4 words changed per step, 8 between its ends
            a = " ".join(rng.choices(VOCAB, k=100))
            b = _edit(rng, a, [10, 30, 50, 70])
            out += [a, b, _edit(rng, b, [20, 40, 60, 80])]
        else:
            out.append(" ".join(rng.choices(VOCAB, k=rng.randint(50, 100))))
    return out[:n]


def _spilled(texts, ids, chunk=257, config=None):
    with SpilledDedup(config or DedupConfig(), ScaleConfig(chunk_rows=chunk), "answer") as dedup:
        for s in range(0, len(texts), chunk):
            dedup.add(texts[s : s + chunk], ids[s : s + chunk])
        return {row: drop for row, _, drop in dedup.drops()}, dedup.counts()


def test_spilled_decisions_equal_the_in_memory_ones():
    texts = _rows(1500)
    ids = [f"r{i}" for i in range(len(texts))]
    memory = find_duplicates(texts, ids, DedupConfig(), "answer")
    spilled, counts = _spilled(texts, ids, chunk=400)
    assert spilled == memory  # same rows, same kept row named, same estimated Jaccard
    exact = sum(d.reason.startswith("exact") for d in memory.values())
    assert counts == {"rows": 1500, "exact": exact, "near": len(memory) - exact,
                      "kept": 1500 - len(memory)}  # fmt: skip
    assert exact > 50 and len(memory) - exact > 50


def test_a_chain_keeps_its_end_in_both_paths():
    """A~B and B~C but not A~C: B drops naming A; C stays, as B (its only match) was dropped.
    A later exact copy of B is an exact duplicate of B, named B, in both paths."""
    rng = random.Random(11)
    a = " ".join(rng.choices(VOCAB, k=100))
    b = _edit(rng, a, [10, 30, 50, 70])
    c = _edit(rng, b, [20, 40, 60, 80])
    texts, ids = [a, "unrelated words here", b, c, b.upper()], ["A", "x", "B", "C", "B2"]
    memory = find_duplicates(texts, ids, DedupConfig(), "answer")
    assert {ids[r]: d.matched for r, d in memory.items()} == {"B": "A", "B2": "B"}
    for chunk in (1, 3):
        assert _spilled(texts, ids, chunk)[0] == memory


def test_exact_only_and_empty_rows():
    texts = ["", "same text", "", "Same  TEXT", "!!!"]
    ids = list("abcde")
    config = DedupConfig(near_threshold=None)
    assert _spilled(texts, ids, 2, config)[0] == find_duplicates(texts, ids, config, "answer")
    assert _spilled(texts, ids, 2)[0] == find_duplicates(texts, ids, what="answer")


def test_scale_config_chooses_the_path_by_size():
    scale = ScaleConfig(memory_gb=1.0)
    assert scale.choose(1_000_000) == "memory" and scale.choose(200_000_000) == "disk"
    assert ScaleConfig(path="disk").choose(10) == "disk"
    assert ScaleConfig(memory_gb=2.0).chunk == 16_384
    for bad in ({"memory_gb": 0}, {"path": "cloud"}, {"chunk_rows": 0}):
        with pytest.raises(ConfigError):
            ScaleConfig(**bad)


def test_decontam_in_chunks_equals_one_check():
    items = [
        BenchmarkItem(f"b:{i}", " ".join(random.Random(i).choices(VOCAB, k=30))) for i in range(20)
    ]
    texts = [*_rows(300), f"so: {items[3].text} ok", _edit(random.Random(1), items[5].text, [4])]
    ids = [str(i) for i in range(len(texts))]
    dc = Decontaminator(items)
    whole = [(i, ids[i], d) for i, d in enumerate(dc.check(texts)) if d is not None]
    chunks = ((texts[s : s + 7], ids[s : s + 7]) for s in range(0, len(texts), 7))
    summary, drops = decontam_chunks(chunks, dc)
    assert drops == whole and {d.matched for _, _, d in drops} >= {"b:3", "b:5"}
    assert summary["rows"] == len(texts) and summary["kept"] == len(texts) - len(whole)


def _write_inputs(tmp_path, texts):
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"id": f"r{i}", "answer": t}) + "\n" for i, t in enumerate(texts))
    )
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(texts))], "answer": texts}), parquet)
    return jsonl, parquet


def test_cli_dedup_reads_jsonl_and_parquet_alike(tmp_path):
    texts = _rows(400)
    jsonl, parquet = _write_inputs(tmp_path, texts)
    memory = find_duplicates(texts, [f"r{i}" for i in range(len(texts))], DedupConfig(), "answer")
    runner = CliRunner()
    outs = []
    for path, how in ((jsonl, "disk"), (parquet, "memory")):
        drops = tmp_path / f"{path.suffix}.drops.jsonl"
        args = ["curate", "dedup", str(path), "--field", "answer", "--json", "--path", how,
                "--chunk-rows", "64", "--out", str(drops)]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["path"] == how and summary["rows"] == 400
        assert summary["exact"] + summary["near"] == len(memory) and summary["peak_rss_mb"] > 0
        lines = [json.loads(x) for x in drops.read_text().splitlines()]
        assert [x["row"] for x in lines] == sorted(memory)
        outs.append([(x["id"], x["matched"], x["score"]) for x in lines])
    assert outs[0] == outs[1]


def test_bad_input_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "fine"}\n{"answer": 3}\n')
    with pytest.raises(InputFormatError, match=r"bad.jsonl:2: field 'answer' is int"):
        list(read_field_chunks(bad, "answer", 10))
    nul = tmp_path / "nul.parquet"
    pq.write_table(pa.table({"answer": ["a", None]}), nul)
    with pytest.raises(InputFormatError, match=r"nul.parquet: row 2: 'answer' is null"):
        list(read_field_chunks(nul, "answer", 10))
    with pytest.raises(InputFormatError, match="no column 'prompt'"):
        list(read_field_chunks(nul, "prompt", 10))
    result = CliRunner().invoke(app, ["curate", "dedup", str(bad), "--field", "answer"])
    assert result.exit_code != 0 and "bad.jsonl:2" in result.output


def test_dedup_chunks_memory_and_disk_agree():
    texts = _rows(500, seed=5)
    ids = [f"r{i}" for i in range(len(texts))]
    chunks = lambda: ((texts[s : s + 99], ids[s : s + 99]) for s in range(0, 500, 99))  # noqa: E731
    mem_run, mem = dedup_chunks(chunks(), path="memory")
    disk_run, disk = dedup_chunks(chunks(), scale=ScaleConfig(workers=2), path="disk")
    assert mem == disk and (mem_run.exact, mem_run.near) == (disk_run.exact, disk_run.near)


def test_cli_decontam_json_and_drops(tmp_path):
    items = tmp_path / "bench.jsonl"
    item = " ".join(random.Random(4).choices(VOCAB, k=30))
    items.write_text(json.dumps({"id": "q1", "text": item}) + "\n")
    texts = [*_rows(50), f"the question was {item} and so on"]
    jsonl, parquet = _write_inputs(tmp_path, texts)
    for path in (jsonl, parquet):
        drops = tmp_path / "leaks.jsonl"
        args = ["curate", "decontam", str(path), "--field", "answer", "--benchmark", str(items),
                "--json", "--out", str(drops)]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert (summary["rows"], summary["ngram"], summary["kept"]) == (51, 1, 50)
        (line,) = [json.loads(x) for x in drops.read_text().splitlines()]
        assert (line["id"], line["matched"], line["stage"]) == (
            "r50",
            "bench.jsonl:q1",
            "decontam-ngram",
        )
    bad = CliRunner().invoke(app, ["curate", "dedup", str(jsonl), "--engine", "flink"])
    assert bad.exit_code != 0 and "--engine" in bad.output
