"""Simulated provider traffic (schema v1) with ground truth, for tests, tuning and benchmarks.

``simulate(out, seed=, scale=, corpora=)`` writes benign users, every hard negative the
issue names (templated apps, evaluation harnesses, agents, enterprises behind NAT, logprob
researchers) and distillation campaigns of five kinds (hydra, low-and-slow, logprob
extractor, grading farm, reseller, residential hydra, capability sweep), then ``<out stem>.truth.csv`` with one row per account:
``account_id,label,kind,campaign_id,phrasing``.  ``scale=1.0`` is about 100k rows; account counts scale
linearly, so ``scale=10`` is about a million.  Same seed, same bytes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stillroom.detect.errors import DetectError
from stillroom.detect.simulator._benign import (
    agents,
    benign_users,
    enterprises,
    eval_harnesses,
    logprob_researchers,
    templated_apps,
)
from stillroom.detect.simulator._campaigns import CAMPAIGNS as _REPORTED
from stillroom.detect.simulator._families import Phrasing
from stillroom.detect.simulator._lookalikes import LOOKALIKES
from stillroom.detect.simulator._sweeps import capability_sweep, residential_hydra
from stillroom.detect.simulator._text import PromptBank
from stillroom.detect.simulator._world import COLUMNS, World, ip_strings

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAYS = 14
HARD_NEGATIVES = (
    templated_apps,
    eval_harnesses,
    agents,
    enterprises,
    logprob_researchers,
    *LOOKALIKES,
)
CAMPAIGNS = {
    **_REPORTED,
    "residential_hydra": (residential_hydra, 1),
    "capability_sweep": (capability_sweep, 1),
}
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".gz": "jsonl.gz"}


@dataclass(frozen=True)
class SimulationResult:
    """Where the simulator wrote its files and how much it wrote."""

    traffic_path: Path
    truth_path: Path
    rows: int
    accounts: int
    campaigns: int


def truth_path_for(out: Path) -> Path:
    """``traffic.jsonl.gz`` -> ``traffic.truth.csv`` (every suffix of the name dropped)."""
    name = out.name
    for suffix in (".jsonl.gz", ".parquet", ".jsonl", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(f"{name}.truth.csv")


def _format(out: Path) -> str:
    if out.name.endswith(".jsonl.gz"):
        return "jsonl.gz"
    fmt = _FORMATS.get(out.suffix)
    if fmt is None or fmt == "jsonl.gz":
        raise DetectError(f"{out}: output must end in .parquet, .jsonl, .jsonl.gz or .csv")
    return fmt


def simulate(
    out: Path | str,
    *,
    seed: int = 0,
    scale: float = 1.0,
    corpora: Path | str | None = None,
    phrasing: str | Phrasing = "training",
) -> SimulationResult:
    """Write simulated traffic to ``out`` and its ground truth beside it.

    ``phrasing`` picks the campaigns' wording: ``"training"`` (the families detect may be
    built from), ``"held_out"`` (families nothing in detect saw) or a :class:`Phrasing` made
    from asks written elsewhere.  The truth file names each campaign's family.
    """
    out = Path(out)
    fmt = _format(out)
    if not scale > 0:
        raise DetectError(f"scale must be positive, got {scale}")
    bank = PromptBank.from_corpora(Path(corpora)) if corpora else PromptBank.builtin()
    if not isinstance(phrasing, Phrasing):
        phrasing = Phrasing(str(phrasing))
    world = World(np.random.default_rng(seed), bank, START.timestamp(), DAYS, scale, phrasing)
    benign_users(world)
    for population in HARD_NEGATIVES:
        population(world)
    n_campaigns = 0
    for kind, (make, base) in CAMPAIGNS.items():
        for k in range(max(1, round(base * scale))):
            make(world, f"{kind}-{k + 1}")
            n_campaigns += 1
    table = _table(world)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(table, out, fmt)
    truth = truth_path_for(out)
    with truth.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["account_id", "label", "kind", "campaign_id", "phrasing"])
        writer.writerows(sorted((*t, world.family.get(t[3], "")) for t in world.truth))
    return SimulationResult(out, truth, table.num_rows, len(world.truth), n_campaigns)


def _table(world: World) -> pa.Table:
    table = pa.concat_tables(world.chunks).combine_chunks()
    ts = table["timestamp"].to_numpy()
    end = world.start + world.days * 86400
    keep = np.flatnonzero((ts >= world.start) & (ts < end))
    order = keep[np.argsort(ts[keep], kind="stable")]
    table = table.take(pa.array(order))
    n = len(order)
    ms = np.round(table["timestamp"].to_numpy() * 1000).astype("datetime64[ms]")
    req = world.rng.permutation(n).astype(np.int64) + (int(world.rng.integers(1, 1 << 30)) << 24)
    arrays = {
        "timestamp": pa.array(ms, pa.timestamp("ms", tz="UTC")),
        "request_id": pa.array([f"req_{v:016x}" for v in req.tolist()], pa.string()),
        "ip": pa.array(ip_strings(table["ip"].to_numpy()), pa.string()),
    }
    for name in ("max_tokens", "top_logprobs", "prompt_tokens", "completion_tokens"):
        arrays[name] = table[name].cast(pa.int64())
    return pa.table(
        {
            name: arrays.get(name, table[name] if name in table.column_names else None)
            for name in COLUMNS
        }
    )


def _write(table: pa.Table, out: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out, compression="zstd")
        return
    iso = table.set_column(
        0,
        "timestamp",
        pc.strftime(table["timestamp"], format="%Y-%m-%dT%H:%M:%SZ").cast(pa.string()),
    )
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(iso, out)
        return
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("traffic", iso)
    compression = "gzip" if fmt == "jsonl.gz" else "none"
    target = str(out).replace("'", "''")
    con.execute(f"COPY traffic TO '{target}' (FORMAT json, COMPRESSION {compression})")
    con.close()
