"""The traffic simulator writes valid schema-v1 traffic and ground truth, deterministically."""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections import Counter
from datetime import datetime
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from stillroom.detect.errors import DetectError
from stillroom.detect.simulator import HELD_OUT_KINDS, KINDS, simulate, truth_path_for
from stillroom.detect.simulator._text import _COT_FOREIGN, _COT_OBJECTS, _COT_VERBS, COT_COERCION

REQUIRED = ("timestamp", "account_id", "prompt")
OPTIONAL = (
    "request_id",
    "ip",
    "user_agent",
    "model",
    "system_prompt",
    "max_tokens",
    "temperature",
    "top_logprobs",
    "prompt_tokens",
    "completion_tokens",
    "org_id",
    "payment_id",
)
CORPORA = Path(
    os.environ.get("STILLROOM_CORPORA", Path(__file__).resolve().parents[3] / "shared" / "corpora")
)


def _truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[list[dict], list[dict], object]:
    out = tmp_path_factory.mktemp("sim") / "traffic.jsonl.gz"
    result = simulate(out, seed=7, scale=0.05, world="current")
    with gzip.open(out, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    return rows, _truth(result.truth_path), result


def test_rows_are_schema_v1_with_every_optional_column(small):
    rows, _, result = small
    assert result.rows == len(rows) > 5000
    for col in REQUIRED + OPTIONAL:
        assert col in rows[0], col
    for row in rows:
        assert all(row[c] not in (None, "") for c in REQUIRED)
        datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
    filled = {c: sum(r[c] is not None for r in rows) / len(rows) for c in OPTIONAL}
    for col in (
        "request_id",
        "ip",
        "user_agent",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "payment_id",
    ):
        assert filled[col] == 1.0, col
    for col in ("system_prompt", "max_tokens", "temperature", "top_logprobs", "org_id"):
        assert 0.05 < filled[col] < 1.0, (col, filled[col])  # realistic: sometimes absent
    assert len({r["request_id"] for r in rows}) == len(rows)
    stamps = [r["timestamp"] for r in rows]
    assert stamps == sorted(stamps)


def test_truth_has_every_kind_and_matches_traffic(small):
    rows, truth, result = small
    assert result.truth_path == truth_path_for(result.traffic_path)
    assert result.truth_path.name == "traffic.truth.csv"
    assert set(truth[0]) == {
        "account_id",
        "label",
        "kind",
        "campaign_id",
        "phrasing",
        "family",
        "split",
    }
    assert {t["kind"] for t in truth} == set(KINDS) - set(HELD_OUT_KINDS)
    for t in truth:
        assert t["label"] == KINDS[t["kind"]]
        assert bool(t["campaign_id"]) == (t["label"] == "campaign")
    assert {t["account_id"] for t in truth} == {r["account_id"] for r in rows}
    campaigns = {t["campaign_id"] for t in truth if t["campaign_id"]}
    assert len(campaigns) == result.campaigns >= 5
    # account ids say nothing about the label
    assert all(t["account_id"].startswith("acct_") and len(t["account_id"]) == 17 for t in truth)


def test_campaign_signals_are_present_but_partial(small):
    rows, truth, _ = small
    kind = {t["account_id"]: t["kind"] for t in truth}
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        by_kind.setdefault(kind[r["account_id"]], []).append(r)
    asks = [f"{v} {o}" for v in _COT_VERBS for o in _COT_OBJECTS] + list(
        COT_COERCION + _COT_FOREIGN
    )

    def rate(k):
        return sum(any(a in r["prompt"] for a in asks) for r in by_kind[k]) / len(by_kind[k])

    assert 0.3 < rate("hydra") < 0.95  # coerced, with cover traffic mixed in
    assert 0.05 < rate("low_and_slow") < rate("hydra")
    assert rate("benign") == 0
    assert (
        Counter(r["top_logprobs"] for r in by_kind["logprob_extractor"]).most_common(1)[0][0] == 20
    )
    assert max(r["top_logprobs"] or 0 for r in by_kind["logprob_researcher"]) <= 10
    # hydra accounts share proxy /24s; enterprises share NAT IPs and one payment id
    subnets: dict[str, set[str]] = {}
    for r in by_kind["hydra"]:
        subnets.setdefault(r["ip"].rsplit(".", 1)[0], set()).add(r["account_id"])
    assert max(len(v) for v in subnets.values()) >= 5
    ent = by_kind["enterprise_nat"]
    assert len({r["payment_id"] for r in ent}) <= len({r["account_id"] for r in ent}) / 5
    # grading farm accounts fire in the same minutes
    minutes = Counter(r["timestamp"][:16] for r in by_kind["grading_farm"])
    assert minutes.most_common(1)[0][1] >= 3


def test_held_out_phrasing_shares_no_ask_with_the_training_families(tmp_path):
    from stillroom.detect.simulator import GRADING_FAMILIES, REASONING_FAMILIES

    res = simulate(tmp_path / "h.csv", seed=4, scale=0.05, phrasing="held_out", world="current")
    truth = _truth(res.truth_path)
    families = {t["phrasing"] for t in truth if t["phrasing"]}
    assert families
    assert all(
        REASONING_FAMILIES.get(f, GRADING_FAMILIES.get(f))[0] == "held_out" for f in families
    )
    training = [f"{v} {o}" for v in _COT_VERBS for o in _COT_OBJECTS] + list(
        COT_COERCION + _COT_FOREIGN
    )
    with res.traffic_path.open(newline="") as fh:
        prompts = [r["prompt"] for r in csv.DictReader(fh)]
    assert not any(a in p for p in prompts for a in training)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = simulate(tmp_path / "a.csv", world="current", seed=3, scale=0.02)
    b = simulate(tmp_path / "b.csv", world="current", seed=3, scale=0.02)
    c = simulate(tmp_path / "c.csv", world="current", seed=4, scale=0.02)
    assert a.traffic_path.read_bytes() == b.traffic_path.read_bytes()
    assert a.truth_path.read_bytes() == b.truth_path.read_bytes()
    assert a.traffic_path.read_bytes() != c.traffic_path.read_bytes()


@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.jsonl"])
def test_formats_round_trip(tmp_path, name):
    res = simulate(tmp_path / name, seed=1, scale=0.02)
    if name.endswith(".parquet"):
        table = pq.read_table(res.traffic_path)
        assert str(table.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    elif name.endswith(".csv"):
        table = pcsv.read_csv(
            res.traffic_path, parse_options=pcsv.ParseOptions(newlines_in_values=True)
        )
    else:
        table = [json.loads(x) for x in res.traffic_path.read_text().splitlines()]
    assert len(table) == res.rows
    assert res.truth_path == tmp_path / "t.truth.csv"


def test_bad_output_suffix_and_scale_are_clear_errors(tmp_path):
    with pytest.raises(DetectError, match=r"traffic\.txt"):
        simulate(tmp_path / "traffic.txt")
    with pytest.raises(DetectError, match="scale"):
        simulate(tmp_path / "t.csv", scale=0)
    with pytest.raises(DetectError, match="corpora"):
        simulate(tmp_path / "t.csv", scale=0.02, corpora=tmp_path / "missing")
    with pytest.raises(DetectError, match=r"chat\.jsonl\.gz"):
        simulate(tmp_path / "t.csv", scale=0.02, corpora=tmp_path)
    with gzip.open(tmp_path / "chat.jsonl.gz", "wt") as fh:
        fh.write('{"text": "hello"}\n{"text": broken\n')
    with pytest.raises(DetectError, match=r"chat\.jsonl\.gz:2"):
        simulate(tmp_path / "t.csv", scale=0.02, corpora=tmp_path)


@pytest.mark.skipif(not (CORPORA / "chat.jsonl.gz").exists(), reason=f"no corpora at {CORPORA}")
def test_corpora_prompts_are_used(tmp_path):
    res = simulate(tmp_path / "t.parquet", seed=2, scale=0.02, corpora=CORPORA)
    prompts = set(pq.read_table(res.traffic_path, columns=["prompt"])["prompt"].to_pylist())
    with gzip.open(CORPORA / "chat.jsonl.gz", "rt") as fh:
        chat = {json.loads(line)["text"] for line in fh}
    with gzip.open(CORPORA / "eval_gsm8k_test.jsonl.gz", "rt") as fh:
        gsm_first = json.loads(fh.readline())["text"]
    assert len(prompts & chat) > 50
    assert any(gsm_first in p for p in prompts)
