"""Export (jsonl / parquet / hf + card), the CLI commands, and the API key staying out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.harvest import MissingDependencyError, export_dataset, harvest_status
from stillroom.harvest.testing import FakeProvider
from tests.harvest.conftest import write_jsonl
from tests.harvest.test_harvest_resume import SECRET, harvest_cli


@pytest.fixture(scope="module")
def harvested(tmp_path_factory):
    """A database filled through the real CLI, in a subprocess, with a key set."""
    tmp = tmp_path_factory.mktemp("export")
    prompts = write_jsonl(tmp / "p.jsonl", [{"prompt": f"q{i}", "id": f"id{i}"} for i in range(6)])
    db = tmp / "h.duckdb"
    with FakeProvider(reasoning="reasoning_content", api_key=SECRET) as fake:
        args = ["run", "--prompts", str(prompts), "--db", str(db), "--base-url", fake.base_url,
                "--model", "m", "--policy", "self-hosted", "--api-key-env", "TEACHER_KEY",
                "--top-logprobs", "2", "--system", "Be kind."]  # fmt: skip
        ok = harvest_cli(*args)
        out, err = ok.communicate(timeout=60)
        assert ok.returncode == 0, err
        args[args.index(str(db))] = str(tmp / "other.duckdb")
        bad = harvest_cli(*[a if a != "TEACHER_KEY" else "WRONG_KEY" for a in args])
        bad_out, bad_err = bad.communicate(timeout=60)
        seen = set(fake.server.auth_headers_seen)
    return {"tmp": tmp, "db": db, "logs": out + err + bad_out + bad_err, "bad_rc": bad.returncode,
            "bad_err": bad_err, "seen": seen}  # fmt: skip


def test_cli_run_and_auth_failure_message(harvested):
    assert f"Bearer {SECRET}" in harvested["seen"]  # the key really was used
    assert harvested["bad_rc"] != 0
    assert "refused the credentials (HTTP 401)" in harvested["bad_err"]
    assert "$WRONG_KEY (not set)" in harvested["bad_err"]


def test_exports_and_card(harvested, tmp_path):
    db = harvested["db"]
    res = export_dataset(db, tmp_path / "data.jsonl")
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert res.rows == len(records) == 6
    rec = records[0]
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]
    assistant = rec["messages"][-1]
    assert assistant["content"].startswith("You asked: q")
    assert assistant["reasoning_content"] == rec["reasoning"] == "The user wrote 2 characters."
    assert rec["policy_id"] == "self-hosted" and rec["teacher_model"] == "fake-teacher-2026-01"
    card = res.card_path.read_text()
    assert res.card_path == tmp_path / "data.card.md"
    for needle in (
        "examples: 6",
        "fake-teacher-2026-01",
        "self-hosted",
        "## Teachers and obligations",
    ):
        assert needle in card

    think = export_dataset(db, tmp_path / "t.parquet", format="parquet", reasoning="think")
    table = pq.read_table(think.path).to_pylist()
    assert table[0]["messages"][-1]["content"].startswith("<think>\nThe user wrote")

    pytest.importorskip("datasets")
    import datasets

    hf = export_dataset(db, tmp_path / "hf", format="hf", reasoning="drop")
    ds = datasets.load_from_disk(str(hf.path))
    assert len(ds) == 6 and set(ds[0]["messages"][-1]) == {"role", "content"}
    assert (tmp_path / "hf" / "README.md").exists()


def test_hf_export_without_datasets_is_a_clear_error(harvested, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(
        MissingDependencyError, match=r"needs the 'datasets' package.*stillroom\[train\]"
    ):
        export_dataset(harvested["db"], tmp_path / "hf", format="hf")


def test_api_key_bytes_appear_nowhere(harvested, tmp_path):
    export_dataset(harvested["db"], tmp_path / "a.jsonl")
    export_dataset(harvested["db"], tmp_path / "a.parquet", format="parquet")
    secret = SECRET.encode()
    files = [p for p in harvested["tmp"].rglob("*") if p.is_file()]
    files += [p for p in tmp_path.rglob("*") if p.is_file()]
    assert harvested["db"] in files
    for path in files:
        assert secret not in path.read_bytes(), path
    assert SECRET not in harvested["logs"]
    assert SECRET not in json.dumps(harvest_status(harvested["db"]).to_dict(), default=str)


def test_cli_status_and_export(harvested, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["harvest", "status", "--db", str(harvested["db"]), "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.output)
    assert (status["done"], status["failed"], status["pending"]) == (6, 0, 0)
    assert status["last_run"]["status"] == "finished"
    res = runner.invoke(app, ["harvest", "status", "--db", str(harvested["db"])])
    assert "done" in res.output and "fake-teacher-2026-01" in res.output
    out = tmp_path / "x.jsonl"
    res = runner.invoke(app, ["harvest", "export", "--db", str(harvested["db"]), "--out", str(out)])
    assert res.exit_code == 0 and "6 examples" in res.output and out.exists()


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from stillroom.harvest.cli import main

    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "x"}\n{"oops": 1}\n')
    base = ["harvest", "run", "--prompts", str(prompts), "--db", str(tmp_path / "h.duckdb"),
            "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]  # fmt: skip
    for policy, needle in (
        ("self-hosted", "p.jsonl line 2: needs a 'prompt'"),
        ("no-such-policy", "no-such-policy"),
    ):
        monkeypatch.setattr(sys, "argv", [*base, "--policy", policy])
        with pytest.raises(SystemExit) as exit_:
            main()
        err = capsys.readouterr().err
        assert exit_.value.code == 1 and err.startswith("Error: ") and needle in err
        assert err.count("\n") == 1


def test_python_m_harvest_testing_spawns_a_server():
    from stillroom.harvest.testing import FakeProvider

    with FakeProvider.spawn(rpm=60) as fake:
        assert fake.stats()["total"] == 0


def test_every_option_docs_harvest_names_exists():
    """docs/harvest.md names only options a `stillroom harvest` command has (bench lines aside)."""
    import re

    import typer

    from stillroom.harvest.cli import app as harvest_app

    command = typer.main.get_command(harvest_app)
    options = {o for sub in command.commands.values() for p in sub.params for o in p.opts}
    options |= {o.replace("--", "--no-", 1) for o in options}  # boolean flags' off switch
    doc = Path(__file__).resolve().parents[2] / "docs" / "harvest.md"
    named = {
        (n, option)
        for n, line in enumerate(doc.read_text().splitlines(), 1)
        if "bench/" not in line
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line)
    }
    assert named
    assert sorted(f"line {n}: {o}" for n, o in named if o not in options) == []
